"""Classification scores against hand-computed values, and the predictions file's format."""

from __future__ import annotations

import numpy as np
import pytest

from ftaudit.tasks.classification.metrics import classification_scores, predictions_tsv
from ftaudit.tasks.classification.reading import Example

KEYS = ["neg", "neu", "pos"]


def one_hot_probabilities(predicted: list[int], confidence: float = 0.8) -> np.ndarray:
    rows = np.full((len(predicted), 3), (1 - confidence) / 2)
    rows[np.arange(len(predicted)), predicted] = confidence
    return rows


def test_scores_of_a_known_case():
    gold = np.array([0, 0, 1, 1, 2, 2])
    predicted = [0, 1, 1, 1, 2, 0]  # neg: P 1/2 R 1/2; neu: P 2/3 R 1; pos: P 1 R 1/2
    scores = classification_scores(gold, one_hot_probabilities(predicted), KEYS)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["f1_neg"] == pytest.approx(0.5) and scores["f1_neu"] == pytest.approx(0.8)
    assert scores["f1_pos"] == pytest.approx(2 / 3)
    assert scores["f1_macro"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert -1 <= scores["mcc"] <= 1 and scores["mcc"] > 0
    assert scores["ece"] == pytest.approx(abs(4 / 6 - 0.8))  # every confidence 0.8 falls in one bin


def test_perfect_and_constant_predictions():
    gold = np.array([0, 1, 2, 1])
    perfect = classification_scores(gold, one_hot_probabilities(list(gold), 1.0), KEYS)
    assert perfect["accuracy"] == perfect["f1_macro"] == perfect["mcc"] == 1.0 and perfect["ece"] == 0.0
    constant = classification_scores(gold, one_hot_probabilities([1, 1, 1, 1]), KEYS)
    assert constant["mcc"] == 0.0 and constant["f1_neg"] == 0.0 and constant["f1_neu"] == pytest.approx(2 / 3)


def test_a_label_absent_from_gold_and_predictions_has_no_f1():
    scores = classification_scores(np.array([0, 1, 0]), one_hot_probabilities([0, 1, 1]), KEYS)
    assert "f1_pos" not in scores
    assert scores["f1_macro"] == pytest.approx((scores["f1_neg"] + scores["f1_neu"]) / 2)


def test_predictions_file_has_a_header_and_a_row_per_example_in_order():
    examples = [Example("12", "a", "neg"), Example("x\ty", "b", "pos")]
    text = predictions_tsv(examples, np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]), ["neg", "neu", "pos"])
    assert text.splitlines() == [
        "id\tgold\tpredicted\tp_neg\tp_neu\tp_pos",
        "12\tneg\tneg\t0.700000\t0.200000\t0.100000",
        '"x\ty"\tpos\tpos\t0.100000\t0.300000\t0.600000',
    ]  # a tab in an id is quoted
