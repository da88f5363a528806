"""The causal-LM module: response loss and perplexity as one forward pass gives them, label ranking scored like a
classifier, and training that learns the responses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from ftaudit.tasks.causal_lm.module import CausalLMModule
from ftaudit.tasks.data import SplitDataModule
from tests.probes.tiny_decoder import TokenIds, tiny_decoder

PAD, EOS = 0, 2
CANDIDATES = [[20, EOS], [21, 22, EOS]]  # two labels' response tokens


@dataclass
class Split:
    prompts: list[list[int]]
    answers: list[int]
    input_ids: list[torch.Tensor] = field(default_factory=list)
    labels: list[torch.Tensor] = field(default_factory=list)
    extra_inputs: dict = field(default_factory=dict)
    label_pad = -100

    def __post_init__(self):
        for prompt, answer in zip(self.prompts, self.answers):
            response = CANDIDATES[answer]
            self.input_ids.append(torch.tensor(prompt + response))
            self.labels.append(torch.tensor([-100] * len(prompt) + response))

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(ids) for ids in self.input_ids])


class TinyData(SplitDataModule):
    """Label 0 after prompts starting with token 5, label 1 after those starting with 6."""

    def __init__(self):
        cfg = OmegaConf.create({"name": "tiny", "batch_size": 4, "eval_batch_size": 3, "group_by_length": True})
        super().__init__(cfg, tokenizer=OmegaConf.create({"pad_token_id": PAD}), seed=0)
        rng = np.random.default_rng(0)
        prompts = [[5 + a, *rng.integers(8, 19, size=int(rng.integers(1, 4))).tolist()] for a in [0, 1] * 8]
        answers = [a for a in [0, 1] * 8]
        self.splits = {name: Split(prompts, answers) for name in ("train", "validation", "test")}
        self.labels, self.label_keys, self.candidates, self.pad_id = ["yes", "no"], ["yes", "no"], CANDIDATES, PAD


@pytest.fixture
def model():
    return tiny_decoder(TokenIds(30)).eval()


def optimizer(lr: float):
    return OmegaConf.create(
        {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": lr, "weight_decay": 0.0, "warmup_ratio": 0.0}
    )


def test_loss_and_perplexity_are_the_token_weighted_response_nll(model):
    data = TinyData()
    scores = CausalLMModule(model, None, data).evaluate("test")
    nll = tokens = 0.0
    for ids, labels in zip(data.splits["test"].input_ids, data.splits["test"].labels):
        with torch.no_grad():
            logits = model(input_ids=ids[None]).logits[0, :-1]
        scored = labels[1:] != -100
        nll += torch.nn.functional.cross_entropy(logits[scored], labels[1:][scored], reduction="sum").item()
        tokens += int(scored.sum())
    assert scores["loss"] == pytest.approx(nll / tokens, rel=1e-4)
    assert scores["perplexity"] == pytest.approx(math.exp(nll / tokens), rel=1e-4)
    assert {"accuracy", "f1_macro", "ece", "mcc"} <= scores.keys()


def test_training_learns_the_responses_and_ranking_then_picks_the_right_label(model):
    data = TinyData()
    module = CausalLMModule(model, optimizer(1e-2), data)
    before = module.evaluate("test")
    trainer = L.Trainer(
        max_epochs=15,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    trainer.fit(module, datamodule=data)
    after = module.evaluate("test")
    assert after["loss"] < before["loss"] / 3
    assert after["accuracy"] == 1.0 and after["accuracy"] > before["accuracy"]
