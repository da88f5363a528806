import pytest

from ftaudit.tasks.ner.metrics import conlleval_lines, entity_scores


def test_perfect_prediction():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    scores = entity_scores(gold, gold)
    assert scores["f1"] == scores["f1_strict"] == scores["f1_PER"] == scores["f1_LOC"] == 1.0


def test_known_partial_case():
    # 3 gold entities, 3 predicted, 2 correct: P = R = F1 = 2/3
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    scores = entity_scores(gold, predicted)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["f1_PER"] == 1.0 and scores["f1_LOC"] == 0.0 and scores["f1_ORG"] == pytest.approx(2 / 3)


def test_conlleval_mode_accepts_inside_start_but_strict_does_not():
    gold = [["B-PER", "I-PER", "O"]]
    predicted = [["I-PER", "I-PER", "O"]]  # conlleval reads I- after O as a new entity: a correct span
    scores = entity_scores(gold, predicted)
    assert scores["f1"] == 1.0
    assert scores["f1_strict"] == 0.0


def test_boundary_error_counts_as_miss():
    scores = entity_scores([["B-PER", "I-PER"]], [["B-PER", "O"]])
    assert scores["f1"] == 0.0


def test_conlleval_lines_format():
    text = conlleval_lines([["EU", "rejects"], ["Peter"]], [["B-ORG", "O"], ["B-PER"]], [["B-ORG", "O"], ["O"]])
    assert text == "EU B-ORG B-ORG\nrejects O O\n\nPeter B-PER O\n"
