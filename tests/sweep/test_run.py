"""Sweeps in-process on the tiny model: failures, pruning, several objectives, and the best trial's command."""

import json
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from optuna.trial import TrialState

import ftaudit.sweep.trials
from ftaudit.config import CONFIG_DIR
from ftaudit.errors import ConfigError
from ftaudit.run import train
from ftaudit.sweep.run import check_objectives
from ftaudit.sweep.study import read_settings
from ftaudit.sweep.trials import SweepStopped, as_hydra_job, compose_run_config
from ftaudit.tasks import build_task
from tests.sweep.conftest import read_trials


def states(study) -> list[str]:
    return [trial.state.name for trial in study.trials]


@pytest.mark.slow
def test_a_failing_trial_does_not_stop_the_sweep(sweep, monkeypatch):
    def nan_loss_in_trial_0(cfg, run_dir, callbacks=()):
        if run_dir.name == "0":
            raise FloatingPointError("loss is NaN")
        return train(cfg, run_dir, callbacks)

    monkeypatch.setattr(ftaudit.sweep.trials, "train", nan_loss_in_trial_0)
    study, sweep_dir = sweep("sweep.n_trials=1", "sweep.max_failures=2")
    assert states(study) == ["FAIL", "COMPLETE"]
    failed = read_trials(sweep_dir)[0]
    assert (failed["state"], failed["error"]) == ("FAIL", "FloatingPointError: loss is NaN")
    assert "FloatingPointError: loss is NaN" in (sweep_dir / "trials" / "0" / "error.txt").read_text()
    assert not (sweep_dir / "trials" / "0" / "metrics.json").exists()
    assert (sweep_dir / "trials" / "1" / "metrics.json").is_file()


def test_a_broken_sweep_stops_after_max_failures_with_one_line(sweep):
    with pytest.raises(SweepStopped) as caught:
        sweep(
            "sweep.n_trials=5",
            "sweep.max_failures=2",
            "~sweep.space.optimizer.lr",
            "+sweep.space.optimizer.lr={type:categorical,choices:[-1.0]}",
        )
    message = str(caught.value)
    assert (
        message.startswith(
            "sweep stopped: 2 trials failed (sweep.max_failures=2); last, trial 1: ConfigError: "
            "optimizer.lr=-1.0: must be greater than 0"
        )
        and "\n" not in message
    )
    study_trials = read_trials(Path(message.split("traceback in ")[1].rstrip(")")).parents[2])
    assert [t["state"] for t in study_trials] == ["FAIL", "FAIL"]


def test_config_errors_of_the_sweep_stop_it_before_any_trial(sweep, tmp_path):
    with pytest.raises(ConfigError, match="does not compose: Could not override 'optimizer.lrr'"):
        sweep("+sweep.space.optimizer.lrr={type:float,low:0.1,high:0.2}")
    with pytest.raises(ConfigError, match="does not compose"):
        sweep("+sweep.space.model={type:categorical,choices:[tiny,no-such-model]}")
    assert not (tmp_path / "sweep" / "trials").exists()


def test_an_objective_the_run_does_not_record_stops_the_sweep_before_any_trial(sweep, tmp_path):
    with pytest.raises(ConfigError, match="degradation/stsb/drop is not a metric the runs record"):
        sweep("sweep.n_trials=2", "sweep.objectives=[task/val_f1:max,degradation/stsb/drop:min]")
    assert not (tmp_path / "sweep" / "trials").exists()


@pytest.mark.slow
def test_multi_objective_writes_a_pareto_front_without_pruning(sweep, capsys):
    study, sweep_dir = sweep("sweep.n_trials=2", "sweep.objectives=[task/val_f1:max,resource/train_seconds:min]")
    assert states(study) == ["COMPLETE"] * 2
    assert (sweep_dir / "pareto_front.png").stat().st_size > 1000
    best = (sweep_dir / "best.yaml").read_text()
    assert "task/val_f1:max" in best and "resource/train_seconds:min" in best
    front = {trial.number for trial in study.best_trials}
    assert front and all(f"number: {n}" in best for n in front)
    output = capsys.readouterr().out
    assert "pruning: off: Optuna cannot prune multi-objective studies" in output and "Pareto front: trial" in output


