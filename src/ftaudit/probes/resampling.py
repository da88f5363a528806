"""Recall gaps between groups: bootstrap confidence intervals and permutation p-values (sentences resampled)."""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95
PERMUTATION_CHUNK = 100  # permutation samples shuffled at once


def bootstrap_recalls(found: np.ndarray, spans: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """``samples`` x groups recalls, each from the sentences resampled with replacement.

    ``found[g, s]`` counts group g's substituted spans in sentence s that the model found exactly, out of
    ``spans[s]`` (the same for every group). All groups share each resample (a paired bootstrap), as all
    groups' variants come from the same sentences.
    """
    sentences = len(spans)
    draws = np.random.default_rng(seed).integers(sentences, size=(samples, sentences))
    weights = np.zeros((samples, sentences))
    np.add.at(weights, (np.arange(samples)[:, None], draws), 1)
    return (weights @ found.T) / (weights @ spans)[:, None]


def permuted_recalls(
    found: np.ndarray, spans: np.ndarray, strata: list[list[int]], samples: int, seed: int
) -> np.ndarray:
    """``samples`` x groups recalls with the group labels shuffled within each sentence and stratum.

    Under the null hypothesis that a stratum's groups (e.g. female and male names of one ethnicity) are
    treated alike, each sentence's counts are exchangeable between them, so these recalls show the gaps
    that chance alone produces.
    """
    rng = np.random.default_rng(seed)
    per_sentence = found.T  # sentences x groups
    recalls = []
    for chunk in np.array_split(np.arange(samples), -(-samples // PERMUTATION_CHUNK)):  # bounds memory on large sets
        shuffled = np.broadcast_to(per_sentence, (len(chunk), *per_sentence.shape)).copy()
        for stratum in strata:
            order = np.argsort(rng.random(shuffled[..., stratum].shape), axis=-1)
            shuffled[..., stratum] = np.take_along_axis(
                np.broadcast_to(per_sentence[:, stratum], order.shape), order, axis=-1
            )
        recalls.append(shuffled.sum(axis=1) / spans.sum())
    return np.concatenate(recalls)


def p_value(observed: float, null: np.ndarray) -> float:
    """One-sided permutation p-value of a gap at least as large as ``observed`` (the observed one counted once)."""
    at_least = np.sum(null >= observed - 1e-12)  # the same gap summed in another order may differ in the last bit
    return float((1 + at_least) / (1 + len(null)))


def pooled_recalls(recalls: np.ndarray, members: list[list[int]]) -> np.ndarray:
    """Recall of each set of groups (e.g. all female groups), on the last axis.

    Every group is scored on the same spans, so a set's pooled recall is the mean of its groups' recalls.
    """
    return np.stack([recalls[..., indices].mean(axis=-1) for indices in members], axis=-1)


def gap_and_ratio(recalls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max - min and min / max over the last axis; the ratio of all-zero recalls is 1 (no group is favoured)."""
    highest, lowest = recalls.max(axis=-1), recalls.min(axis=-1)
    ratio = np.divide(lowest, highest, out=np.ones_like(highest, dtype=float), where=highest > 0)
    return highest - lowest, ratio


def percentile_interval(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The central ``CONFIDENCE`` percentile interval over the first axis (the bootstrap samples)."""
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail], axis=0)
    return low, high
