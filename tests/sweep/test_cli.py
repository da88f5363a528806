"""``python sweep.py`` as users run it: a 4-trial sweep killed mid-trial and resumed, and two workers on one study."""

import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.conftest import run_script
from tests.sweep.conftest import TINY_SWEEP, read_trials, start_sweep

pytestmark = pytest.mark.slow  # real sweeps through sweep.py (subprocesses)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def load(sweep_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="lr_epochs", storage=f"sqlite:///{sweep_dir / 'study.db'}")


def test_sweep_resumes_after_a_kill_without_losing_trials(tmp_path):
    sweep_dir = tmp_path / "outputs" / "sweeps" / "lr_epochs"  # the default folder: the same for every rerun

    killed = start_sweep(tmp_path, "sweep.n_trials=4")
    while not (sweep_dir / "trials" / "2").exists() and killed.poll() is None:
        time.sleep(0.1)
    killed.kill()  # SIGKILL in the middle of trial 2: nothing gets to clean up
    killed.wait()
    before = load(sweep_dir).trials
    assert [t.state for t in before] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.RUNNING]

    resumed = run_script(*TINY_SWEEP, "sweep.n_trials=4", cwd=tmp_path, script="sweep.py")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    study = load(sweep_dir)
    assert [(t.number, t.values, t.params) for t in study.trials[:2]] == [
        (t.number, t.values, t.params) for t in before[:2]
    ]
    assert study.trials[2].state == TrialState.FAIL
    assert study.trials[2].user_attrs["error"] == "interrupted: its worker process died"
    assert len(study.get_trials(states=FINISHED)) == 4 and len(study.trials) == 5

    rows = read_trials(sweep_dir)
    assert [row["state"] for row in rows] == [t.state.name for t in study.trials]
    assert all((Path(row["run_dir"]) / "metrics.json").is_file() for row in rows if row["state"] != "FAIL")
    best = yaml.safe_load((sweep_dir / "best.yaml").read_text())
    assert sum(best["trials"].values()) == 5 and best["trials"]["fail"] == 1
    assert best["best_trials"][0]["number"] == study.best_trial.number
    assert best["best_trials"][0]["command"].startswith("python train.py model=tiny ")
    assert (sweep_dir / "history.png").is_file() and (sweep_dir / "importances.png").is_file()
    assert f"best trial: trial {study.best_trial.number}" in resumed.stdout


def test_two_workers_share_one_study_without_duplicates(tmp_path):
    workers = [start_sweep(tmp_path, "sweep.n_trials=4") for _ in range(2)]
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]

    study = load(tmp_path / "outputs" / "sweeps" / "lr_epochs")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4  # the study total, not 4 per worker
    assert len({t.user_attrs["run_dir"] for t in study.trials}) == 4
    assert all((Path(t.user_attrs["run_dir"]) / "metrics.json").is_file() for t in study.trials)
    assert len({tuple(t.params.values()) for t in study.trials}) == 4
    assert len({t.user_attrs["worker"]["pid"] for t in study.trials}) == 2  # both did share the work
