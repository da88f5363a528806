"""The sentence classification LightningModule: a Hugging Face sequence classifier and its scores."""

from __future__ import annotations

import numpy as np
import torch

from ftaudit.tasks.classification.metrics import classification_scores, label_reliability
from ftaudit.tasks.module import TaskModule


class SentenceClassifier(TaskModule):
    """Predicts one label per example from the label probabilities. ``test_predictions`` are the test split's
    probabilities, one row per example in split order."""

    model_inputs = ("input_ids", "attention_mask", "token_type_ids", "labels")  # token_type_ids: sentence pairs only

    def _eval_step(self, batch) -> torch.Tensor:
        output = self(batch)
        self._eval_outputs.append((batch["example_index"].cpu(), output.logits.float().softmax(-1).cpu()))
        return output.loss

    def _scores(self, split: str, outputs: list[tuple[torch.Tensor, ...]]) -> tuple[dict[str, float], np.ndarray]:
        example_index, probabilities = (torch.cat(column) for column in zip(*outputs))
        encoded = self.data.splits[split]
        order = example_index.argsort()
        scored, probabilities = example_index[order], probabilities[order].numpy()
        self.evaluated[split] = (len(scored), len(encoded.examples))
        gold = torch.stack(encoded.labels)[scored].numpy()
        label_keys = [self.data.label_keys[label] for label in self.labels]
        self.reliability[split] = label_reliability(gold, probabilities)
        return classification_scores(gold, probabilities, label_keys), probabilities
