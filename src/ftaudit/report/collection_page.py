"""The page of a multirun or sweep: the paper table (mean ± std over each group's runs), the gain-vs-cost scatter
with its Pareto front, the per-group fairness bars and, for a sweep, Optuna's history; every run linked."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import yaml

from ftaudit.errors import DataError
from ftaudit.report.figures import history_figure, svg_uri
from ftaudit.report.numbers import number
from ftaudit.report.plots import (
    default_tradeoff_metric,
    fairness_figure,
    fairness_measures,
    group_label,
    tradeoff_figure,
)
from ftaudit.report.records import RunRecord, YamlLoader
from ftaudit.report.render import cell_text, decimals, format_value
from ftaudit.report.table import Group, best_groups, direction, headlines

SWEEP_FILES = ("trials.csv", "best.yaml")  # what a sweep leaves in its folder (ftaudit.sweep.outputs)


def column(groups: list[Group], metric: str) -> dict:
    """A table column's header facts: the metric, its split and direction as the runs declared them."""
    splits = {run.declared[metric].get("split") for g in groups for run in g.runs if metric in run.declared}
    better = direction(groups, metric)
    return {
        "metric": metric,
        "split": (splits.pop() or "no split") if len(splits) == 1 else ("mixed" if splits else "undeclared"),
        "arrow": {"max": "↑", "min": "↓", None: ""}[better],
        "better": {"max": "higher is better", "min": "lower is better", None: "no declared better side"}[better],
    }


def table_rows(groups: list[Group], group_keys: list[str], metrics: list[str], pages: dict[Path, str]) -> list[dict]:
    places = {metric: decimals(groups, metric) for metric in metrics}
    best = {metric: best_groups(groups, metric) for metric in metrics}
    rows = []
    for i, group in enumerate(groups):
        cells = []
        for metric in metrics:
            cell = group.cells.get(metric)
            cells.append(
                {
                    "metric": metric,
                    "text": cell_text(group, metric, places[metric], " ± "),
                    "mean": repr(cell.mean) if cell else "",
                    "std": repr(cell.std) if cell and cell.std is not None else "",
                    "n": cell.n if cell else 0,
                    "best": i in best[metric],
                }
            )
        rows.append(
            {
                "labels": [format_value(value) for value in group.values] if group_keys else ["all runs"],
                "runs": [(run.path.name, pages[run.path]) for run in group.runs],
                "cells": cells,
            }
        )
    return rows


def read_trials(folder: Path) -> dict | None:
    """A sweep folder's trials and objectives (``trials.csv``, ``best.yaml``); None for any other folder."""
    if not all((folder / name).is_file() for name in SWEEP_FILES):
        return None
    try:
        best = yaml.load((folder / "best.yaml").read_text(encoding="utf-8"), Loader=YamlLoader) or {}
        with (folder / "trials.csv").open(encoding="utf-8", newline="") as stream:
            trials = list(csv.DictReader(stream))
    except (yaml.YAMLError, csv.Error) as err:
        raise DataError(f"unreadable sweep record in {folder}: {err}") from None
    objectives = [text.rsplit(":", 1) for text in best.get("objectives", [])]
    return {"folder": folder, "objectives": objectives, "trials": trials, "best": best.get("best_trials", [])}


def sweep_context(folder: Path, pages: dict[Path, str]) -> dict | None:
    sweep = read_trials(folder)
    if sweep is None:
        return None
    figures = {}
    for metric, goal in sweep["objectives"]:
        done = [
            (int(trial["number"]), float(trial[metric]))
            for trial in sweep["trials"]
            if trial["state"] == "COMPLETE"
            and trial.get(metric) not in (None, "")
            and math.isfinite(float(trial[metric]))
        ]
        if done:
            figures[f"optimisation history of {metric}"] = svg_uri(history_figure(metric, goal == "max", done))
    for trial in sweep["trials"]:
        run_dir = Path(trial["run_dir"]).resolve() if trial.get("run_dir") else None
        trial["page"] = pages.get(run_dir) if run_dir else None
    return {**sweep, "figures": figures, "columns": list(sweep["trials"][0]) if sweep["trials"] else []}


def within(folder: Path, roots: list[Path]) -> bool:
    return any(folder == root or root in folder.parents for root in roots)


def collection_context(
    runs: list[RunRecord],
    groups: list[Group],
    group_keys: list[str],
    metrics: list[str],
    roots: list[Path],
    pages: dict[Path, str],
    names: dict[Path, str],
    tradeoff: str | None,
) -> dict:
    """Everything the page of several runs shows; ``pages``: each run's page (relative link), ``names``: its name."""
    available = set().union(*(run.metrics for run in runs))
    figures = {}
    for score in (s for s in headlines(runs) if f"task/test_{s}" in available):
        recorded = set().union(*(run.metrics for run in runs if f"task/test_{score}" in run.metrics))
        x_metric = tradeoff or default_tradeoff_metric(recorded)
        figure = tradeoff_figure(groups, group_keys, x_metric, f"task/test_{score}") if x_metric else None
        if figure is not None:
            figures[f"task/test_{score} against {x_metric}, Pareto front dashed"] = svg_uri(figure)
    for measure in fairness_measures(available):
        figure = fairness_figure(groups, group_keys, measure)
        if figure is not None:
            figures[f"fairness: {measure} per name group"] = svg_uri(figure)
    scores = [f"task/test_{s}" for s in headlines(runs)]
    # A sweep's trials.csv sits in a folder above its trials: look in every folder between a root and its runs.
    folders = sorted({folder for run in runs for folder in run.path.parents if within(folder, roots)})
    return {
        "roots": [str(root) for root in roots],
        "group_keys": group_keys or ["runs"],
        "columns": [column(groups, metric) for metric in metrics],
        "rows": table_rows(groups, group_keys, metrics, pages),
        "runs": [
            {
                "name": names[run.path],
                "page": pages[run.path],
                "group": group_label(group, group_keys),
                "seed": run.config.get("seed"),
                "scores": [number(run, key) if key in run.metrics else None for key in scores],
            }
            for group in groups
            for run in group.runs
        ],
        "scores": scores,
        "figures": figures,
        "sweeps": [sweep for folder in folders if (sweep := sweep_context(folder, pages))],
    }
