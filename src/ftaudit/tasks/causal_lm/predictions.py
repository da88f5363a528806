"""The test predictions of a causal-LM run as one TSV: per example, its response loss, and where scored, the ranked
label with every label's probability and the free answer."""

from __future__ import annotations

import csv
import io


def predictions_tsv(data, predictions: dict) -> str:
    """One row per test example in split order: its index, scored response tokens and summed NLL; with labels the
    gold label, the ranked prediction and each label's probability (``p_<label>``); with free answers the answer.
    Tab-separated; a field holding a tab or newline is quoted."""
    test = data.splits["test"]
    probabilities, generated = predictions.get("probabilities"), predictions.get("generated")
    header = ["index", "response_tokens", "nll"]
    if probabilities is not None:
        header += ["gold", "predicted", *(f"p_{label}" for label in data.labels)]
    if generated is not None:
        header.append("generated")
    stream = io.StringIO()
    writer = csv.writer(stream, delimiter="\t", lineterminator="\n")
    writer.writerow(header)
    for i, (nll, tokens) in enumerate(zip(predictions["nll"], predictions["tokens"], strict=True)):
        row = [i, int(tokens), f"{nll:.6f}"]
        if probabilities is not None:
            ranked = probabilities[i]
            row += [data.labels[test.answers[i]], data.labels[int(ranked.argmax())], *(f"{p:.6f}" for p in ranked)]
        if generated is not None:
            row.append(generated[i])
        writer.writerow(row)
    return stream.getvalue()
