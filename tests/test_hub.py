"""Hub data: loaded through `datasets` from a folder in the hub's layout, recorded by id, revision and fingerprint."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from ftaudit import hub
from ftaudit.errors import DataError
from ftaudit.files import file_sha256
from ftaudit.hub import HubUnavailable, hub_splits
from ftaudit.run import train
from ftaudit.tracking.summary import data_file_hashes
from tests.conftest import TINY_RUN, compose_config
from tests.hub_layout import write_hub_dataset
from tests.probes.test_degradation import write_stsb_hub
from tests.tasks.ner.test_conll import fixture_sentences, write_conll_hub

ROWS = {"text": ["one", "two"]}


def test_a_split_is_read_and_recorded_by_id_revision_fingerprint_and_file_hashes(tmp_path, hub_cache):
    folder = write_hub_dataset(tmp_path / "repo", {"test": ROWS, "validation": {"text": ["three"]}})
    split = hub_splits(str(folder), None, ["test"])["test"]
    assert split.column("text") == ["one", "two"] and split.revision and split.fingerprint
    record = split.record()
    assert {key: record[key] for key in ("hub_id", "config", "split", "revision", "fingerprint")} == {
        "hub_id": str(folder),
        "config": None,
        "split": "test",
        "revision": split.revision,
        "fingerprint": split.fingerprint,
    }
    files = [Path(entry["path"]) for entry in record["files"]]
    assert files and all(path.is_relative_to(hub_cache) for path in files)  # datasets' own cache of what it read
    assert [entry["sha256"] for entry in record["files"]] == [file_sha256(path) for path in files]


def test_the_run_records_a_hub_split_beside_the_files_it_read_each_once(tmp_path, hub_cache):
    split = hub_splits(str(write_hub_dataset(tmp_path / "repo", {"test": ROWS})), None, ["test"])["test"]
    local = tmp_path / "local.txt"
    local.write_text("x")
    probes = [SimpleNamespace(data_files=[split]), SimpleNamespace(data_files=[split, local])]
    assert data_file_hashes(SimpleNamespace(data_files=[local]), probes) == [
        {"path": str(local.resolve()), "sha256": file_sha256(local)},
        split.record(),
    ]


def test_a_missing_split_or_field_is_one_line_naming_what_there_is(tmp_path, hub_cache):
    folder = write_hub_dataset(tmp_path / "repo", {"train": ROWS})
    with pytest.raises(DataError, match="no validation, test split \\(it has train\\)"):
        hub_splits(str(folder), None, ["validation", "test"])
    with pytest.raises(DataError, match="train split: no field 'sentence' \\(it has text\\)"):
        hub_splits(str(folder), None, ["train"])["train"].column("sentence")


def test_a_config_is_read_as_the_hub_declares_it(tmp_path, hub_cache):
    folder = write_hub_dataset(tmp_path / "repo", {"test": ROWS}, config="wikitext-2-raw-v1")
    split = hub_splits(str(folder), "wikitext-2-raw-v1", ["test"])["test"]
    assert split.column("text") == ["one", "two"] and split.record()["config"] == "wikitext-2-raw-v1"
    with pytest.raises(HubUnavailable):
        hub_splits(str(folder), "wikitext-103-raw-v1", ["test"])


def test_an_unreachable_hub_is_asked_once_per_process(monkeypatch, hub_cache):
    """Each attempt retries for ~20 s: once the hub is known to be out of reach, other ids fail at once."""
    import datasets

    calls = []

    def offline(hub_id, config):
        calls.append(hub_id)
        raise ConnectionError(f"Couldn't reach '{hub_id}' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset_builder", offline)
    monkeypatch.setattr(hub, "_unreachable", [])
    with pytest.raises(HubUnavailable, match="^ConnectionError: Couldn't reach 'someone/stsb'"):
        hub_splits("someone/stsb", None, ["test"])
    with pytest.raises(
        HubUnavailable,
        match="^not asked, the hub was out of reach just before: ConnectionError: Couldn't reach 'someone/stsb'",
    ):
        hub_splits("someone/wikitext", None, ["test"])
    assert calls == ["someone/stsb"]


def test_a_run_given_no_data_reads_the_hub_and_records_each_split(tmp_path, hub_cache, monkeypatch):
    for variable in ("CONLL2003_DIR", "STSB_DIR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr("ftaudit.paths.DATA_ROOT", tmp_path)  # nothing in <repo>/data either
    conll = write_conll_hub(tmp_path / "conll-hub", fixture_sentences())
    stsb = write_stsb_hub(tmp_path / "stsb-hub")
    run_dir = tmp_path / "run"
    train(
        compose_config(
            *[o for o in TINY_RUN if not o.startswith("data.dir=")],
            "trainer.max_epochs=1",
            f"data.hub_id={conll}",
            "probes.degradation=[stsb]",
            "probes.fairness.enabled=false",
            "probes.degradation_settings.stsb.dir=null",
            f"probes.degradation_settings.stsb.hub_id={stsb}",
        ),
        run_dir,
    )
    recorded = json.loads((run_dir / "env.json").read_text())["data_files"]
    assert [(entry["hub_id"], entry["split"]) for entry in recorded] == [
        (str(conll), "train"),
        (str(conll), "validation"),
        (str(conll), "test"),
        (str(stsb), "test"),
    ]
    assert all(entry["revision"] and entry["fingerprint"] and entry["files"] for entry in recorded)
    assert "degradation/stsb/drop" in json.loads((run_dir / "metrics.json").read_text())
