"""The Python API: ``from ftaudit import compose, train, audit`` runs what the command line runs."""

import json

import pytest

import ftaudit
from ftaudit import compose, train
from ftaudit.errors import ConfigError
from tests.conftest import TINY_RUN

QUICK = [
    *TINY_RUN,
    "trainer.max_epochs=1",
    "hardware.num_threads=1",
    "probes.degradation=[weights]",
    "probes.fairness.enabled=false",
    "logger=csv",
]


def test_the_package_exports_compose_train_and_audit_only():
    assert ftaudit.__all__ == ["audit", "compose", "train"]
    with pytest.raises(AttributeError):
        ftaudit.run_sweep  # noqa: B018


def test_a_notebook_run_goes_under_the_current_folder_as_a_command_line_run_would(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose(QUICK)
    metrics = train(cfg)
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics
    assert (run_dir / "train.log").is_file() and (run_dir / "csv" / "metrics.csv").is_file()  # ${hydra:...} resolved
    card = (run_dir / "model" / "README.md").read_text()
    assert "python train.py model=tiny data.dir=" in card  # the overrides it was composed with
    assert "hydra" in cfg  # the caller's config is left as it was


def test_an_explicit_run_directory_and_bad_overrides(tmp_path):
    train(compose([*QUICK, "record.save_model=false"]), tmp_path / "mine")
    assert (tmp_path / "mine" / "metrics.json").is_file() and not (tmp_path / "mine" / "model").exists()
    with pytest.raises(ConfigError, match="does not compose: Could not override 'trainer.max_epoch'"):
        compose(["trainer.max_epoch=2"])
