"""Entity-level scores (seqeval) and conlleval-format prediction files."""

from __future__ import annotations

import warnings

from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """Precision/recall/F1 in conlleval-compatible mode (the default), strict IOB2 F1, and F1 per type.

    conlleval mode counts an ``I-X`` after ``O`` as the start of an entity (what conlleval does);
    strict mode counts only well-formed IOB2 spans.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on types with no gold or no predicted spans
        scores = {
            "precision": precision_score(gold, predicted, zero_division=0),
            "recall": recall_score(gold, predicted, zero_division=0),
            "f1": f1_score(gold, predicted, zero_division=0),
            "f1_strict": f1_score(gold, predicted, mode="strict", scheme=IOB2, zero_division=0),
        }
        per_type = classification_report(gold, predicted, output_dict=True, zero_division=0)
    for entity_type, values in per_type.items():
        if not entity_type.endswith(" avg"):
            scores[f"f1_{entity_type}"] = values["f1-score"]
    return {key: float(value) for key, value in scores.items()}


def conlleval_lines(tokens: list[list[str]], gold: list[list[str]], predicted: list[list[str]]) -> str:
    """``token gold pred`` per line, a blank line between sentences: conlleval's input format."""
    blocks = (
        "\n".join(f"{t} {g} {p}" for t, g, p in zip(sentence_tokens, sentence_gold, sentence_predicted))
        for sentence_tokens, sentence_gold, sentence_predicted in zip(tokens, gold, predicted)
    )
    return "\n\n".join(blocks) + "\n"
