"""Probe text inputs: WikiText-2 sentence sampling and length-sorted batches."""

from __future__ import annotations

import pytest

from ftaudit.errors import DataError
from ftaudit.hub import hub_splits
from ftaudit.models.loading import load_tokenizer
from ftaudit.probes.text import text_batches, wikitext_sentences
from tests.conftest import compose_config
from tests.probes.test_degradation import write_wikitext, write_wikitext_hub


def test_wikitext_sample_is_body_sentences_unescaped_fixed_by_seed(tmp_path):
    path = write_wikitext(tmp_path) / "wiki.test.raw"
    sample = wikitext_sentences(path, count=10, seed=0)
    assert len(sample) == len(set(sample)) == 10
    assert not any(sentence.startswith("=") or "@" in sentence for sentence in sample)
    assert any("-th game was released" in sentence for sentence in wikitext_sentences(path, count=36, seed=0))
    assert all(sentence.endswith(".") for sentence in sample)
    assert wikitext_sentences(path, count=10, seed=0) == sample
    assert wikitext_sentences(path, count=10, seed=1) != sample


def test_the_hub_copy_one_row_per_line_gives_the_raw_files_sentences(tmp_path, hub_cache):
    hub = hub_splits(str(write_wikitext_hub(tmp_path)), "wikitext-2-raw-v1", ["test"])["test"]
    raw = tmp_path / "raw" / "wiki.test.raw"
    assert wikitext_sentences(hub, count=36, seed=0) == wikitext_sentences(raw, count=36, seed=0)


def test_too_few_sentences_is_a_data_error(tmp_path):
    path = write_wikitext(tmp_path, paragraphs=1) / "wiki.test.raw"
    with pytest.raises(DataError, match="has 3 sentences"):
        wikitext_sentences(path, count=4, seed=0)


def test_batches_cover_every_text_once_longest_first_truncated():
    tokenizer = load_tokenizer(compose_config("model=tiny").model)
    texts = [
        "short",
        "a somewhat longer text here",
        "the longest text of them all by quite a margin indeed",
        "mid text",
    ]
    batches = list(text_batches(tokenizer, texts, batch_size=3, max_length=8))
    assert sorted(index for indices, _ in batches for index in indices) == [0, 1, 2, 3]
    assert batches[0][0][0] == 2
    assert max(batch["input_ids"].shape[1] for _, batch in batches) == 8
    assert set(batches[0][1]) == {"input_ids", "attention_mask"}
