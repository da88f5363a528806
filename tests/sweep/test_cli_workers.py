"""``sweep.py`` workers as separate processes on shared storage: PostgreSQL and a journal file, a worker killed with
SIGKILL mid-trial on "another machine" (its own host name), and Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from ftaudit.sweep.study import make_storage
from ftaudit.sweep.workers import DEAD_PROCESS, heartbeat_error, trial_errors
from tests.sweep.conftest import read_trials, start_sweep

pytestmark = pytest.mark.slow  # real sweep workers (subprocesses)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
GRACE = 3


def wait_for(condition, worker: subprocess.Popen, what: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert worker.poll() is None, f"worker ended before {what}: {worker.communicate()[0][-3000:]}"
        time.sleep(0.2)
    raise AssertionError(f"no {what} after {timeout} s")


def opened(storage: str, sweep_dir: Path):
    """The storage as the workers open it (one instance per test: each RDB instance holds its connections)."""
    return make_storage(storage, sweep_dir, heartbeat_seconds=1, grace_seconds=GRACE)


def training_trial_of(storage, name: str, host: str):
    """A RUNNING trial of the worker on ``host`` that has started training (its folder has its train.log)."""

    def find():
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:  # the study is not created yet
            return None
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker, run_dir = trial.user_attrs.get("worker"), trial.user_attrs.get("run_dir")
            if worker and worker["host"] == host and run_dir and (Path(run_dir) / "train.log").is_file():
                return trial
        return None

    return find


def check_study(study: optuna.Study, n_trials: int, killed: int) -> None:
    """Exactly n_trials finished, the killed trial failed, nothing running, every trial number once."""
    trials = study.get_trials(deepcopy=False)
    assert [trial.number for trial in trials] == list(range(len(trials)))
    assert len(study.get_trials(states=FINISHED)) == n_trials
    assert [trial.number for trial in trials if trial.state not in FINISHED] == [killed]
    assert trials[killed].state == TrialState.FAIL
    assert len({trial.user_attrs["run_dir"] for trial in trials}) == len(trials)
    assert all(
        (Path(trial.user_attrs["run_dir"]) / "metrics.json").is_file()
        for trial in trials
        if trial.state == TrialState.COMPLETE
    )


def check_records(sweep_dir: Path, killed: int, error: str) -> None:
    """trials.csv, best.yaml and the trial's error.txt all say why the killed trial failed."""
    rows = {int(row["number"]): row for row in read_trials(sweep_dir)}
    assert (rows[killed]["state"], rows[killed]["error"]) == ("FAIL", error)
    assert yaml.safe_load((sweep_dir / "best.yaml").read_text())["failed_trials"] == {killed: error}
    assert (Path(rows[killed]["run_dir"]) / "error.txt").read_text().startswith(error)


def test_two_workers_on_postgresql_and_a_killed_one_failed_by_the_heartbeat(tmp_path, postgres_url, other_host):
    name, n_trials = "pg", 4
    sweep_dir = tmp_path / "outputs" / "sweeps" / name
    options = [
        f"sweep.storage={postgres_url}",
        f"sweep.study_name={name}",
        f"sweep.n_trials={n_trials}",
        "sweep.heartbeat_seconds=1",
        f"sweep.grace_seconds={GRACE}",
    ]
    storage = opened(postgres_url, sweep_dir)
    here, elsewhere = start_sweep(tmp_path, *options), start_sweep(tmp_path, *options, host=other_host)
    victim = wait_for(training_trial_of(storage, name, other_host), elsewhere, "trial on the other host")
    elsewhere.send_signal(signal.SIGKILL)
    killed_at = datetime.now()
    elsewhere.wait()
    output = here.communicate(timeout=600)[0]
    assert here.returncode == 0, output[-3000:]

    study = optuna.load_study(study_name=name, storage=storage)
    check_study(study, n_trials, victim.number)
    assert trial_errors(study) == {victim.number: heartbeat_error(GRACE)}
    check_records(sweep_dir, victim.number, heartbeat_error(GRACE))
    seconds_to_fail = (study.trials[victim.number].datetime_complete - killed_at).total_seconds()
    assert GRACE - 1 < seconds_to_fail < 60
    workers = {trial.user_attrs["worker"]["host"] for trial in study.trials}
    print(
        f"\nPostgreSQL: 2 workers, {n_trials} trials finished, trial {victim.number} killed on {other_host}: FAIL "
        f"{seconds_to_fail:.1f} s after SIGKILL (heartbeat 1 s, grace {GRACE} s); trials by host {sorted(workers)}"
    )


