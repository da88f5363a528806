"""The study: settings checked up front, per-trial seeding, resuming only the same study, storages and heartbeats."""

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ftaudit.config import CONFIG_DIR
from ftaudit.errors import ConfigError
from ftaudit.sweep.study import TrialSeededSampler, make_storage, open_study, read_settings, train_overrides
from ftaudit.tasks import build_task


def sweep_settings(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("sweep", overrides=list(overrides))
        return read_settings(cfg.sweep, build_task(cfg.task))


def test_default_sweep_searches_lr_and_epochs_on_val_f1():
    settings = sweep_settings()
    assert settings.objectives == [("task/val_f1", "maximize")] and settings.prune
    assert set(settings.space) == {"optimizer.lr", "trainer.max_epochs"}
    assert settings.space["optimizer.lr"].log and (
        settings.space["optimizer.lr"].low,
        settings.space["optimizer.lr"].high,
    ) == (1e-6, 1e-3)
    assert (settings.space["trainer.max_epochs"].low, settings.space["trainer.max_epochs"].high) == (1, 5)


def test_multi_objective_turns_pruning_off_and_says_so():
    settings = sweep_settings("sweep.objectives=[task/val_f1:max,degradation/stsb/drop:min]")
    assert settings.objectives == [("task/val_f1", "maximize"), ("degradation/stsb/drop", "minimize")]
    assert not settings.prune and settings.pruning == "off: Optuna cannot prune multi-objective studies"


def test_every_settings_problem_in_one_line():
    with pytest.raises(ConfigError) as caught:
        sweep_settings(
            "sweep.objectives=[task/val_f1:up]",
            "sweep.n_trials=0",
            "sweep.pruner=never",
            "sweep.max_failures=0",
            "sweep.sampler=grid",
        )
    message = str(caught.value)
    for fragment in (
        "'task/val_f1:up' must be <metric>:max or <metric>:min",
        "sweep.n_trials=0",
        "sweep.pruner='never'",
        "sweep.max_failures=0",
        "sweep.sampler='grid'",
    ):
        assert fragment in message
    assert "\n" not in message


def test_only_sweep_overrides_are_left_out_of_the_runs():
    assert train_overrides(
        ["model=tiny", "sweep.n_trials=3", "+sweep.worker=1", "sweep=lr_epochs", "seed=2", "sweeper_note=x"]
    ) == ["model=tiny", "seed=2", "sweeper_note=x"]


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


HEARTBEAT = {"heartbeat_seconds": 60, "grace_seconds": 180}


def test_storage_urls_journal_files_and_bad_urls(tmp_path):
    journal = make_storage(f"journal:{tmp_path / 'lr.journal'}", tmp_path, **HEARTBEAT)
    optuna.create_study(study_name="j", storage=journal).optimize(toy_objective, n_trials=1)
    again = make_storage(f"journal:{tmp_path / 'lr.journal'}", tmp_path, **HEARTBEAT)
    assert len(optuna.load_study(study_name="j", storage=again).trials) == 1
    with pytest.raises(ConfigError, match="sweep.storage=nosuchdb://x cannot be opened"):
        make_storage("nosuchdb://x", tmp_path, **HEARTBEAT)


def test_heartbeat_settings_reach_the_storage_and_are_checked(tmp_path):
    settings = sweep_settings("sweep.heartbeat_seconds=2", "sweep.grace_seconds=5")
    storage = make_storage(
        None, tmp_path, heartbeat_seconds=settings.heartbeat_seconds, grace_seconds=settings.grace_seconds
    )
    assert (storage.heartbeat_interval, storage.grace_period) == (2, 5)
    with pytest.raises(
        ConfigError,
        match=r"sweep.heartbeat_seconds=60 and sweep.grace_seconds=30 must be whole "
        r"seconds, 1 <= heartbeat < grace",
    ):
        sweep_settings("sweep.grace_seconds=30")
