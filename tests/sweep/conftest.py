"""Sweeps on the tiny model and the shipped tiny CoNLL fixture: a few trials of one epoch each."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ftaudit.config import CONFIG_DIR
from ftaudit.sweep import run_sweep
from tests.conftest import FIXTURE_CONLL, REPO

TINY_SWEEP = ["model=tiny", f"data.dir={FIXTURE_CONLL}", "data.max_train_samples=24", "data.max_eval_samples=12",
              "data.batch_size=8", "trainer.progress_bar=false", "probes.degradation=[]", "logger=csv",
              "sweep.space.trainer.max_epochs.high=1", "sweep.space.optimizer.lr.low=1e-4"]


@pytest.fixture
def sweep(tmp_path):
    """``sweep(*overrides)`` runs a sweep in-process as ``python sweep.py TINY_SWEEP *overrides`` would, in one folder
    per test (so calling it again continues the same study); returns (study, sweep folder)."""
    sweep_dir = tmp_path / "sweep"

    def run(*overrides: str):
        overrides = [*TINY_SWEEP, *overrides]
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return run_sweep(compose("sweep", overrides=overrides), sweep_dir, overrides), sweep_dir

    yield run
    GlobalHydra.instance().clear()


def read_trials(sweep_dir: Path) -> list[dict]:
    with (sweep_dir / "trials.csv").open(newline="") as stream:
        return list(csv.DictReader(stream))
