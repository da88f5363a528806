"""Fairness probes: does the fine-tuned model treat names from different groups alike?

Every task measures this counterfactually on its own real evaluation sentences (its ``Task.fairness_probe``): the
sentences are changed only by the name of a person, once per group of names, and the model's outputs are compared
across groups. What is shared lives here: the settings, the names file, gap statistics with bootstrap
intervals and permutation p-values, and the per-group chart.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np

from ftaudit.errors import ConfigError
from ftaudit.files import atomic_save_figure
from ftaudit.metrics import MetricSpec
from ftaudit.paths import DataNotFound, find_data
from ftaudit.probes.base import Probe, ProbeContext
from ftaudit.probes.names import NameGroups, load_name_groups
from ftaudit.probes.resampling import gap_and_ratio, p_value, percentile_interval, permuted_recalls, pooled_recalls

NAMES_ENV_VAR = "FAIRNESS_NAMES_FILE"
NAMES_DEFAULT = "data/fairness_names/mishra2020.yaml"
SPLIT_SUFFIX = {"test": "", "validation": "_val"}  # fairness/names/... on test, fairness/names_val/... on validation

log = logging.getLogger(__name__)


class FairnessProbe(Probe):
    """A counterfactual probe over name ``groups`` on the ``split`` sentences (``test`` or ``validation``).

    ``groups`` is None when no names file was found (nothing given, nothing in the default place); ``missing``
    then says where the probe looked, and the probe is skipped.
    """

    kind = "fairness"
    base_name = "names"
    description = (
        "the task's own evaluation sentences with the person's name swapped, once per group of names; a gap "
        "is the largest minus the smallest group's score (95% bootstrap interval, permutation p-value)"
    )

    def __init__(
        self, settings, groups: NameGroups | None, split: str, names_file: Path | None, missing: str | None = None
    ):
        self.settings, self.groups, self.split, self.missing = settings, groups, split, missing
        self.name = self.base_name + SPLIT_SUFFIX[split]
        self.data_files = [names_file] if names_file else []

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        if self.missing:
            log.warning("fairness probe skipped: %s", self.missing)
        return self.missing

    def record_path(self, ctx: ProbeContext, filename: str) -> Path:
        """``fairness_groups.csv`` for the test split, ``fairness_groups_val.csv`` for validation."""
        path = Path(filename)
        return ctx.run_dir / f"{path.stem}{SPLIT_SUFFIX[self.split]}{path.suffix}"


def seeded_sample(items: list, size: int | None, seed: int) -> list:
    """Up to ``size`` of ``items`` (all if None), drawn without replacement by ``seed``, in their original order."""
    if size is None or size >= len(items):
        return list(items)
    chosen = np.random.default_rng(seed).choice(len(items), size=size, replace=False)
    return [items[i] for i in sorted(chosen)]


def group_rng(seed: int, group: str) -> np.random.Generator:
    """A group's own generator (seeded by the seed and the group's name): adding or reordering groups in the names
    file leaves every other group's draws unchanged."""
    return np.random.default_rng([seed, zlib.crc32(group.encode("utf-8"))])


Comparison = tuple[dict[str, list[int]], list[list[int]]]


def comparisons(groups: NameGroups) -> dict[str, Comparison]:
    """Key prefix -> (each compared unit and its groups' indices, the strata its permutation test shuffles within).

    Overall, every group is a unit and all groups are exchangeable under the null. Per attribute,
    the units are its values (e.g. female, male), each pooling its groups; the null swaps only groups
    that agree on every other attribute, so a gender gap is not confounded with an ethnicity gap.
    """
    index = {group: i for i, group in enumerate(groups.names)}
    compared = {"": ({f"group/{group}": [i] for group, i in index.items()}, [list(index.values())])}
    for attribute in groups.attributes:
        others = [other for other in groups.attributes if other != attribute]
        strata: dict[tuple, list[int]] = {}
        for group, i in index.items():
            strata.setdefault(tuple(groups.attributes[other][group] for other in others), []).append(i)
        units = {
            f"by_{attribute}/{value}": [index[group] for group in members]
            for value, members in groups.members(attribute).items()
        }
        compared[f"by_{attribute}"] = (units, list(strata.values()))
    return compared


def rate_gaps(
    prefix: str,
    groups: NameGroups,
    hits: np.ndarray,
    totals: np.ndarray,
    replicates: np.ndarray,
    resamples: int,
    seed: int,
    name: str,
) -> dict[str, float]:
    """A rate per group and per attribute value (``<prefix>/group/<g>/<name>``, ``<prefix>/by_<a>/<value>/<name>``) with
    its 95% bootstrap interval (``..._ci_low``, ``..._ci_high``) and,
    overall and per attribute, the gap between them (``gap_metrics``).

    ``hits[g, s]`` counts group g's outcomes of interest on sentence s (e.g. names found, predictions flipped) out of
    ``totals[s]``, the same for every group; ``replicates`` are the groups' rates on bootstrap resamples of the
    sentences (``bootstrap_recalls``), the null the same counts shuffled between exchangeable groups.
    """
    rates = hits.sum(axis=1) / totals.sum()
    metrics = {}
    for comparison, (units, strata) in comparisons(groups).items():
        columns = list(units.values())
        pooled = pooled_recalls(rates, columns)
        low, high = percentile_interval(pooled_recalls(replicates, columns))
        for unit, rate, unit_low, unit_high in zip(units, pooled, low, high):
            metrics[f"{prefix}/{unit}/{name}"] = float(rate)
            metrics[f"{prefix}/{unit}/{name}_ci_low"] = float(unit_low)
            metrics[f"{prefix}/{unit}/{name}_ci_high"] = float(unit_high)
        null = permuted_recalls(hits, totals, strata, resamples, seed)
        metrics.update(
            gap_metrics(
                "/".join(filter(None, (prefix, comparison))),
                pooled,
                pooled_recalls(replicates, columns),
                pooled_recalls(null, columns),
                name,
            )
        )
    return metrics


