"""Resuming a killed run (``trainer.resume``): the same metrics as the uninterrupted run, and the refusals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from ftaudit.cli import check_launch
from ftaudit.errors import ConfigError, Interrupted
from ftaudit.resume import last_checkpoint
from ftaudit.run import train
from tests.conftest import REPO, TINY_RUN, compose_config, run_script

# Two epochs, dropout on (the tiny model's own 0.1), no probes: only training decides these metrics.
RESUMABLE = [
    *TINY_RUN,
    "trainer.max_epochs=2",
    "hardware.num_threads=1",
    "probes.degradation=[]",
    "probes.fairness.enabled=false",
    "record.save_model=false",
    "logger=none",
]


def task_metrics(run_dir: Path) -> dict[str, float]:
    return {k: v for k, v in json.loads((run_dir / "metrics.json").read_text()).items() if k.startswith("task/")}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = run_script(*RESUMABLE, f"hydra.run.dir={run_dir}", cwd=run_dir.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> Path:
    """The same run, SIGKILLed as soon as its first epoch's checkpoint is there (in the second epoch)."""
    run_dir = tmp_path_factory.mktemp("killed") / "run"
    process = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *RESUMABLE, f"hydra.run.dir={run_dir}"],
        cwd=run_dir.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not last_checkpoint(run_dir).is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert last_checkpoint(run_dir).is_file() and not (run_dir / "metrics.json").exists()
    return run_dir


@pytest.fixture
def killed_copy(killed, tmp_path) -> Path:
    """A copy of the killed run, for a test to resume or refuse on its own."""
    return Path(shutil.copytree(killed, tmp_path / "run"))


@pytest.mark.slow
def test_a_run_killed_after_its_first_epoch_resumes_to_the_uninterrupted_metrics(uninterrupted, killed_copy):
    result = run_script(*RESUMABLE, f"trainer.resume={killed_copy}", cwd=killed_copy.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"run directory: {killed_copy}" in result.stdout  # Hydra's run directory became the resumed one
    assert task_metrics(killed_copy) == task_metrics(uninterrupted)
    assert "resumed" in json.loads((killed_copy / "env.json").read_text())
    assert not (killed_copy / "checkpoints").exists()  # only what the record needs is kept


@pytest.mark.slow
def test_a_resume_with_another_config_names_the_keys_that_differ(killed_copy):
    with pytest.raises(
        ConfigError, match=r"config differs .* at optimizer.lr \('\$\{model.lr\}' -> 0.1\); seed \(42 -> 3\)"
    ):
        check_launch("train", [*RESUMABLE, "optimizer.lr=0.1", "seed=3", f"trainer.resume={killed_copy}"], True)


@pytest.mark.slow
def test_a_resume_runs_in_the_folder_it_resumes(killed_copy):
    assert check_launch("train", [*RESUMABLE, f"trainer.resume={killed_copy}"], True) == [
        f"hydra.run.dir={killed_copy}"
    ]
    with pytest.raises(ConfigError, match="a run resumes in its own folder"):
        check_launch("train", [*RESUMABLE, f"trainer.resume={killed_copy}", "hydra.run.dir=elsewhere"], True)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, message",
    [
        ("finished", "that run finished"),
        ("no checkpoint", "nothing to resume"),
        ("multirun", "launch it without -m"),
        ("sweep", "not resumed one by one"),
    ],
)
def test_what_cannot_be_resumed_is_refused_in_one_line(killed_copy, case, message):
    args, config = [*RESUMABLE, f"trainer.resume={killed_copy}"], "train"
    if case == "finished":
        (killed_copy / "metrics.json").write_text("{}")
    elif case == "no checkpoint":
        last_checkpoint(killed_copy).unlink()
    elif case == "multirun":
        args.append("-m")
    else:
        config = "sweep"
    with pytest.raises(ConfigError, match=message):
        check_launch(config, args, True)


class CtrlCAtEpoch(L.Callback):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


class DrawsAndBatches(L.Callback):
    """The first batch of each epoch and torch's random state when it starts: what a resume must continue."""

    def __init__(self):
        self.seen = {}

    def on_train_batch_start(self, trainer, module, batch, batch_index):
        if batch_index == 0:
            self.seen[trainer.current_epoch] = (batch["example_index"].tolist(), torch.get_rng_state())


@pytest.mark.slow
@pytest.mark.parametrize("method", ["full", "adalora"])  # AdaLoRA: its rank allocator's estimates are resumed too
def test_ctrl_c_keeps_the_last_epoch_to_resume_and_the_resume_continues_batches_and_draws(tmp_path, method):
    overrides = [*RESUMABLE, f"method={method}"]
    whole = DrawsAndBatches()
    expected = train(compose_config(*overrides), tmp_path / "whole", callbacks=[whole])
    run_dir = tmp_path / "interrupted"
    with pytest.raises(Interrupted, match=f"continue it with the same overrides and trainer.resume={run_dir}"):
        train(compose_config(*overrides), run_dir, callbacks=[CtrlCAtEpoch(1)])
    assert last_checkpoint(run_dir).is_file()
    resumed = DrawsAndBatches()
    metrics = train(compose_config(*overrides, f"trainer.resume={run_dir}"), run_dir, callbacks=[resumed])
    assert list(resumed.seen) == [1]
    assert resumed.seen[1][0] == whole.seen[1][0]  # epoch 1's order, not a new sampler's epoch 0
    assert torch.equal(resumed.seen[1][1], whole.seen[1][1])  # dropout draws as in the uninterrupted run
    assert {k: v for k, v in metrics.items() if k.startswith("task/")} == {
        k: v for k, v in expected.items() if k.startswith("task/")
    }
    assert metrics["resource/train_tokens"] == expected["resource/train_tokens"]  # both epochs counted


@pytest.mark.slow
def test_a_resume_must_run_in_its_own_folder(killed_copy, tmp_path):
    with pytest.raises(ConfigError, match="a run resumes in its own folder"):
        train(compose_config(*RESUMABLE, f"trainer.resume={killed_copy}"), tmp_path / "other")


def test_the_epoch_checkpoint_is_replaced_whole(tmp_path, monkeypatch):
    """A kill while the checkpoint is written leaves the previous one: it is written beside it and renamed over it."""
    writes = []
    real_replace = os.replace
    monkeypatch.setattr(
        "ftaudit.resume.os.replace",
        lambda source, target: writes.append((Path(source).name, Path(target).name)) or real_replace(source, target),
    )
    train(compose_config(*RESUMABLE), tmp_path)
    assert [write for write in writes if "last.ckpt" in write[1]] == [(".last.ckpt.tmp", "last.ckpt")] * 2