def test_journal_storage_leaves_a_killed_trial_running_until_a_worker_on_its_host_fails_it(tmp_path, other_host):
    name, n_trials = "journal", 3
    sweep_dir = tmp_path / "outputs" / "sweeps" / name
    journal = f"journal:{tmp_path / 'study.journal'}"
    options = [f"sweep.storage={journal}", f"sweep.study_name={name}", f"sweep.n_trials={n_trials}"]
    storage = opened(journal, sweep_dir)
    here, elsewhere = start_sweep(tmp_path, *options), start_sweep(tmp_path, *options, host=other_host)
    victim = wait_for(training_trial_of(storage, name, other_host), elsewhere, "trial on the other host")
    elsewhere.send_signal(signal.SIGKILL)
    elsewhere.wait()
    output = here.communicate(timeout=600)[0]
    assert here.returncode == 0, output[-3000:]
    # No heartbeat: the trial stays RUNNING (and counts towards n_trials), and the summary says so.
    study = optuna.load_study(study_name=name, storage=storage)
    assert [trial.number for trial in study.get_trials(states=(TrialState.RUNNING,))] == [victim.number]
    assert len(study.get_trials(states=FINISHED)) == n_trials - 1
    assert (
        f"trial {victim.number} is running on pid {elsewhere.pid} on {other_host}, which cannot be checked from"
        in output
        and "a journal file has no heartbeat" in output
    )

    again = start_sweep(tmp_path, *options, host=other_host)  # a sweep on its host finds the dead process
    output = again.communicate(timeout=600)[0]
    assert again.returncode == 0, output[-3000:]
    study = optuna.load_study(study_name=name, storage=storage)
    check_study(study, n_trials, victim.number)
    assert trial_errors(study) == {victim.number: DEAD_PROCESS}
    check_records(sweep_dir, victim.number, DEAD_PROCESS)


def test_ctrl_c_fails_the_running_trial_and_ends_with_one_line(tmp_path):
    sweep_dir = tmp_path / "outputs" / "sweeps" / "lr_epochs"
    worker = start_sweep(tmp_path, "sweep.n_trials=3", "trainer.max_epochs=50", "~sweep.space.trainer")
    wait_for(lambda: (sweep_dir / "trials" / "0" / "train.log").is_file(), worker, "trial 0")
    time.sleep(2)  # into training, where Lightning would turn Ctrl-C into sys.exit(1)
    worker.send_signal(signal.SIGINT)
    output = worker.communicate(timeout=120)[0]
    assert worker.returncode == 130 and "Traceback" not in output, output[-3000:]
    assert output.rstrip().splitlines()[-1] == (
        f"sweep interrupted by SIGINT (Ctrl-C): trial 0 marked failed; sweep "
        f"directory: {sweep_dir} (rerun the same command to continue)"
    )
    error = "interrupted: its worker received SIGINT (Ctrl-C)"
    study = optuna.load_study(study_name="lr_epochs", storage=f"sqlite:///{sweep_dir / 'study.db'}")
    assert [(trial.state, trial.user_attrs["error"]) for trial in study.trials] == [(TrialState.FAIL, error)]
    assert (sweep_dir / "trials" / "0" / "error.txt").read_text().startswith(error)
    assert read_trials(sweep_dir)[0]["error"] == error
