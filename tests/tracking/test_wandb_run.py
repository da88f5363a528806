"""W&B tracking, offline and read back from the ``.wandb`` files: summary = metrics.json, one run per job, one group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_RUN
from tests.tracking.wandb_records import offline_run_files, read_offline_run

pytestmark = pytest.mark.slow  # every test reads one real multirun (subprocess)

FAKE_KEY = "fake-api-key-0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def multirun(tmp_path_factory) -> tuple[Path, str]:
    """``python train.py -m ... seed=1,2 logger=wandb`` with WANDB_MODE unset (so: offline) and a key in the env."""
    cwd = tmp_path_factory.mktemp("wandb")
    env = {key: value for key, value in os.environ.items() if key not in ("WANDB_MODE", "WANDB_DIR")}
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            "-m",
            *TINY_RUN,
            "logger=wandb",
            "trainer.log_every_n_steps=1",
            "seed=1,2",
            "hydra.sweep.dir=sweep",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**env, "WANDB_API_KEY": FAKE_KEY},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "sweep", result.stdout + result.stderr


def job_dirs(sweep: Path) -> list[Path]:
    return sorted(path.parent for path in sweep.glob("*/metrics.json"))


def test_each_job_is_its_own_offline_run_in_one_group(multirun):
    sweep, _ = multirun
    files = offline_run_files(sweep)
    assert [path.relative_to(sweep).parts[0] for path in files] == ["0", "1"]  # beside each job's record
    runs = [read_offline_run(path) for path in files]
    assert runs[0].run_id != runs[1].run_id
    assert runs[0].group == runs[1].group == f"multirun-{sweep.name}"
    assert [run.exit_code for run in runs] == [0, 0]
    assert sorted(run.config["seed"] for run in runs) == [1, 2]


def test_summary_holds_every_metrics_json_key(multirun):
    sweep, _ = multirun
    for job in job_dirs(sweep):
        metrics = json.loads((job / "metrics.json").read_text())
        (wandb_file,) = offline_run_files(job)
        summary = read_offline_run(wandb_file).summary
        assert {key: summary.get(key) for key in metrics} == metrics


def test_config_loss_lr_and_val_metrics_are_logged(multirun):
    sweep, _ = multirun
    run = read_offline_run(offline_run_files(sweep)[0])
    assert run.config["optimizer.lr"] == 3e-3 and run.config["model.name"] == "tiny"  # model=tiny's own lr
    steps = [row for row in run.history if "train/loss" in row]
    learning_rates = [row["lr-AdamW/pg1"] for row in run.history if "lr-AdamW/pg1" in row]
    epochs = [row for row in run.history if "val/f1" in row]
    assert len(steps) > 2 and len(learning_rates) == len(steps)
    assert max(learning_rates) > learning_rates[-1] > 0  # warm-up then decay
    assert len(epochs) == 3  # TINY_RUN: trainer.max_epochs=3, one validation row per epoch
    assert run.summary["tables/test_f1_per_type/_type"] == "table-file"


def test_output_names_run_directory_and_wandb_run(multirun):
    sweep, output = multirun
    for job, wandb_file in zip(job_dirs(sweep), offline_run_files(sweep)):
        run_id = read_offline_run(wandb_file).run_id
        assert f"run directory: {job}" in output
        assert f"W&B run: ftaudit/{run_id} (offline, files in {wandb_file.parent})" in output
    assert "wandb:" not in output  # W&B's own chatter stays quiet


def test_api_key_is_never_written(multirun):
    sweep, output = multirun
    assert FAKE_KEY not in output
    for path in sweep.rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), path