def gap_metrics(
    prefix: str, values: np.ndarray, replicates: np.ndarray, null: np.ndarray, name: str
) -> dict[str, float]:
    """Max-min gap and min/max ratio of the groups' ``values`` (e.g. recalls) with bootstrap percentile intervals,
    and the gap's permutation p-value: ``<prefix>/<name>_gap``, ``_gap_ci_low``, ``_gap_ci_high``, ``_ratio``, ...,
    ``_gap_p_value``."""
    point, resampled = gap_and_ratio(values), gap_and_ratio(replicates)
    metrics = {}
    for statistic, value, samples in zip((f"{name}_gap", f"{name}_ratio"), point, resampled):
        low, high = percentile_interval(samples)
        metrics.update(
            {
                f"{prefix}/{statistic}": float(value),
                f"{prefix}/{statistic}_ci_low": float(low),
                f"{prefix}/{statistic}_ci_high": float(high),
            }
        )
    metrics[f"{prefix}/{name}_gap_p_value"] = p_value(float(point[0]), gap_and_ratio(null)[0])
    return metrics


def rate_specs(prefix: str, name: str, split: str, better: str) -> list[MetricSpec]:
    """The declarations of ``rate_gaps``' per-group and per-attribute-value keys: the rate, ``better`` its
    direction, and its interval."""
    return [
        MetricSpec(f"{prefix}/{unit}/{key}", split, direction)
        for unit in ("group/*", "by_*/*")
        for key, direction in ((name, better), (f"{name}_ci_*", None))
    ]


def gap_specs(prefix: str, name: str, split: str, higher_is_fairer: bool = True) -> list[MetricSpec]:
    """The declarations of ``gap_metrics``' keys: a gap is better small, a ratio large; the p-value has no side."""
    return [
        MetricSpec(f"{prefix}/{name}_gap", split, "min"),
        MetricSpec(f"{prefix}/{name}_gap_ci_*", split, None),
        MetricSpec(f"{prefix}/{name}_ratio", split, "max" if higher_is_fairer else None),
        MetricSpec(f"{prefix}/{name}_ratio_ci_*", split, None),
        MetricSpec(f"{prefix}/{name}_gap_p_value", split, None),
    ]


def write_group_chart(
    path: Path,
    groups: NameGroups,
    values: np.ndarray,
    replicates: np.ndarray,
    ylabel: str,
    title: str,
    upper: float | None = 1.05,
) -> None:
    """Bar chart of each group's value with its 95% bootstrap interval, coloured by the first attribute; atomic."""
    from matplotlib.figure import Figure  # the object API renders with Agg and leaves pyplot's global state alone

    names = list(groups.names)
    low, high = percentile_interval(replicates)
    colour_by = next(iter(groups.attributes), None)
    colours = [groups.attributes[colour_by][group] if colour_by else "" for group in names]
    palette = {value: f"C{i}" for i, value in enumerate(dict.fromkeys(colours))}
    figure = Figure(figsize=(max(6.0, 0.8 * len(names)), 4.5), layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(names))
    axes.bar(positions, values, yerr=[values - low, high - values], capsize=4, color=[palette[c] for c in colours])
    axes.set_xticks(positions, names, rotation=30, ha="right")
    if upper is not None:
        axes.set_ylim(0, upper)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    atomic_save_figure(figure, path)


def check_settings(settings) -> None:
    problems = []
    if settings.sentences is not None and not settings.sentences >= 1:
        problems.append(f"probes.fairness.sentences={settings.sentences} must be >= 1 (or null for all)")
    for key in ("names_per_sentence", "resamples"):
        if not settings[key] >= 1:
            problems.append(f"probes.fairness.{key}={settings[key]} must be >= 1")
    unknown = [split for split in settings.splits if split not in SPLIT_SUFFIX]
    if unknown or not settings.splits:
        problems.append(f"probes.fairness.splits={list(settings.splits)} must list test and/or validation")
    if problems:
        raise ConfigError("; ".join(problems))


def build_fairness_probes(cfg, task) -> list[Probe]:
    """The task's fairness probe, once per split in ``probes.fairness.splits``, if ``probes.fairness.enabled``.

    The names file is read and checked now, before training. A file the user named must exist; with none
    named and none in the default place, the probe is skipped (recorded), like other probes' missing data.
    """
    settings = cfg.probes.fairness
    if not settings.enabled:
        return []
    check_settings(settings)
    try:
        path = find_data(
            "fairness names file", settings.groups_file, NAMES_ENV_VAR, NAMES_DEFAULT, "probes.fairness.groups_file"
        )
    except DataNotFound as err:
        return [task.fairness_probe(settings, None, split, None, missing=str(err)) for split in settings.splits]
    attributes = list(settings.attributes) if settings.attributes else None
    groups = load_name_groups(path, attributes)
    return [task.fairness_probe(settings, groups, split, path) for split in settings.splits]
