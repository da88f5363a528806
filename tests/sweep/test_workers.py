"""Trials of workers that died or were stopped: failed with their reason, in the storage and in the trial's folder."""

import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

import ftaudit.sweep.trials
from ftaudit.sweep.study import make_storage
from ftaudit.sweep.workers import (
    DEAD_PROCESS,
    SweepInterrupted,
    fail_dead_trials,
    heartbeat_error,
    running_elsewhere,
    trial_errors,
    worker_id,
)
from tests.sweep.conftest import read_trials


def dead_worker() -> dict:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return worker_id() | {"pid": dead.pid}


def started_trial(study: optuna.Study, worker: dict, run_dir) -> optuna.Trial:
    trial = study.ask()
    trial.set_user_attr("worker", worker)
    run_dir.mkdir(parents=True)
    trial.set_user_attr("run_dir", str(run_dir))
    return trial


def test_trials_of_a_dead_worker_are_failed_and_live_ones_kept(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    orphan = started_trial(study, dead_worker(), tmp_path / "trials" / "0")
    live = started_trial(study, worker_id(), tmp_path / "trials" / "1")
    fail_dead_trials(study)
    states = {t.number: t.state for t in study.trials}
    assert states == {orphan.number: TrialState.FAIL, live.number: TrialState.RUNNING}
    assert study.trials[orphan.number].user_attrs["error"] == DEAD_PROCESS
    error_file = (tmp_path / "trials" / "0" / "error.txt").read_text()
    assert error_file.startswith(DEAD_PROCESS) and "was no longer running when pid" in error_file
    assert not (tmp_path / "trials" / "1" / "error.txt").exists()


@pytest.mark.slow
def test_the_heartbeat_fails_a_silent_trial_of_another_host_and_keeps_why(tmp_path):
    storage = make_storage(None, tmp_path, heartbeat_seconds=1, grace_seconds=2)
    study = optuna.create_study(study_name="s", storage=storage)
    elsewhere = started_trial(study, {"host": "elsewhere", "pid": 1, "started": 0.0}, tmp_path / "trials" / "0")
    storage.record_heartbeat(elsewhere._trial_id)  # its worker beat once, then went silent
    fail_dead_trials(study)
    assert study.trials[0].state == TrialState.RUNNING  # within the grace period
    time.sleep(3)
    fail_dead_trials(study)
    assert study.trials[0].state == TrialState.FAIL
    assert trial_errors(study) == {0: heartbeat_error(2)} == {0: "interrupted: its worker sent no heartbeat for 2 s"}
    error_file = (tmp_path / "trials" / "0" / "error.txt").read_text()
    assert "Its worker (pid 1 on elsewhere) stopped sending heartbeats" in error_file


def test_trials_running_on_other_hosts_are_reported_with_their_fate(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    started_trial(study, {"host": "elsewhere", "pid": 7, "started": 0.0}, tmp_path / "0")
    started_trial(study, worker_id(), tmp_path / "1")  # this host's: checked, not reported
    (journal,) = running_elsewhere(study, None)
    assert journal.startswith("trial 0 is running on pid 7 on elsewhere, which cannot be checked from ")
    assert journal.endswith(
        "stays RUNNING (a journal file has no heartbeat) until a sweep started on that host fails it"
    )
    assert running_elsewhere(study, 180)[0].endswith("the heartbeat check fails it 180 s after the last beat")


@pytest.mark.parametrize(
    "signum, name",
    [
        (signal.SIGINT, "SIGINT (Ctrl-C)"),
        (signal.SIGTERM, "SIGTERM"),
        (signal.SIGUSR2, "SIGUSR2 (submitit: the time limit is near)"),
    ],
)
def test_a_stopped_sweep_fails_its_running_trial_and_says_where_it_is(sweep, tmp_path, monkeypatch, signum, name):
    def stopped_during_training(cfg, run_dir, callbacks=()):
        signal.raise_signal(signum)
        raise AssertionError("the signal should have stopped the trial")

    monkeypatch.setattr(ftaudit.sweep.trials, "train", stopped_during_training)
    previous = signal.getsignal(signum)
    with pytest.raises(SweepInterrupted) as caught:
        sweep("sweep.n_trials=3")
    sweep_dir = tmp_path / "sweep"  # the sweep fixture's folder
    assert str(caught.value) == (
        f"sweep interrupted by {name}: trial 0 marked failed; sweep directory: {sweep_dir} "
        "(rerun the same command to continue)"
    )
    assert signal.getsignal(signum) is previous  # the handler is the caller's again
    (row,) = read_trials(sweep_dir)
    assert (row["state"], row["error"]) == ("FAIL", f"interrupted: its worker received {name}")
    assert (sweep_dir / "trials" / "0" / "error.txt").read_text().startswith(f"interrupted: its worker received {name}")
