"""The causal-LM LightningModule: supervised fine-tuning on the response tokens, scored by response loss and
perplexity, and, for label-style responses, by ranking the label strings' log-likelihoods.

Its data module's splits hold, besides the model inputs (``input_ids``: prompt + response + EOS; ``labels``: -100 on
the prompt), each example's ``prompts`` (the prompt's token ids, as the model sees them before its answer) and
``answers`` (the gold label's index, None for free text); ``data.candidates`` holds each label's response tokens
(EOS included: a label that is the prefix of another is not scored as the longer one).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import torch

from ftaudit.progress import progress
from ftaudit.tasks.causal_lm.scoring import label_log_likelihoods, per_example_nll, response_loss
from ftaudit.tasks.classification.metrics import classification_scores
from ftaudit.tasks.module import TaskModule


class CausalLMModule(TaskModule):
    """``test_predictions``: per test example, its response NLL, and with labels the label options' probabilities."""

    def forward(self, batch: dict[str, torch.Tensor]):
        return SimpleNamespace(loss=response_loss(self.model, batch))  # training_step reads .loss

    def _eval_step(self, batch) -> torch.Tensor:
        nll, tokens = per_example_nll(self.model, batch)
        self._eval_outputs.append((batch["example_index"].cpu(), nll.cpu(), tokens.cpu()))
        return nll.sum() / tokens.sum()

    def _scores(self, split: str, outputs: list[tuple[torch.Tensor, ...]]) -> tuple[dict[str, float], dict]:
        example_index, nll, tokens = (torch.cat(column) for column in zip(*outputs))
        order = example_index.argsort()
        scored, nll, tokens = example_index[order], nll[order], tokens[order]
        encoded = self.data.splits[split]
        self.evaluated[split] = (len(scored), len(encoded.input_ids))
        loss = float(nll.sum() / tokens.sum())
        scores = {"loss": loss, "perplexity": math.exp(loss)}
        predictions = {"nll": nll.numpy(), "tokens": tokens.numpy()}
        if self.data.candidates and split == "test":  # ranking costs a pass per label: on test, not every epoch
            probabilities = self.label_probabilities(split, scored.tolist())
            gold = np.array([encoded.answers[i] for i in scored.tolist()])
            scores.update(classification_scores(gold, probabilities, self.data.label_keys))
            predictions["probabilities"] = probabilities
        return scores, predictions

    def label_probabilities(self, split: str, examples: list[int]) -> np.ndarray:
        """Each example's probabilities over the labels: the softmax of the label strings' summed log-likelihoods
        (lm-evaluation-harness's ``acc``), whose argmax is the predicted label and whose top value the ECE bins."""
        prompts = self.data.splits[split].prompts
        batch_size = self.data.cfg.eval_batch_size
        was_training = self.model.training
        self.model.eval()
        rows = []
        chunks = range(0, len(examples), batch_size)
        for start in progress(chunks, f"ranking {len(self.data.labels)} labels on {split}", enabled=True):
            chosen = [prompts[i] for i in examples[start : start + batch_size]]
            rows.append(label_log_likelihoods(self.model, chosen, self.data.candidates, self.data.pad_id))
        self.model.train(was_training)
        return torch.cat(rows).softmax(-1).numpy()
