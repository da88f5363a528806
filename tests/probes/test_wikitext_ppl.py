"""WikiText-2 perplexity of a causal LM: the guide's text and windows, base vs fine-tuned, cached, checked."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from ftaudit.errors import ConfigError
from ftaudit.metrics import declarations
from ftaudit.probes.base import run_probes
from ftaudit.probes.cache import BaseResultCache
from ftaudit.probes.degradation import BaseIdentity
from ftaudit.probes.lm_scoring import perplexity, window_nlls
from ftaudit.probes.wikitext_ppl import WikiTextPerplexityProbe, guide_text
from tests.probes.conftest import lm_context, perturbed
from tests.probes.test_degradation import write_wikitext


def wikitext_probe(tmp_path: Path, directory: Path, **overrides) -> WikiTextPerplexityProbe:
    settings = {"dir": str(directory), "splits": ["test"], "context": 32, "stride": 16, "max_tokens": 300}
    settings.update({"batch_size": 2, "resamples": 200, "seed": 0, **overrides})
    cache = BaseResultCache(tmp_path / "cache")
    return WikiTextPerplexityProbe(OmegaConf.create(settings), "test", 8, cache, BaseIdentity())


def test_the_text_is_the_hub_rows_joined_by_blank_lines(tmp_path):
    path = tmp_path / "wiki.test.raw"
    path.write_text(" \n = Title = \n \n A line . \n")
    assert guide_text(path) == "\n\n = Title = \n\n\n\n\n A line . \n"  # rows "", " = Title = \n", "", " A line . \n"


def test_perplexities_are_the_windows_of_the_first_max_tokens(tmp_path, lm_model, lm_tokenizer):
    probe = wikitext_probe(tmp_path, write_wikitext(tmp_path / "wikitext2"))
    finetuned = perturbed(lm_model)
    metrics, skipped = run_probes([probe], lm_context(lm_model, lm_tokenizer, tmp_path, finetuned))
    assert skipped == {}
    token_ids = lm_tokenizer(guide_text(tmp_path / "wikitext2" / "wiki.test.raw"))["input_ids"][:300]
    expected = {
        which: perplexity(*window_nlls(model, token_ids, 32, 16, 2))
        for which, model in (("base", lm_model), ("finetuned", finetuned))
    }
    assert metrics["degradation/wikitext2/base"] == pytest.approx(expected["base"], rel=1e-6)
    assert metrics["degradation/wikitext2/finetuned"] == pytest.approx(expected["finetuned"], rel=1e-6)
    drop = metrics["degradation/wikitext2/drop"]
    assert drop == pytest.approx(expected["finetuned"] - expected["base"], rel=1e-6)
    assert metrics["degradation/wikitext2/drop_ci_low"] <= drop <= metrics["degradation/wikitext2/drop_ci_high"]
    recorded = [metrics[f"degradation/wikitext2/{key}"] for key in ("tokens", "context", "stride")]
    assert recorded == [299, 32, 16]
    declarations({k: v for k, v in metrics.items() if k.startswith("degradation/")}, probe.metric_specs())


def test_the_base_side_is_read_from_the_cache_the_second_time(tmp_path, lm_model, lm_tokenizer, monkeypatch):
    directory = write_wikitext(tmp_path / "wikitext2")
    first, _ = run_probes([wikitext_probe(tmp_path, directory)], lm_context(lm_model, lm_tokenizer, tmp_path))
    calls = []
    monkeypatch.setattr("ftaudit.probes.wikitext_ppl.window_nlls", lambda *args: calls.append(1) or window_nlls(*args))
    second, _ = run_probes([wikitext_probe(tmp_path, directory)], lm_context(lm_model, lm_tokenizer, tmp_path))
    assert calls == [1]  # the fine-tuned side only
    assert second["degradation/wikitext2/base"] == first["degradation/wikitext2/base"]
    assert second["degradation/wikitext2/drop"] == 0.0


def test_a_stride_beyond_the_context_or_a_context_beyond_the_model_is_refused(tmp_path, lm_model, lm_tokenizer):
    directory = write_wikitext(tmp_path / "wikitext2")
    with pytest.raises(ConfigError, match="stride=40 must not exceed its context=32"):
        wikitext_probe(tmp_path, directory, stride=40)
    probe = wikitext_probe(tmp_path, directory, context=512, stride=256)
    with pytest.raises(ConfigError, match="context=512 exceeds the model's 256 positions"):
        probe.measure(lm_context(lm_model, lm_tokenizer, tmp_path))


def test_a_model_that_is_not_a_causal_lm_is_skipped(tmp_path, lm_model, lm_tokenizer):
    from transformers import LlamaForSequenceClassification

    classifier = LlamaForSequenceClassification(lm_model.config).eval()
    probe = wikitext_probe(tmp_path, write_wikitext(tmp_path / "wikitext2"))
    metrics, skipped = run_probes([probe], lm_context(classifier, lm_tokenizer, tmp_path))
    assert metrics == {} and "not a causal language model" in skipped["degradation/wikitext2"]


def test_real_wikitext2_test_split(tmp_path, lm_model, lm_tokenizer):
    directory = os.environ.get("WIKITEXT2_DIR")
    if not directory or not (Path(directory) / "wiki.test.raw").is_file():
        pytest.skip("WikiText-2 not available: set WIKITEXT2_DIR to a folder with wiki.test.raw")
    probe = wikitext_probe(tmp_path, Path(directory), max_tokens=200)
    metrics, skipped = run_probes([probe], lm_context(lm_model, lm_tokenizer, tmp_path))
    assert skipped == {} and metrics["degradation/wikitext2/tokens"] == 199
    assert np.isfinite(metrics["degradation/wikitext2/base"]) and metrics["degradation/wikitext2/drop"] == 0.0
