"""The Optuna study behind ``sweep.py``: storage, sampler, pruner, resuming, and workers sharing one study."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.samplers import BaseSampler
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from ftaudit.errors import ConfigError
from ftaudit.sweep.space import example_params, parse_space, to_overrides
from ftaudit.sweep.trials import Objective, TrialFailed, compose_run_config
from ftaudit.sweep.workers import fail_dead_trials, stale_trial_recorder

log = logging.getLogger(__name__)

SAMPLERS = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
}
PRUNERS = {
    "median": optuna.pruners.MedianPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "threshold": optuna.pruners.ThresholdPruner,
    "none": optuna.pruners.NopPruner,
}
DIRECTIONS = {"max": "maximize", "min": "minimize"}
# Trials that use up sweep.n_trials: finished ones, and running ones so that parallel workers do not overshoot.
BUDGET_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
SWEEP_OVERRIDE = re.compile(r"[~+]*sweep([./=@]|$)")
JOURNAL = "journal:"


@dataclass
class SweepSettings:
    study_name: str
    storage: str | None
    objectives: list[tuple[str, str]]  # (metric, "maximize" | "minimize")
    n_trials: int
    timeout: float | None
    max_failures: int
    sampler: str
    sampler_options: dict
    seed: int
    pruner: str
    pruner_options: dict
    space: dict[str, BaseDistribution]
    headline: str  # the task's validation headline (task/val_f1), the one objective that can be pruned
    monitor: str  # what the task's runs log for it after every validation epoch (val/f1)
    heartbeat_seconds: int
    grace_seconds: int

    @property
    def prune(self) -> bool:
        """Only the task's validation headline as the single objective can be pruned: it is what the run reports each
        epoch; Optuna cannot prune multi-objective studies."""
        return self.pruner != "none" and self.metrics == [self.headline]

    @property
    def pruning(self) -> str:
        if self.prune:
            return f"{self.pruner}, on {self.monitor} after every epoch"
        if self.pruner == "none":
            return "off (sweep.pruner=none)"
        if len(self.objectives) > 1:
            return "off: Optuna cannot prune multi-objective studies"
        return f"off: runs report only {self.monitor} per epoch, not {self.metrics[0]}"

    @property
    def journal(self) -> bool:
        """A journal file (no heartbeat) rather than a database."""
        return str(self.storage or "").startswith(JOURNAL)

    @property
    def metrics(self) -> list[str]:
        return [metric for metric, _ in self.objectives]


def parse_objective(item: str, problems: list[str]) -> tuple[str, str]:
    metric, _, direction = str(item).rpartition(":")
    if not metric or direction not in DIRECTIONS:
        problems.append(f"sweep.objectives: {item!r} must be <metric>:max or <metric>:min, e.g. task/val_f1:max")
    return metric, DIRECTIONS.get(direction, "")


def options(node) -> dict:
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def setting_problems(sweep: DictConfig) -> list[str]:
    """What is wrong with the sweep's scalar settings (trials, time, failures, sampler, pruner, heartbeat, name)."""
    problems: list[str] = []
    if not (isinstance(sweep.n_trials, int) and sweep.n_trials >= 1):
        problems.append(f"sweep.n_trials={sweep.n_trials} must be an integer >= 1")
    if sweep.timeout is not None and not sweep.timeout > 0:
        problems.append(f"sweep.timeout={sweep.timeout} must be null or seconds > 0")
    if not (isinstance(sweep.max_failures, int) and sweep.max_failures >= 1):
        problems.append(f"sweep.max_failures={sweep.max_failures} must be an integer >= 1")
    for kind, names in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
        if sweep[kind] not in names:
            problems.append(f"sweep.{kind}={sweep[kind]!r} must be one of {', '.join(names)}")
        if not (sweep[f"{kind}_options"] is None or OmegaConf.is_dict(sweep[f"{kind}_options"])):
            problems.append(
                f"sweep.{kind}_options must be null or a mapping of keyword arguments, e.g. {{n_startup_trials: 3}}"
            )
    if not (
        isinstance(sweep.heartbeat_seconds, int)
        and isinstance(sweep.grace_seconds, int)
        and 1 <= sweep.heartbeat_seconds < sweep.grace_seconds
    ):
        problems.append(
            f"sweep.heartbeat_seconds={sweep.heartbeat_seconds} and sweep.grace_seconds={sweep.grace_seconds} "
            "must be whole seconds, 1 <= heartbeat < grace (e.g. 60 and 180)"
        )
    if not re.fullmatch(r"[\w.-]+", str(sweep.study_name)):
        problems.append(
            f"sweep.study_name={sweep.study_name!r} must be letters, digits, '.', '_' or '-' (it names a folder)"
        )
    return problems


def read_settings(sweep: DictConfig, task) -> SweepSettings:
    """The ``sweep`` node, checked as a whole: every problem in one line. Without objectives, the study maximises
    (or minimises, as it declares) the ``task``'s validation headline (``task/val_f1`` for NER)."""
    problems: list[str] = []
    headline = f"task/val_{task.headline}"
    if sweep.objectives is None:
        objectives = [(headline, DIRECTIONS[task.better])]
    else:
        objectives = [parse_objective(item, problems) for item in sweep.objectives]
    if not objectives:
        problems.append("sweep.objectives is empty; e.g. sweep.objectives=[task/val_f1:max]")
    problems += setting_problems(sweep)
    try:
        space = parse_space(sweep.space)
    except ConfigError as err:
        problems.append(str(err))
    if problems:
        raise ConfigError("; ".join(problems))
    return SweepSettings(
        study_name=sweep.study_name,
        storage=sweep.storage,
        objectives=objectives,
        n_trials=sweep.n_trials,
        timeout=sweep.timeout,
        max_failures=sweep.max_failures,
        sampler=sweep.sampler,
        sampler_options=options(sweep.sampler_options),
        seed=sweep.seed,
        pruner=sweep.pruner,
        pruner_options=options(sweep.pruner_options),
        space=space,
        headline=headline,
        monitor=task.monitor,
        heartbeat_seconds=sweep.heartbeat_seconds,
        grace_seconds=sweep.grace_seconds,
    )


