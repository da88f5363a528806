"""A sweep, top to bottom: check the search -> open (or resume) the study -> run trials -> write the results."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna
from omegaconf import DictConfig

from ftaudit.errors import ConfigError
from ftaudit.sweep.outputs import write_outputs
from ftaudit.sweep.study import check_space_composes, open_study, read_settings, run_study, train_overrides
from ftaudit.sweep.trials import Objective
from ftaudit.sweep.workers import fail_dead_trials, failing_own_trials_on_stop, running_elsewhere, worker_id

log = logging.getLogger(__name__)


def run_sweep(cfg: DictConfig, sweep_dir: Path, task_overrides: list[str]) -> optuna.Study:
    """Search ``cfg.sweep.space`` with trials that are ordinary runs under ``sweep_dir/trials/``; write best.yaml,
    trials.csv and plots to ``sweep_dir``. ``task_overrides`` are the command line's; Hydra must be initialised on
    ``conf/`` (as in ``sweep.py``), since each trial composes its config as ``train.py`` would. Ctrl-C or SIGTERM
    fails the running trial and raises ``SweepInterrupted``."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials are logged here, one line each
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    settings = read_settings(cfg.sweep)
    base_overrides = train_overrides(task_overrides)
    check_space_composes(settings.space, base_overrides)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    earlier_runs = any((sweep_dir / "trials").glob("*"))  # looked at before the study: see below
    study = open_study(settings, sweep_dir, base_overrides)
    if earlier_runs and not study.get_trials(deepcopy=False):
        raise ConfigError(f"{sweep_dir / 'trials'} holds runs of a study that is not in the storage; move them away "
                          "or start a new study with sweep.study_name=<name>")
    fail_dead_trials(study)
    log.info("study %s: %d trials so far, %d wanted; pruning %s", settings.study_name, len(study.trials),
             settings.n_trials, settings.pruning)
    objective = Objective(base_overrides=base_overrides, space=settings.space, objectives=settings.objectives,
                          sweep_dir=sweep_dir, prune=settings.prune, max_failures=settings.max_failures,
                          group=settings.study_name, worker=worker_id())
    try:
        with failing_own_trials_on_stop(study, objective.worker, sweep_dir):
            run_study(settings, study, objective)
    finally:
        fail_dead_trials(study)
        write_outputs(study, settings.metrics, list(settings.space), settings.pruning, sweep_dir,
                      notes=running_elsewhere(study, None if settings.journal else settings.grace_seconds))
    return study
