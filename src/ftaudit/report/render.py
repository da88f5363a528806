"""The aggregated table as Markdown, LaTeX (booktabs) and CSV; the same groups always give the same bytes."""

from __future__ import annotations

import csv
import io
import math

from ftaudit.report.table import Group, best_groups, direction

ARROWS = {"max": ("↑", r"$\uparrow$"), "min": ("↓", r"$\downarrow$"), None: ("", "")}
LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def format_value(value) -> str:
    """A config value as a table label: ``0.0001``, ``[stsb, mlm]``, ``true``, ``—`` when a run lacks the key."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    return str(value)


def decimals(groups: list[Group], metric: str) -> int:
    """Four significant digits for the column's largest mean, the same decimals on every row of the column."""
    largest = max((abs(group.cells[metric].mean) for group in groups if metric in group.cells), default=0.0)
    if largest == 0:
        return 4
    return min(6, max(0, 3 - math.floor(math.log10(largest))))


def cell_text(group: Group, metric: str, places: int, plus_minus: str) -> str:
    cell = group.cells.get(metric)
    if cell is None:
        return "—"
    text = f"{cell.mean:.{places}f}"
    if cell.std is not None:
        text += f"{plus_minus}{cell.std:.{places}f}"
    if cell.n < len(group.runs):  # some runs of the group lack this metric
        text += f" (n={cell.n})"
    return text


def rows(groups: list[Group], group_keys: list[str], metrics: list[str], plus_minus: str, bold) -> list[list[str]]:
    places = {metric: decimals(groups, metric) for metric in metrics}
    best = {metric: best_groups(groups, metric) for metric in metrics}
    table = []
    for i, group in enumerate(groups):
        labels = [format_value(value) for value in group.values] if group_keys else ["all runs"]
        cells = [cell_text(group, metric, places[metric], plus_minus) for metric in metrics]
        cells = [bold(text) if i in best[metric] else text for metric, text in zip(metrics, cells)]
        table.append([*labels, str(len(group.runs)), *cells])
    return table


def to_markdown(groups: list[Group], group_keys: list[str], metrics: list[str]) -> str:
    header = [
        *(group_keys or ["runs"]),
        "n",
        *(f"{metric} {ARROWS[direction(groups, metric)][0]}".rstrip() for metric in metrics),
    ]
    body = rows(groups, group_keys, metrics, " ± ", lambda text: f"**{text}**")
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i < len(header) - len(metrics) else "---:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(char, char) for char in text)


def to_latex(groups: list[Group], group_keys: list[str], metrics: list[str]) -> str:
    labels = group_keys or ["runs"]
    header = [
        *(latex_escape(key) for key in labels),
        "$n$",
        *(f"{latex_escape(metric)} {ARROWS[direction(groups, metric)][1]}".rstrip() for metric in metrics),
    ]
    body = rows(groups, group_keys, metrics, " $\\pm$ ", lambda text: f"\\textbf{{{text}}}")
    escaped = [
        [latex_escape(text) for text in row[: len(labels) + 1]]
        + [text.replace("—", "--") for text in row[len(labels) + 1 :]]
        for row in body
    ]
    lines = [
        r"\begin{tabular}{" + "l" * len(labels) + "r" * (1 + len(metrics)) + "}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
        *(" & ".join(row) + r" \\" for row in escaped),
        r"\bottomrule",
        r"\end{tabular}",
    ]
    return "\n".join(lines) + "\n"


def to_csv(groups: list[Group], group_keys: list[str], metrics: list[str]) -> str:
    """Full precision, one mean/std/n column triple per metric: for further analysis, not for reading."""
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([*group_keys, "n", *(f"{metric}/{stat}" for metric in metrics for stat in ("mean", "std", "n"))])
    for group in groups:
        stats = []
        for metric in metrics:
            cell = group.cells.get(metric)
            stats += (
                ["", "", 0] if cell is None else [repr(cell.mean), "" if cell.std is None else repr(cell.std), cell.n]
            )
        writer.writerow([*(format_value(value) for value in group.values), len(group.runs), *stats])
    return stream.getvalue()


RENDERERS = {"md": ("table.md", to_markdown), "latex": ("table.tex", to_latex), "csv": ("table.csv", to_csv)}
