"""Sentence classification scores (scikit-learn) and the test predictions file."""

from __future__ import annotations

import csv
import io

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from ftaudit.tasks.calibration import reliability_bins
from ftaudit.tasks.classification.reading import Example


def classification_scores(gold: np.ndarray, probabilities: np.ndarray, label_keys: list[str]) -> dict[str, float]:
    """Accuracy, macro F1, F1 per label, Matthews correlation and the ECE of the predicted label's probability.

    ``gold`` holds label ids, ``probabilities`` one row per example; the prediction is the most probable label.
    Macro F1 averages over the labels that occur in the gold or the predicted labels (scikit-learn's default), and
    F1 per label is recorded for those labels only: a label absent from both has no F1.
    """
    predicted = probabilities.argmax(axis=1)
    present = np.union1d(gold, predicted)
    per_label = f1_score(gold, predicted, labels=present, average=None, zero_division=0)
    scores = {
        "accuracy": accuracy_score(gold, predicted),
        "f1_macro": f1_score(gold, predicted, average="macro", zero_division=0),
        "mcc": matthews_corrcoef(gold, predicted),
        "ece": label_reliability(gold, probabilities)["ece"],
    }
    scores.update({f"f1_{label_keys[label]}": value for label, value in zip(present, per_label)})
    return {key: float(value) for key, value in scores.items()}


def label_reliability(gold: np.ndarray, probabilities: np.ndarray) -> dict:
    """The reliability bins (``reliability_bins``) of the most probable label's probability."""
    return reliability_bins(probabilities.max(axis=1), probabilities.argmax(axis=1) == gold)


def predictions_tsv(examples: list[Example], probabilities: np.ndarray, labels: list[str]) -> str:
    """One row per example, in split order: id, gold label, predicted label, then each label's probability
    (columns ``p_<label>``), under a header row. Tab-separated; a field holding a tab or newline is quoted."""
    stream = io.StringIO()
    writer = csv.writer(stream, delimiter="\t", lineterminator="\n")
    writer.writerow(["id", "gold", "predicted", *(f"p_{label}" for label in labels)])
    for example, row in zip(examples, probabilities, strict=True):
        writer.writerow([example.id, example.label, labels[int(row.argmax())], *(f"{p:.6f}" for p in row)])
    return stream.getvalue()
