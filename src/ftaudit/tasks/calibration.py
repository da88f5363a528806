"""Calibration: does the model's confidence match how often it is right?"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15


def expected_calibration_error(confidence, correct, bins: int = ECE_BINS) -> float:
    """Expected calibration error (Guo et al. 2017) of the predicted class's probability, in ``bins`` equal-width
    bins (lo, hi]: the mean over predictions of |accuracy - mean confidence| of each prediction's bin."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    if confidence.size == 0:
        return 0.0
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    gap = np.abs(np.bincount(index, correct, bins) - np.bincount(index, confidence, bins))  # per bin, summed
    return float(gap.sum() / counts.sum())
