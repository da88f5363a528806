"""A sweep, top to bottom: check the search -> open (or resume) the study -> run trials -> write the results."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna
from omegaconf import DictConfig

from ftaudit.errors import ConfigError
from ftaudit.metrics import spec_of
from ftaudit.run import declared_metrics
from ftaudit.sweep.outputs import write_outputs
from ftaudit.sweep.space import example_params, to_overrides
from ftaudit.sweep.study import check_space_composes, open_study, read_settings, run_study, train_overrides
from ftaudit.sweep.trials import Objective, compose_run_config
from ftaudit.sweep.workers import fail_dead_trials, failing_own_trials_on_stop, running_elsewhere, worker_id
from ftaudit.tasks import build_task

log = logging.getLogger(__name__)


def run_sweep(cfg: DictConfig, sweep_dir: Path, task_overrides: list[str]) -> optuna.Study:
    """Search ``cfg.sweep.space`` with trials that are ordinary runs under ``sweep_dir/trials/``; write best.yaml,
    trials.csv and plots to ``sweep_dir``. ``task_overrides`` are the command line's; Hydra must be initialised on
    ``conf/`` (as in ``sweep.py``), since each trial composes its config as ``train.py`` would. Ctrl-C or SIGTERM
    fails the running trial and raises ``SweepInterrupted``."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials are logged here, one line each
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    settings = read_settings(cfg.sweep, build_task(cfg.task))
    base_overrides = train_overrides(task_overrides)
    check_space_composes(settings.space, base_overrides)
    check_objectives(settings, base_overrides)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    earlier_runs = any((sweep_dir / "trials").glob("*"))  # looked at before the study: see below
    study = open_study(settings, sweep_dir, base_overrides)
    if earlier_runs and not study.get_trials(deepcopy=False):
        raise ConfigError(
            f"{sweep_dir / 'trials'} holds runs of a study that is not in the storage; move them away "
            "or start a new study with sweep.study_name=<name>"
        )
    fail_dead_trials(study)
    log.info(
        "study %s: %d trials so far, %d wanted; pruning %s",
        settings.study_name,
        len(study.trials),
        settings.n_trials,
        settings.pruning,
    )
    objective = Objective(
        base_overrides=base_overrides,
        space=settings.space,
        objectives=settings.objectives,
        sweep_dir=sweep_dir,
        prune=settings.prune,
        monitor=settings.monitor,
        max_failures=settings.max_failures,
        group=settings.study_name,
        worker=worker_id(),
    )
    try:
        with failing_own_trials_on_stop(study, objective.worker, sweep_dir):
            run_study(settings, study, objective)
    finally:
        fail_dead_trials(study)
        write_outputs(
            study,
            settings.metrics,
            list(settings.space),
            settings.pruning,
            sweep_dir,
            notes=running_elsewhere(study, None if settings.journal else settings.grace_seconds),
        )
    return study


def check_objectives(settings, base_overrides: list[str]) -> None:
    """Each objective must be a metric the trials record, and one not measured on test data: selection never sees
    the test split. The metrics' own declarations (split, direction) decide, not their names."""
    cfg = compose_run_config([*base_overrides, *to_overrides(example_params(settings.space)[0])])
    specs = declared_metrics(cfg)
    for metric in settings.metrics:
        spec = spec_of(metric, specs)
        if spec is None:
            raise ConfigError(
                f"sweep.objectives: {metric} is not a metric the runs record (they record e.g. "
                f"{', '.join(s.pattern for s in specs[:6])}); fix the key or enable the probe that records it"
            )
        if spec.split == "test":
            raise ConfigError(
                f"sweep.objectives: {metric} is measured on test data; select on validation instead: "
                f"task/val_*, or a probe's validation twin (e.g. degradation/stsb_val/drop with "
                f"probes.degradation_settings.stsb.splits=[test,validation], fairness/names_val/recall_gap "
                f"with probes.fairness.splits=[test,validation])"
            )
