"""Sweeps on the tiny model and the shipped tiny CoNLL fixture: a few trials of one epoch each."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ftaudit.config import CONFIG_DIR
from ftaudit.sweep import run_sweep
from tests.conftest import REPO, TINY_SUBSET_RUN
from tests.postgres_server import PostgresUnavailable, throwaway_postgres

TINY_SWEEP = [
    *TINY_SUBSET_RUN,
    "sweep.space.trainer.max_epochs.high=1",
    "sweep.space.optimizer.lr.low=1e-4",
]


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


OTHER_HOST = "otherhost"


def start_sweep(cwd: Path, *overrides: str, host: str | None = None) -> subprocess.Popen:
    """``python sweep.py TINY_SWEEP *overrides`` from ``cwd``; with ``host``, in a UTS namespace of its own whose
    host name is ``host``: to this machine's workers it is a worker on another machine, whose process they cannot
    check (the same process ids, so a worker started under the same name can)."""
    prefix = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', host] if host else []
    return subprocess.Popen(
        [*prefix, sys.executable, str(REPO / "sweep.py"), *TINY_SWEEP, *overrides],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
    )


@pytest.fixture(scope="session")
def other_host() -> str:
    """A host name for ``start_sweep(host=...)``; skips where this process may not make a UTS namespace."""
    if (
        not shutil.which("unshare")
        or subprocess.run(["unshare", "--uts", "hostname", OTHER_HOST], capture_output=True).returncode != 0
    ):
        pytest.skip("cannot start a worker under another host name here (unshare --uts needs root)")
    return OTHER_HOST


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server for the whole session (tests/postgres_server.py); skips with the reason where
    none can be started."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_postgres())
        except PostgresUnavailable as err:
            pytest.skip(f"no PostgreSQL server can be started here: {err}")
        yield url
