"""Calibration: does the model's confidence match how often it is right?"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15


def reliability_bins(confidence, correct, bins: int = ECE_BINS) -> dict:
    """The predictions in ``bins`` equal-width confidence bins (lo, hi]: per bin its count, mean confidence and
    accuracy (None for an empty bin), and the expected calibration error (Guo et al. 2017) they give: the mean over
    predictions of |accuracy - mean confidence| of each prediction's bin. JSON-ready: what a reliability diagram
    draws."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    hits, summed = np.bincount(index, correct, bins), np.bincount(index, confidence, bins)
    gap = np.abs(hits - summed).sum()
    return {
        "bins": bins,
        "count": counts.tolist(),
        "confidence": [float(s / n) if n else None for s, n in zip(summed, counts)],
        "accuracy": [float(h / n) if n else None for h, n in zip(hits, counts)],
        "ece": float(gap / counts.sum()) if confidence.size else 0.0,
    }


def expected_calibration_error(confidence, correct, bins: int = ECE_BINS) -> float:
    """The expected calibration error of the predicted class's probability (``reliability_bins``)."""
    return reliability_bins(confidence, correct, bins)["ece"]
