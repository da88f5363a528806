"""The causal-LM LightningModule: supervised fine-tuning on the response tokens, scored by response loss and
perplexity, and, for label-style responses, by ranking the label strings' log-likelihoods.

Its data module's splits hold, besides the model inputs (``input_ids``: prompt + response + EOS; ``labels``: -100 on
the prompt), each example's ``prompts`` (the prompt's token ids, as the model sees them before its answer) and
``answers`` (the gold label's index, None for free text); ``data.candidates`` holds each label's response tokens
(EOS included: a label that is the prefix of another is not scored as the longer one), and ``responses`` each
example's response string. On test, with ``max_new_tokens`` > 0, the model also answers freely (greedy decoding):
a label-style answer is parsed to the label whose string it is (``generation_accuracy``; ``generation_parsed``: the
share that is any label's), a free-text one is compared with the response (``exact_match``, whitespace-normalised).
"""

from __future__ import annotations

import contextlib
import math
from types import SimpleNamespace

import numpy as np
import torch

from ftaudit.progress import progress
from ftaudit.tasks.causal_lm.scoring import (
    greedy_responses,
    label_log_likelihoods,
    parsed_label,
    per_example_nll,
    response_loss,
)
from ftaudit.tasks.classification.metrics import classification_scores, label_reliability
from ftaudit.tasks.module import TaskModule


class CausalLMModule(TaskModule):
    """``test_predictions``: per test example, its response NLL, with labels the label options' probabilities, and
    the free answers (``max_new_tokens`` > 0)."""

    def __init__(self, model, optimizer_cfg, data, max_new_tokens: int = 0, **clipping):
        super().__init__(model, optimizer_cfg, data, **clipping)
        self.max_new_tokens = max_new_tokens

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
            self.reliability[split] = label_reliability(gold, probabilities)
            predictions["probabilities"] = probabilities
        if self.max_new_tokens and split == "test":
            predictions["generated"] = self.generated(split, scored.tolist())
            scores.update(self.generation_scores(split, scored.tolist(), predictions["generated"]))
        return scores, predictions

    def precision_context(self):
        """The autocast of the test pass (e.g. bf16-mixed), which Lightning applies to each step but not to the work
        done at the epoch's end (label ranking, generation): in fp32 those would take several times longer."""
        trainer = self._trainer
        return trainer.precision_plugin.forward_context() if trainer is not None else contextlib.nullcontext()

    def generation_scores(self, split: str, examples: list[int], generated: list[str]) -> dict[str, float]:
        encoded = self.data.splits[split]
        if not self.data.candidates:
            same = [
                " ".join(text.split()) == " ".join(encoded.responses[i].split()) for text, i in zip(generated, examples)
            ]
            return {"exact_match": float(np.mean(same))}
        label_texts = [self.data.tokenizer.decode(candidate[:-1]) for candidate in self.data.candidates]
        parsed = [parsed_label(text, label_texts) for text in generated]
        return {
            "generation_accuracy": float(np.mean([p == encoded.answers[i] for p, i in zip(parsed, examples)])),
            "generation_parsed": float(np.mean([p is not None for p in parsed])),
        }

    def generated(self, split: str, examples: list[int]) -> list[str]:
        """The greedy answer to each example's prompt, decoded without special tokens."""
        prompts, tokenizer = self.data.splits[split].prompts, self.data.tokenizer
        batch_size, was_training = self.data.cfg.eval_batch_size, self.model.training
        self.model.eval()
        texts = []
        chunks = range(0, len(examples), batch_size)
        for start in progress(chunks, f"generating answers on {split}", enabled=True):
            chosen = [prompts[i] for i in examples[start : start + batch_size]]
            with self.precision_context():
                rows = greedy_responses(
                    self.model, chosen, self.data.pad_id, tokenizer.eos_token_id, self.max_new_tokens
                )
            texts += tokenizer.batch_decode(rows, skip_special_tokens=True)
        self.model.train(was_training)
        return texts

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
            with self.precision_context():
                rows.append(label_log_likelihoods(self.model, chosen, self.data.candidates, self.data.pad_id))
        self.model.train(was_training)
        return torch.cat(rows).softmax(-1).numpy()
