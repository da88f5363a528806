"""Sentence data modules: where the data is found, the seeded stratified split, truncation, sentence pairs."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from ftaudit.errors import ConfigError, DataError
from ftaudit.models.loading import load_tokenizer
from ftaudit.tasks.classification.data import encode, ids_sha256
from ftaudit.tasks.classification.reading import Example
from ftaudit.tasks.data import Collator
from tests.conftest import FIXTURE_PHRASEBANK, FIXTURE_TEXT_CSV, TEXT_CSV_PAIRS, compose_config

LABEL2ID = {"neg": 0, "pos": 1}


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(compose_config("model=tiny").model)


def datamodule(tokenizer, *overrides: str, seed: int = 42):
    from ftaudit.tasks import build_task

    cfg = compose_config("task=classification", "model=tiny", *overrides)
    module = build_task(cfg.task).datamodule(cfg.data, tokenizer, seed)
    module.setup()
    return module


def split_ids(module) -> dict[str, list[str]]:
    return {split: [e.id for e in encoded.examples] for split, encoded in module.splits.items()}


def test_phrasebank_split_is_stratified_seeded_apart_from_the_run_and_recorded(tokenizer):
    module = datamodule(tokenizer, f"data.dir={FIXTURE_PHRASEBANK}")
    sizes = {split: len(encoded.examples) for split, encoded in module.splits.items()}
    assert sizes == {"train": 72, "validation": 9, "test": 9}
    for encoded in module.splits.values():  # 30 per label in the file: each split in the same proportions
        assert set(Counter(e.label for e in encoded.examples).values()) == {len(encoded.examples) // 3}
    ids = split_ids(module)
    assert sorted(sum(ids.values(), [])) == sorted(str(n) for n in range(1, 91))  # every sentence in exactly one split
    assert (
        split_ids(datamodule(tokenizer, f"data.dir={FIXTURE_PHRASEBANK}", seed=7)) == ids
    )  # the run's seed: same split
    assert (
        split_ids(datamodule(tokenizer, f"data.dir={FIXTURE_PHRASEBANK}", "data.split_seed=1"))["test"] != ids["test"]
    )
    assert module.labels == ["negative", "neutral", "positive"]
    info = module.data_info
    assert info["labels"] == module.labels and info["split"]["split_seed"] == 0 and info["encoding"] == "iso-8859-1"
    assert info["splits"]["test"] == {
        "examples": 9,
        "labels": {"negative": 3, "neutral": 3, "positive": 3},
        "ids_sha256": ids_sha256(module.splits["test"].examples),
        "truncated": 0,
    }


def test_sample_limits_take_the_first_of_each_split_after_splitting(tokenizer):
    full = split_ids(datamodule(tokenizer, f"data.dir={FIXTURE_PHRASEBANK}"))
    limited = split_ids(
        datamodule(tokenizer, f"data.dir={FIXTURE_PHRASEBANK}", "data.max_train_samples=10", "data.max_eval_samples=4")
    )
    assert limited == {"train": full["train"][:10], "validation": full["validation"][:4], "test": full["test"][:4]}


def test_phrasebank_location_rules(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("PHRASEBANK_DIR", str(FIXTURE_PHRASEBANK))
    assert datamodule(tokenizer).data_files == [FIXTURE_PHRASEBANK / "Sentences_50Agree.txt"]
    with pytest.raises(DataError, match=r"data.dir=/no/where: .* does not exist"):  # given: never falls back to the env
        datamodule(tokenizer, "data.dir=/no/where")
    with pytest.raises(DataError, match=f"no Sentences_66Agree.txt in data.dir={FIXTURE_PHRASEBANK}"):
        datamodule(tokenizer, f"data.dir={FIXTURE_PHRASEBANK}", "data.file=Sentences_66Agree.txt")
    monkeypatch.setenv("PHRASEBANK_DIR", str(tmp_path / "gone"))
    with pytest.raises(DataError, match=r"\$PHRASEBANK_DIR=.*gone: .* does not exist"):
        datamodule(tokenizer)
    monkeypatch.delenv("PHRASEBANK_DIR")
    monkeypatch.setattr("ftaudit.paths.DATA_ROOT", tmp_path)
    with pytest.raises(
        DataError, match=f"no Sentences_50Agree.txt in {tmp_path}/data/financial_phrasebank \\(set data.dir"
    ):
        datamodule(tokenizer)


def test_phrasebank_not_found_says_where_to_get_it_and_its_licence_in_one_line(tokenizer, tmp_path, monkeypatch):
    monkeypatch.delenv("PHRASEBANK_DIR", raising=False)
    monkeypatch.setattr("ftaudit.paths.DATA_ROOT", tmp_path)
    with pytest.raises(DataError) as err:
        datamodule(tokenizer)
    message = str(err.value)
    assert "no hub copy that current `datasets` loads" in message and "FinancialPhraseBank-v1.0.zip" in message
    assert "CC BY-NC-SA 3.0: non-commercial use only" in message and "\n" not in message


def test_text_csv_one_file_per_split_with_pairs_and_ids(tokenizer):
    module = datamodule(
        tokenizer,
        *TEXT_CSV_PAIRS,
    )
    test = module.splits["test"]
    assert [len(module.splits[split].examples) for split in ("train", "validation", "test")] == [48, 12, 12]
    assert test.examples[0].id == "test-0" and test.examples[0].text_pair in (
        "profit warning",
        "earnings report",
        "company profile",
    )
    types = test.extra_inputs["token_type_ids"][0]  # the pair: 0 over [CLS] text [SEP], 1 over pair [SEP]
    assert types[0] == 0 and types[-1] == 1 and len(types) == len(test.input_ids[0])
    assert module.data_info["split"] == "one file per split"
    assert module.data_files == [FIXTURE_TEXT_CSV / f"{split}.csv" for split in ("train", "validation", "test")]
    batch = Collator(test, tokenizer.pad_token_id)([0, 1])
    assert batch["token_type_ids"].shape == batch["input_ids"].shape and batch["labels"].shape == (2,)


def test_text_csv_one_file_is_split_stratified(tokenizer):
    module = datamodule(tokenizer, "data=text_csv", f"data.file={FIXTURE_TEXT_CSV / 'tricky.csv'}")
    assert {split: len(encoded.examples) for split, encoded in module.splits.items()} == {
        "train": 24,
        "validation": 3,
        "test": 3,
    }
    assert Counter(e.label for e in module.splits["test"].examples) == {"negative": 1, "neutral": 1, "positive": 1}
    assert "token_type_ids" not in module.splits["test"].extra_inputs  # single texts


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (["data.dir=/no/where"], DataError, "data.dir=/no/where: /no/where is not a folder"),
        (
            [f"data.dir={FIXTURE_TEXT_CSV}", "data.files.test=missing.csv"],
            DataError,
            "data.files.test=missing.csv: .* is not a file",
        ),
        (
            [f"data.dir={FIXTURE_TEXT_CSV}", "~data.files.test"],
            ConfigError,
            "data.files must name exactly train, validation, test",
        ),
        ([f"data.dir={FIXTURE_TEXT_CSV}"], DataError, "no column 'text'"),
        (
            [f"data.file={FIXTURE_TEXT_CSV / 'tricky.csv'}", "data.test_fraction=0.6", "data.validation_fraction=0.5"],
            ConfigError,
            "must be in \\(0, 1\\) with room left for training",
        ),
    ],
)
def test_text_csv_errors(tokenizer, overrides, error, message):
    with pytest.raises(error, match=message):
        datamodule(tokenizer, "data=text_csv", *overrides)


def test_a_label_too_rare_to_stratify_and_a_single_label_are_data_errors(tokenizer, tmp_path):
    path = tmp_path / "all.csv"
    path.write_text("text,label\n" + "".join(f"text {i},{'a' if i else 'b'}\n" for i in range(20)))
    with pytest.raises(
        DataError, match="cannot split 20 examples stratified by label .* labels: \\{'a': 19, 'b': 1\\}"
    ):
        datamodule(tokenizer, "data=text_csv", f"data.file={path}")
    path.write_text("text,label\n" + "".join(f"text {i},a\n" for i in range(20)))
    with pytest.raises(DataError, match="only the label \\['a'\\] in the data"):
        datamodule(tokenizer, "data=text_csv", f"data.file={path}")


def test_truncation_cuts_at_max_length_and_counts_what_it_cut(tokenizer):
    examples = [Example("1", "short", "neg"), Example("2", " ".join(["word"] * 40), "pos")]
    encoded = encode(tokenizer, examples, LABEL2ID, max_length=16)
    assert [len(ids) for ids in encoded.input_ids] == [3, 16] and encoded.truncated == 1
    assert encoded.input_ids[1][-1] == tokenizer.sep_token_id  # cut inside the text, the frame kept
    assert [int(label) for label in encoded.labels] == [0, 1]
    pairs = [Example("1", "a b", "neg", "c d"), Example("2", "a b", "pos", " ".join(["long"] * 40))]
    encoded = encode(tokenizer, pairs, LABEL2ID, max_length=16)
    assert [len(ids) for ids in encoded.input_ids] == [7, 16] and encoded.truncated == 1
    assert torch.equal(encoded.input_ids[1][:4], encoded.input_ids[0][:4])  # the longer text of the pair was cut


def test_truncated_counts_reach_the_record(tokenizer):
    module = datamodule(tokenizer, f"data.dir={FIXTURE_PHRASEBANK}", "data.max_length=12")
    counts = {split: info["truncated"] for split, info in module.data_info["splits"].items()}
    assert counts["train"] > 0 and counts == {split: encoded.truncated for split, encoded in module.splits.items()}
    assert module.data_info["max_length"] == 12 and max(module.splits["train"].lengths) == 12


def test_real_phrasebank_counts_and_split(tokenizer, real_phrasebank_dir):
    module = datamodule(tokenizer, f"data.dir={real_phrasebank_dir}")
    examples = [e for encoded in module.splits.values() for e in encoded.examples]
    assert Counter(e.label for e in examples) == {
        "neutral": 2879,
        "positive": 1363,
        "negative": 604,
    }  # the data README's
    assert {split: info["examples"] for split, info in module.data_info["splits"].items()} == {
        "train": 3876,
        "validation": 485,
        "test": 485,
    }
    assert sum(info["truncated"] for info in module.data_info["splits"].values()) == 0  # short news sentences