class TrialSeededSampler(BaseSampler):
    """Each trial samples with a fresh sampler seeded by ``seed + trial number``: parallel workers never draw the same
    values, a resumed study does not repeat its first draws, and a one-worker sweep is reproducible."""

    def __init__(self, make, seed: int):
        self.make, self.seed = make, seed
        self.current = make(seed=seed)

    def before_trial(self, study, trial) -> None:
        self.current = self.make(seed=self.seed + trial.number)
        self.current.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self.current.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self.current.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.current.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self.current.after_trial(study, trial, state, values)


def make_storage(
    url: str | None, sweep_dir: Path, *, heartbeat_seconds: int, grace_seconds: int
) -> optuna.storages.BaseStorage:
    """SQLite in the sweep folder by default; ``journal:<file>`` for a journal file; else an RDB URL, whose heartbeat
    (a beat every ``heartbeat_seconds`` while a trial runs) lets any worker fail the trial of a worker that died, on
    any machine, ``grace_seconds`` after its last beat."""
    url = url or f"sqlite:///{(sweep_dir / 'study.db').resolve()}"
    if url.startswith(JOURNAL):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url.removeprefix(JOURNAL)))
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None  # wait for locks
    for pause in (1, 3, None):  # workers started together race to create the tables: the loser tries again
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_seconds,
                grace_period=grace_seconds,
                heartbeat_stale_trial_callback=stale_trial_recorder(grace_seconds),
            )
        except (ImportError, ValueError, SQLAlchemyError) as err:
            if pause is None or not isinstance(err, (OperationalError, IntegrityError)):
                raise ConfigError(f"sweep.storage={url} cannot be opened: {str(err).splitlines()[0]}") from err
            time.sleep(pause)


def definition(settings: SweepSettings, base_overrides: list[str]) -> dict:
    """What makes two commands the same study: the training overrides, the space and the objectives."""
    return {
        "train_overrides": sorted(base_overrides),
        "space": {key: distribution_to_json(d) for key, d in settings.space.items()},
        "objectives": [f"{metric}:{direction}" for metric, direction in settings.objectives],
    }


def open_study(settings: SweepSettings, sweep_dir: Path, base_overrides: list[str]) -> optuna.Study:
    """Create the study, or load it when this command ran before; refuse to mix a different command into it."""
    sampler_class = SAMPLERS[settings.sampler]
    try:
        sampler = TrialSeededSampler(lambda seed: sampler_class(seed=seed, **settings.sampler_options), settings.seed)
        pruner = PRUNERS[settings.pruner](**settings.pruner_options)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"sweep.sampler_options / sweep.pruner_options: {err}") from err
    storage = make_storage(
        settings.storage, sweep_dir, heartbeat_seconds=settings.heartbeat_seconds, grace_seconds=settings.grace_seconds
    )
    study = optuna.create_study(
        study_name=settings.study_name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        directions=[direction for _, direction in settings.objectives],
        load_if_exists=True,
    )
    wanted = definition(settings, base_overrides)
    found = study.user_attrs.get("definition")
    if found is None:
        study.set_user_attr("definition", wanted)
        study.set_metric_names(settings.metrics)
    elif found != wanted:
        field = next(key for key in wanted if found.get(key) != wanted[key])
        raise ConfigError(
            f"study {settings.study_name!r} in {settings.storage or sweep_dir / 'study.db'} was started "
            f"with other {field} ({found.get(field)}, now {wanted[field]}); rerun the same command to "
            "continue it, or start a new study with sweep.study_name=<name>"
        )
    return study


def train_overrides(task_overrides: list[str]) -> list[str]:
    """The command's overrides that configure the runs (the ``sweep.*`` ones configure the search)."""
    return [override for override in task_overrides if not SWEEP_OVERRIDE.match(override)]


def check_space_composes(space: dict[str, BaseDistribution], base_overrides: list[str]) -> None:
    """Every searched key and every categorical choice must compose with the training config, before any trial."""
    for params in example_params(space):
        compose_run_config([*base_overrides, *to_overrides(params)])


def counted_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=BUDGET_STATES))


def run_study(settings: SweepSettings, study: optuna.Study, objective: Objective) -> None:
    """Run trials until the study holds ``n_trials`` finished ones (all workers together), the timeout, or too many
    failures. A trial that raises is recorded as failed and the next one starts."""
    if counted_trials(study) >= settings.n_trials:
        log.info(
            "study %s already has %d trials (sweep.n_trials=%d): nothing to run",
            settings.study_name,
            counted_trials(study),
            settings.n_trials,
        )
        return
    # Dead workers' trials are failed after every trial, before counting: they must not use up the budget.
    study.optimize(
        objective,
        timeout=settings.timeout,
        catch=(TrialFailed,),
        gc_after_trial=True,
        callbacks=[
            lambda study, trial: fail_dead_trials(study),
            MaxTrialsCallback(settings.n_trials, states=BUDGET_STATES),
        ],
    )