@pytest.mark.slow
def test_a_pruned_trial_is_recorded_with_the_epoch_it_stopped_at(sweep):
    # Val F1 never reaches 1.1: every trial is pruned when epoch 2 (step 1) reports, never during warm-up (epoch 1).
    study, sweep_dir = sweep(
        "sweep.n_trials=1",
        "sweep.pruner=threshold",
        "sweep.pruner_options={lower:1.1,n_warmup_steps:1}",
        "~sweep.space.trainer",
        "trainer.max_epochs=3",
    )
    (trial,) = study.trials
    assert (
        trial.state == TrialState.PRUNED
        and trial.user_attrs["epochs"] == 2
        and sorted(trial.intermediate_values) == [0, 1]
    )
    row = read_trials(sweep_dir)[0]
    assert (row["state"], row["epochs"]) == ("PRUNED", "2")
    assert not (sweep_dir / "trials" / "0" / "metrics.json").exists()


@pytest.mark.slow
def test_best_yaml_command_reproduces_the_best_trial(sweep, tmp_path):
    study, sweep_dir = sweep("sweep.n_trials=1")
    command = shlex.split(study.best_trial.user_attrs["command"])
    assert (
        command[:2] == ["python", "train.py"] and f"optimizer.lr={study.best_trial.params['optimizer.lr']!r}" in command
    )
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        with as_hydra_job(compose_run_config(command[2:]), tmp_path / "again") as cfg:  # as train.py would run it
            metrics = train(cfg, tmp_path / "again")
    assert metrics["task/val_f1"] == study.best_value
    recorded = json.loads((sweep_dir / "trials" / str(study.best_trial.number) / "metrics.json").read_text())
    assert recorded["task/test_f1"] == metrics["task/test_f1"]
    # trials keep no model; the best trial's command, run on its own, saves it
    assert not (sweep_dir / "trials" / str(study.best_trial.number) / "model").exists()
    assert (tmp_path / "again" / "model" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    "objective, extra",
    [
        ("task/test_f1", []),
        ("wise/1/task/test_f1", ["method=wise"]),
        ("fairness/names/recall_gap", ["probes.fairness.enabled=true"]),
        ("degradation/stsb/drop", ["probes.degradation=[stsb]"]),
    ],
)
def test_objectives_measured_on_test_data_are_refused_before_any_trial(sweep, tmp_path, objective, extra):
    """The declaration of each metric decides (not its name): every test-split metric is refused, whatever its key."""
    with pytest.raises(ConfigError, match=f"{objective} is measured on test data; select on validation"):
        sweep(f"sweep.objectives=[{objective}:min]", *extra)
    assert not (tmp_path / "sweep" / "trials").exists()


def test_a_try_out_trial_stops_the_sweep_instead_of_scoring_part_of_a_split(sweep):
    """Its validation score is of one batch of the 12 sentences: Optuna must not rank trials on it."""
    with pytest.raises(ConfigError, match="trial 0 evaluated only part of a split"):
        sweep("sweep.n_trials=2", "data.eval_batch_size=4", "trainer.limit_val_batches=1")


def test_validation_twins_of_the_probes_are_accepted_as_objectives():
    overrides = [
        "model=tiny",
        "probes.degradation=[stsb,weights]",
        "probes.degradation_settings.stsb.splits=[test,validation]",
        "probes.fairness.splits=[validation]",
        "method=wise",
    ]
    accepted = [
        "task/val_f1:max",
        "degradation/stsb_val/drop:min",
        "fairness/names_val/recall_gap:min",
        "degradation/weights/drop:min",
        "wise/0.5/task/val_f1:max",
        "resource/train_seconds:min",
    ]

    def check(objectives: list[str]) -> None:
        cfg = compose("sweep", overrides=[*overrides, f"sweep.objectives=[{','.join(objectives)}]"])
        check_objectives(read_settings(cfg.sweep, build_task(cfg.task)), overrides)

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        check(accepted)
        with pytest.raises(ConfigError, match="degradation/nothing/drop is not a metric the runs record"):
            check(["degradation/nothing/drop:min"])
    GlobalHydra.instance().clear()


def test_a_diverged_trial_is_failed_with_its_reason(sweep, tmp_path):
    with pytest.raises(SweepStopped, match="TrainingDiverged: training loss is nan at step"):
        sweep(
            "sweep.n_trials=1",
            "sweep.max_failures=1",
            "~sweep.space.optimizer.lr",
            "+sweep.space.optimizer.lr={type:categorical,choices:[1e12]}",
            "trainer.gradient_clip_val=null",
        )
    sweep_dir = tmp_path / "sweep"
    failed = read_trials(sweep_dir)[0]
    assert failed["state"] == "FAIL"
    assert failed["error"].startswith("TrainingDiverged: training loss is nan at step")
    assert not (sweep_dir / "trials" / "0" / "metrics.json").exists()
