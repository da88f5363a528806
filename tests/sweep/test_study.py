"""The study: settings checked up front, per-trial seeding, resuming only the same study, dead workers' trials."""

import subprocess
import sys

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from optuna.trial import TrialState

from ftaudit.config import CONFIG_DIR
from ftaudit.errors import ConfigError
from ftaudit.sweep.study import (TrialSeededSampler, fail_dead_trials, make_storage, open_study, read_settings,
                                 train_overrides, worker_id)
from ftaudit.tasks import build_task
from tests.conftest import REPO


def sweep_settings(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("sweep", overrides=list(overrides))
        return read_settings(cfg.sweep, build_task(cfg.task))


def test_default_sweep_searches_lr_and_epochs_on_val_f1():
    settings = sweep_settings()
    assert settings.objectives == [("task/val_f1", "maximize")] and settings.prune
    assert set(settings.space) == {"optimizer.lr", "trainer.max_epochs"}
    assert settings.space["optimizer.lr"].log and (settings.space["optimizer.lr"].low, settings.space["optimizer.lr"].high) == (1e-6, 1e-3)
    assert (settings.space["trainer.max_epochs"].low, settings.space["trainer.max_epochs"].high) == (1, 5)


def test_multi_objective_turns_pruning_off_and_says_so():
    settings = sweep_settings("sweep.objectives=[task/val_f1:max,degradation/stsb/drop:min]")
    assert settings.objectives == [("task/val_f1", "maximize"), ("degradation/stsb/drop", "minimize")]
    assert not settings.prune and settings.pruning == "off: Optuna cannot prune multi-objective studies"


def test_every_settings_problem_in_one_line():
    with pytest.raises(ConfigError) as caught:
        sweep_settings("sweep.objectives=[task/val_f1:up]", "sweep.n_trials=0", "sweep.pruner=never",
                       "sweep.max_failures=0", "sweep.sampler=grid")
    message = str(caught.value)
    for fragment in ("'task/val_f1:up' must be <metric>:max or <metric>:min",
                     "sweep.n_trials=0", "sweep.pruner='never'", "sweep.max_failures=0", "sweep.sampler='grid'"):
        assert fragment in message
    assert "\n" not in message


def test_only_sweep_overrides_are_left_out_of_the_runs():
    assert train_overrides(["model=tiny", "sweep.n_trials=3", "+sweep.worker=1", "sweep=lr_epochs", "seed=2",
                            "sweeper_note=x"]) == ["model=tiny", "seed=2", "sweeper_note=x"]


def toy_study(seed: int, storage=None, name="toy") -> optuna.Study:
    sampler = TrialSeededSampler(lambda seed: optuna.samplers.RandomSampler(seed=seed), seed)
    return optuna.create_study(study_name=name, storage=storage, sampler=sampler, load_if_exists=True)


def toy_objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0, 1) + trial.suggest_int("n", 0, 1000)


def draws(study: optuna.Study) -> list[tuple]:
    return [(t.params["x"], t.params["n"]) for t in study.trials]


def test_trial_seeded_sampler_is_reproducible_and_never_repeats_on_resume(tmp_path):
    first, again = toy_study(0), toy_study(0)
    first.optimize(toy_objective, n_trials=3)
    again.optimize(toy_objective, n_trials=3)
    assert draws(first) == draws(again)  # one worker: the same sweep twice
    storage = f"sqlite:///{tmp_path / 'toy.db'}"
    toy_study(0, storage).optimize(toy_objective, n_trials=2)
    toy_study(0, storage).optimize(toy_objective, n_trials=2)  # a second session (or worker) with the same seed
    resumed = draws(optuna.load_study(study_name="toy", storage=storage))
    assert resumed[:3] == draws(first)[:3] and len(set(resumed)) == 4


def test_resuming_refuses_a_different_command(tmp_path):
    settings = sweep_settings()
    open_study(settings, tmp_path, ["model=tiny"])
    open_study(settings, tmp_path, ["model=tiny"])  # the same command continues
    with pytest.raises(ConfigError, match="other train_overrides .* sweep.study_name=<name>"):
        open_study(settings, tmp_path, ["model=tiny", "seed=3"])
    with pytest.raises(ConfigError, match="other space"):
        open_study(sweep_settings("sweep.space.trainer.max_epochs.high=9"), tmp_path, ["model=tiny"])


def test_trials_of_a_dead_worker_are_failed_and_live_ones_kept(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_worker = worker_id() | {"pid": dead.pid}
    dead.wait()
    orphan, live = study.ask(), study.ask()
    orphan.set_user_attr("worker", dead_worker)
    live.set_user_attr("worker", worker_id())
    fail_dead_trials(study)
    states = {t.number: t.state for t in study.trials}
    assert states == {orphan.number: TrialState.FAIL, live.number: TrialState.RUNNING}
    assert study.trials[orphan.number].user_attrs["error"] == "interrupted: its worker process died"


def test_storage_urls_journal_files_and_bad_urls(tmp_path):
    journal = make_storage(f"journal:{tmp_path / 'lr.journal'}", tmp_path)
    optuna.create_study(study_name="j", storage=journal).optimize(toy_objective, n_trials=1)
    assert len(optuna.load_study(study_name="j", storage=make_storage(f"journal:{tmp_path / 'lr.journal'}", tmp_path)).trials) == 1
    with pytest.raises(ConfigError, match="sweep.storage=nosuchdb://x cannot be opened"):
        make_storage("nosuchdb://x", tmp_path)
