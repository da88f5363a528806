"""``tradeoff.png`` (the task's headline score against a cost, Pareto front drawn) and ``fairness.png`` (a per-group
fairness measure); with runs of several tasks, one plot per headline (``tradeoff_<headline>.png``) and per measure
(``fairness_<measure>.png``)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from ftaudit.files import atomic_write_bytes
from ftaudit.report.render import format_value
from ftaudit.report.table import Group, direction, summarise

# Per-group measures of the fairness probes: NER's recall of substituted names, classification's flip rate under
# attribution to names; their axis label, upper limit and title.
PER_GROUP = re.compile(r"^fairness/(?P<probe>[^/]+)/group/(?P<group>[^/]+)/(?P<measure>recall|flip_rate)$")
MEASURES = {
    "recall": ("PER recall on substituted names (higher is better)", 1.05, "Name-substitution recall"),
    "flip_rate": ("flip rate under attribution to names (lower is better)", None, "Attribution flip rate"),
}
PNG_METADATA = {"Software": None}  # no version stamp: the same records give the same bytes


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def group_label(group: Group, group_keys: list[str]) -> str:
    if not group_keys:
        return "all runs"
    return ", ".join(f"{key.rsplit('.', 1)[-1]}={format_value(value)}" for key, value in zip(group_keys, group.values))


def default_tradeoff_metric(available: set[str]) -> str | None:
    """The first degradation drop (sorted), else training time: what the task score was paid with."""
    drops = sorted(key for key in available if key.startswith("degradation/") and key.endswith("/drop"))
    return drops[0] if drops else ("resource/train_seconds" if "resource/train_seconds" in available else None)


def pareto_front(points: list[tuple[float, float]], x_better: str) -> list[int]:
    """Indices of the points no other point beats on both axes (y higher is better), sorted by x."""
    sign = 1 if x_better == "min" else -1

    def dominates(a, b) -> bool:
        return sign * a[0] <= sign * b[0] and a[1] >= b[1] and a != b

    front = [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]
    return sorted(front, key=lambda i: (points[i][0], points[i][1]))


def plot_files(stem: str, names: list[str]) -> dict[str, str]:
    """``<stem>.png`` for a single plot, ``<stem>_<name>.png`` each when there are several."""
    return {name: f"{stem}.png" if len(names) == 1 else f"{stem}_{name}.png" for name in names}


def plot_tradeoff(groups: list[Group], group_keys: list[str], x_metric: str, y_metric: str, path: Path) -> bool:
    """``tradeoff_figure`` as a PNG at ``path``; False (nothing written) when no group has both metrics."""
    figure = tradeoff_figure(groups, group_keys, x_metric, y_metric)
    if figure is not None:
        save(figure, path)
    return figure is not None


def tradeoff_figure(groups: list[Group], group_keys: list[str], x_metric: str, y_metric: str):
    """Mean ± std of ``y_metric`` (a task's headline on test) against ``x_metric`` per group, the Pareto front
    drawn; None when no group has both."""
    plt = pyplot()
    shown = [
        (
            group,
            summarise([r.metrics[x_metric] for r in group.runs if x_metric in r.metrics]),
            summarise([r.metrics[y_metric] for r in group.runs if y_metric in r.metrics]),
        )
        for group in groups
    ]
    shown = [(group, x, y) for group, x, y in shown if x is not None and y is not None]
    if not shown:
        return None
    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    for group, x, y in shown:
        axes.errorbar(x.mean, y.mean, xerr=x.std or 0.0, yerr=y.std or 0.0, fmt="o", capsize=3)
        axes.annotate(
            group_label(group, group_keys), (x.mean, y.mean), textcoords="offset points", xytext=(5, 5), fontsize=8
        )
    x_better = direction(groups, x_metric) or "min"
    points = [(x.mean, y.mean) for _, x, y in shown]
    front = pareto_front(points, x_better)
    # The staircase bounds what the front's groups dominate: better x and better y.
    axes.plot(
        [points[i][0] for i in front],
        [points[i][1] for i in front],
        "--",
        color="black",
        linewidth=1.5,
        alpha=0.7,
        zorder=0,
        drawstyle="steps-post" if x_better == "min" else "steps-pre",
        label=f"Pareto front ({len(front)} of {len(points)} groups)",
    )
    axes.set_xlabel(f"{x_metric} ({'lower' if x_better == 'min' else 'higher'} is better)")
    axes.set_ylabel(f"{y_metric} (higher is better)")
    axes.set_title("Task gain vs cost, mean ± std over each group's runs")
    axes.legend(loc="best", fontsize=8)
    axes.grid(alpha=0.3)
    return figure


def plot_fairness(groups: list[Group], group_keys: list[str], measure: str, path: Path) -> bool:
    """``fairness_figure`` as a PNG at ``path``; False (nothing written) when no run has such keys."""
    figure = fairness_figure(groups, group_keys, measure)
    if figure is not None:
        save(figure, path)
    return figure is not None


def fairness_figure(groups: list[Group], group_keys: list[str], measure: str):
    """Per-name-group ``measure`` (``recall`` or ``flip_rate``; mean ± std over runs) for each table group; None when
    no run has such keys."""
    keys = sorted(
        {
            key
            for group in groups
            for run in group.runs
            for key in run.metrics
            if (match := PER_GROUP.match(key)) and match["measure"] == measure
        }
    )
    if not keys:
        return None
    one_probe = len({PER_GROUP.match(key)["probe"] for key in keys}) == 1
    names = [PER_GROUP.match(key)["group"] if one_probe else key.removeprefix("fairness/") for key in keys]
    ylabel, upper, title = MEASURES[measure]
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(max(6.4, 0.5 * len(keys) * len(groups)), 4.8))
    width = 0.8 / len(groups)
    for g, group in enumerate(groups):
        cells = [summarise([run.metrics[key] for run in group.runs if key in run.metrics]) for key in keys]
        positions = [k - 0.4 + (g + 0.5) * width for k in range(len(keys))]
        axes.bar(
            positions,
            [cell.mean if cell else 0.0 for cell in cells],
            width,
            capsize=2,
            yerr=[(cell.std or 0.0) if cell else 0.0 for cell in cells],
            label=group_label(group, group_keys),
        )
    axes.set_xticks(range(len(keys)), names, rotation=30, ha="right", fontsize=8)
    axes.set_ylabel(ylabel)
    if upper is not None:
        axes.set_ylim(0, upper)
    axes.set_title(f"{title} per group, mean ± std over runs")
    axes.legend(loc="best", fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    return figure


def fairness_measures(available: set[str]) -> list[str]:
    """The per-group fairness measures the runs recorded, in ``MEASURES`` order."""
    found = {match["measure"] for key in available if (match := PER_GROUP.match(key))}
    return [measure for measure in MEASURES if measure in found]


def save(figure, path: Path) -> None:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150, metadata=PNG_METADATA)
    pyplot().close(figure)
    atomic_write_bytes(path, buffer.getvalue())
