"""The NER LightningModule: a Hugging Face token classifier and its entity-level evaluation."""

from __future__ import annotations

import torch

from ftaudit.tasks.calibration import reliability_bins
from ftaudit.tasks.module import TaskModule
from ftaudit.tasks.ner.data import IGNORE_INDEX
from ftaudit.tasks.ner.metrics import entity_scores


class NERTagger(TaskModule):
    """Predicts one tag per word (on its first sub-token); scores whole sentences, re-joined from their windows.

    ``test_predictions`` are the test split's tags, one list per sentence.
    """

    def _eval_step(self, batch) -> torch.Tensor:
        output = self(batch)
        is_word = batch["labels"] != IGNORE_INDEX
        confidence, predicted = output.logits[is_word].float().softmax(-1).max(-1)
        self._eval_outputs.append(
            (
                batch["example_index"].cpu(),
                predicted.cpu(),
                is_word.sum(1).cpu(),
                confidence.cpu(),
                batch["labels"][is_word].cpu(),
            )
        )
        return output.loss

    def _scores(self, split: str, outputs: list[tuple[torch.Tensor, ...]]) -> tuple[dict[str, float], list[list[str]]]:
        """Entity scores of the split's sentences, and the word-level ECE of the predicted tags' probabilities."""
        example_index, predicted, words_per_example, confidence, gold = (
            torch.cat(column).tolist() for column in zip(*outputs)
        )
        per_example, start = [], 0
        for count in words_per_example:
            per_example.append([self.labels[i] for i in predicted[start : start + count]])
            start += count
        encoded = self.data.splits[split]
        tags = encoded.decode(example_index, per_example)
        scored = [index for index, sentence in enumerate(tags) if None not in sentence]  # every window evaluated
        self.evaluated[split] = (len(scored), len(tags))
        scores = entity_scores([encoded.sentences[i].tags for i in scored], [tags[i] for i in scored])
        self.reliability[split] = reliability_bins(confidence, [p == g for p, g in zip(predicted, gold)])
        scores["ece"] = self.reliability[split]["ece"]
        return scores, tags
