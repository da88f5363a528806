"""What the decoder probes share: the causal-LM check, settings checks and the paired-bootstrap drop."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from ftaudit.errors import ConfigError
from ftaudit.probes.lm_degradation import check_probe_settings, is_causal_lm, paired_comparison, percent


def test_causal_lms_are_told_from_other_heads(lm_model):
    from transformers import LlamaForSequenceClassification

    assert is_causal_lm(lm_model)
    assert not is_causal_lm(LlamaForSequenceClassification(lm_model.config))


def test_paired_drop_has_the_point_estimate_inside_its_interval():
    rng = np.random.default_rng(0)
    base = (rng.random(200) < 0.7).astype(float)
    finetuned = np.where(rng.random(200) < 0.2, 1 - base, base)  # a fifth of the answers changed
    metrics = paired_comparison("arc_easy", base, finetuned, np.ones(200), 500, 0, transform=percent)
    drop = metrics["degradation/arc_easy/drop"]
    assert drop == pytest.approx(100 * (base.mean() - finetuned.mean()))
    assert metrics["degradation/arc_easy/drop_ci_low"] < drop < metrics["degradation/arc_easy/drop_ci_high"]


def test_paired_drop_of_identical_scores_is_exactly_zero_and_so_is_its_interval():
    nll, tokens = np.array([10.0, 12.0, 9.0]), np.array([5.0, 6.0, 4.0])
    metrics = paired_comparison("wikitext2", nll, nll, tokens, 100, 0, higher_is_better=False, transform=np.exp)
    assert metrics["degradation/wikitext2/base"] == pytest.approx(np.exp(31 / 15))
    assert [metrics[f"degradation/wikitext2/{key}"] for key in ("drop", "drop_ci_low", "drop_ci_high")] == [0, 0, 0]


def test_pairing_makes_the_interval_narrower_than_independent_resamples_would():
    """The same items resampled for both models: a constant shift of every item has no spread at all."""
    nll = np.random.default_rng(1).uniform(5, 15, size=50)
    metrics = paired_comparison("w", nll, nll + 1.0, np.ones(50), 200, 0, higher_is_better=False)
    assert metrics["degradation/w/drop_ci_low"] == pytest.approx(1.0)
    assert metrics["degradation/w/drop_ci_high"] == pytest.approx(1.0)


def test_settings_must_be_positive_integers_or_null_where_allowed():
    check_probe_settings(
        "arc_easy", OmegaConf.create({"resamples": 10, "sample_size": None}), ("resamples",), ("sample_size",)
    )
    with pytest.raises(ConfigError, match=r"arc_easy\.sample_size=0 must be an integer >= 1 \(or null\)"):
        check_probe_settings(
            "arc_easy", OmegaConf.create({"resamples": 10, "sample_size": 0}), ("resamples",), ("sample_size",)
        )
    with pytest.raises(ConfigError, match="resamples=None must be an integer >= 1"):
        check_probe_settings("arc_easy", OmegaConf.create({"resamples": None}), ("resamples",))
