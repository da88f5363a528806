"""Runs grouped by config keys, each metric aggregated over a group's runs (seeds): mean, std and n."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field

from ftaudit.errors import ConfigError
from ftaudit.report.records import RunRecord

# Never a default grouping key: the seed is what a group aggregates over; logger settings and the progress bar
# change no result (and the loggers' save_dir differs in every run).
NOT_GROUP_KEYS = re.compile(r"^(seed|trainer\.progress_bar|logger\..*)$")
# After the task columns (each task's headline on test, accuracy, the headline on validation: ``task_metrics``).
DEFAULT_METRICS = (
    "degradation/*/drop",
    "fairness/*/recall_gap",
    "fairness/*/flip_rate_gap",
    "resource/train_seconds",
    "resource/*kwh*",
)
HEADLINE_KEY = re.compile(r"^task/val_(?P<score>.+)$")  # a run records its task's headline, and only it, on validation


def direction(groups: list[Group], metric: str) -> str | None:
    """``"max"`` when higher is better, ``"min"`` when lower is better, as the runs that recorded ``metric`` declared
    it (``metrics_info.json``); None when they declared no direction, disagree, or declared nothing."""
    said = {
        run.declared[metric].get("higher_is_better") for group in groups for run in group.runs if metric in run.declared
    }
    if len(said) != 1 or None in said:
        return None
    return "max" if said.pop() else "min"


def key_pattern(pattern: str) -> re.Pattern:
    """A metric-key glob: ``*`` stays inside one path segment, ``**`` crosses them."""
    parts = re.split(r"(\*\*|\*)", pattern)
    regex = "".join(".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part) for part in parts)
    return re.compile(f"^{regex}$")


def headlines(runs: list[RunRecord]) -> list[str]:
    """The headline scores the runs' tasks recorded (``task/val_<headline>``: f1 for NER, f1_macro for
    classification), in the order first seen."""
    found = (HEADLINE_KEY.match(key) for run in runs for key in run.metrics)
    return list(dict.fromkeys(match["score"] for match in found if match))


def task_metrics(runs: list[RunRecord]) -> list[str]:
    """Each task's headline on test, accuracy (where recorded), then each headline on validation."""
    scores = headlines(runs) or ["f1"]  # records without a validation score (written by hand): the first task's, NER's
    return [
        *(f"task/test_{score}" for score in scores),
        "task/test_accuracy",
        *(f"task/val_{score}" for score in scores),
    ]


def select_metrics(runs: list[RunRecord], patterns: list[str] | None) -> list[str]:
    """The metric keys present in the runs, in pattern order (sorted within a pattern); default: the task columns
    (``task_metrics``), then ``DEFAULT_METRICS``."""
    available = sorted(set().union(*(run.metrics for run in runs)))
    chosen: list[str] = []
    for pattern in patterns or [*task_metrics(runs), *DEFAULT_METRICS]:
        matched = [key for key in available if key_pattern(pattern).match(key) and key not in chosen]
        if patterns and not matched:
            raise ConfigError(
                f"--metrics {pattern!r} matches no metric of the runs; they have e.g. {', '.join(available[:8])}"
            )
        chosen += matched
    if not chosen:
        raise ConfigError(f"none of the default metrics is in the runs; choose with --metrics (e.g. {available[0]})")
    return chosen


def default_group_keys(runs: list[RunRecord]) -> list[str]:
    """The config keys whose value differs between runs (a key a run lacks counts as None), seed excluded, except
    what a varying name already says: names come first (``task.name``, then ``data.name``, ``method.name``,
    ``model.name``, ...), and a key whose value follows from the names kept before it is left out. So runs of two
    tasks are grouped by task, not by every data setting that comes with it, and a methods multirun by method, not
    by each method's own settings and learning rate; two settings varied independently (a sweep) are both kept."""
    keys = sorted(set().union(*(run.config for run in runs)))
    varying = [key for key in keys if not NOT_GROUP_KEYS.match(key) and len({run.config.get(key) for run in runs}) > 1]
    names = sorted((key for key in varying if key.endswith(".name")), key=lambda key: (key != "task.name", key))
    chosen: list[str] = []
    for key in [*names, *(key for key in varying if key not in names)]:
        kept_names = [name for name in chosen if name in names]
        values_by_names: dict[tuple, set] = {}
        for run in runs:
            values_by_names.setdefault(tuple(run.config.get(name) for name in kept_names), set()).add(
                run.config.get(key)
            )
        if any(len(values) > 1 for values in values_by_names.values()):
            chosen.append(key)
    return chosen


def check_group_keys(runs: list[RunRecord], group_keys: list[str]) -> None:
    known = set().union(*(run.config for run in runs))
    unknown = [key for key in group_keys if key not in known]
    if unknown:
        raise ConfigError(f"--group-by {','.join(unknown)}: not a config key of any run (dotted, e.g. optimizer.lr)")


@dataclass(frozen=True)
class Cell:
    mean: float
    std: float | None  # sample standard deviation (n - 1); None for a single run
    n: int


@dataclass
class Group:
    values: tuple  # one per grouping key
    runs: list[RunRecord] = field(default_factory=list)
    cells: dict[str, Cell] = field(default_factory=dict)


def value_order(value) -> tuple:
    """A total order over config values of mixed types: None, then numbers, then text."""
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, (int, float)):
        return (1, float(value), "")
    return (2, 0.0, str(value))


def summarise(values: list[float]) -> Cell | None:
    if not values:
        return None
    return Cell(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None, len(values))


def aggregate(runs: list[RunRecord], group_keys: list[str], metrics: list[str]) -> list[Group]:
    """One group per distinct combination of ``group_keys`` values, sorted by those values."""
    groups: dict[tuple, Group] = {}
    for run in runs:
        values = tuple(run.config.get(key) for key in group_keys)
        groups.setdefault(values, Group(values)).runs.append(run)
    ordered = sorted(groups.values(), key=lambda group: tuple(value_order(v) for v in group.values))
    for group in ordered:
        for metric in metrics:
            cell = summarise([run.metrics[metric] for run in group.runs if metric in run.metrics])
            if cell is not None:
                group.cells[metric] = cell
    return ordered


def best_groups(groups: list[Group], metric: str) -> set[int]:
    """Indices of the groups with the best mean (ties all count); none when direction is unknown or nothing to compare."""
    better = direction(groups, metric)
    scored = [(i, group.cells[metric].mean) for i, group in enumerate(groups) if metric in group.cells]
    if better is None or len(scored) < 2:
        return set()
    best = (max if better == "max" else min)(mean for _, mean in scored)
    return {i for i, mean in scored if mean == best}
