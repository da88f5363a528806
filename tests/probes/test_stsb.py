"""The STS-B probe: reading the tab-separated file, the score, and the published MiniLM figure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from ftaudit.errors import DataError
from ftaudit.hub import hub_splits
from ftaudit.models.loading import load_classifier, load_tokenizer
from ftaudit.probes.stsb import hub_stsb_pairs, mean_pooled_embeddings, read_stsb, similarity_spearman
from tests.conftest import compose_config
from tests.probes.test_degradation import LABELS, STSB_ROWS, write_stsb, write_stsb_hub

# MTEB STSBenchmark (test split), cosine Spearman of sentence-transformers/all-MiniLM-L6-v2, x 100:
# embeddings-benchmark/results, results/sentence-transformers__all-MiniLM-L6-v2/
# 8b3219a92973c328a8e22fadcfa821b5dc75636a/STSBenchmark.json, "cosine_spearman": 0.8203247283076371.
PUBLISHED_MINILM_STSB = 82.03


def test_reads_every_row_despite_unbalanced_quotes_and_license_fields(tmp_path):
    pairs = read_stsb(write_stsb(tmp_path) / "sts-test.csv")
    assert pairs.gold == [score for score, _, _ in STSB_ROWS]
    assert pairs.first[2] == 'The "big dog runs in the park.'
    assert pairs.second[1] == "A woman cuts an onion."  # not the license field that follows it


def test_the_hub_copy_scored_0_to_1_gives_the_files_pairs_on_the_0_to_5_scale(tmp_path, hub_cache):
    hub = hub_splits(str(write_stsb_hub(tmp_path / "hub")), None, ["test"])["test"]
    pairs, local = hub_stsb_pairs(hub, 5), read_stsb(write_stsb(tmp_path / "local") / "sts-test.csv")
    assert (pairs.first, pairs.second) == (local.first, local.second) and pairs.gold == pytest.approx(local.gold)
    with pytest.raises(
        DataError,
        match="scores x 25 run from 0.0 to 25.0, not STS-B's 0 to 5; set "
        "probes.degradation_settings.stsb.hub_score_scale",
    ):
        hub_stsb_pairs(hub, 25)


def test_a_short_row_is_a_data_error_naming_file_and_line(tmp_path):
    path = write_stsb(tmp_path) / "sts-test.csv"
    path.write_text(path.read_text() + "main-news\tfile\t2016\t0001\t3.0\tonly one sentence\n")
    with pytest.raises(DataError, match=rf"{path}:{len(STSB_ROWS) + 1}: expected tab-separated"):
        read_stsb(path)


def tiny_encoder_and_tokenizer():
    cfg = compose_config("model=tiny")
    torch.manual_seed(0)
    return load_classifier(cfg.model, "AutoModelForTokenClassification", LABELS).eval().base_model, load_tokenizer(
        cfg.model
    )


def test_mean_pooling_ignores_padding():
    encoder, tokenizer = tiny_encoder_and_tokenizer()
    texts = ["A short one.", "A much longer sentence that forces the short one to be padded in its batch."]
    alone = mean_pooled_embeddings(encoder, tokenizer, texts[:1], batch_size=1, max_length=64)
    padded = mean_pooled_embeddings(encoder, tokenizer, texts, batch_size=2, max_length=64)
    assert torch.allclose(padded[0], alone[0], atol=1e-5)
    assert not torch.allclose(padded[0], padded[1], atol=1e-3)


def test_spearman_follows_the_gold_ranking(tmp_path):
    encoder, tokenizer = tiny_encoder_and_tokenizer()
    pairs = read_stsb(write_stsb(tmp_path) / "sts-test.csv")
    score = similarity_spearman(encoder, tokenizer, pairs, batch_size=3, max_length=64)
    assert -100 <= score <= 100
    assert similarity_spearman(encoder, tokenizer, pairs, batch_size=16, max_length=64) == pytest.approx(
        score, abs=1e-6
    )
    pairs.gold = [-gold for gold in pairs.gold]
    assert similarity_spearman(encoder, tokenizer, pairs, batch_size=3, max_length=64) == pytest.approx(
        -score, abs=1e-6
    )


@pytest.mark.slow
def test_base_minilm_reproduces_the_published_stsb_figure():
    test_file = Path(os.environ.get("STSB_DIR") or "/nonexistent") / "sts-test.csv"
    if not test_file.is_file():
        pytest.skip("real STS-B not available: set STSB_DIR to a folder with sts-test.csv")
    cfg = compose_config("model=minilm")
    encoder = load_classifier(cfg.model, "AutoModelForTokenClassification", LABELS).eval().base_model
    score = similarity_spearman(encoder, load_tokenizer(cfg.model), read_stsb(test_file), batch_size=64, max_length=256)
    assert abs(score - PUBLISHED_MINILM_STSB) <= 0.5, score
