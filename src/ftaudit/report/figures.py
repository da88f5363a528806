"""The HTML report's figures, drawn with matplotlib from what the record holds and inlined as SVG data URIs: the
reliability diagram (``calibration.json``), a probe's value per layer (e.g. CKA), each name group's fairness rate
with its interval, and a sweep's optimisation history (``trials.csv``)."""

from __future__ import annotations

import base64
import io
import math

from ftaudit.report.plots import pyplot

# An <img> never runs what an SVG holds, and text drawn as paths carries no markup: labels stay data.
SVG_SETTINGS = {"svg.fonttype": "path", "svg.hashsalt": "ftaudit"}  # hashsalt: the same figure, the same bytes
SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


def svg_uri(figure) -> str:
    """The figure as a ``data:image/svg+xml;base64,...`` URI (self-contained, viewable from file://); closes it."""
    plt = pyplot()
    buffer = io.BytesIO()
    with plt.rc_context(SVG_SETTINGS):
        figure.savefig(buffer, format="svg", metadata=SVG_METADATA, bbox_inches="tight")
    plt.close(figure)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def new_figure(width: float, height: float, **subplots):
    from matplotlib.figure import Figure  # the object API: no pyplot state shared between figures

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(**subplots)


def reliability_figure(bins: dict):
    """Accuracy against mean confidence per confidence bin (bar width: the bin; the diagonal: perfect calibration),
    with how many predictions fall in each bin below."""
    figure, (upper, lower) = new_figure(6.4, 5.2, nrows=2, sharex=True, height_ratios=[3, 1])
    width = 1 / bins["bins"]
    edges = [i * width for i in range(bins["bins"])]
    filled = [
        (edge, acc, conf) for edge, acc, conf in zip(edges, bins["accuracy"], bins["confidence"]) if acc is not None
    ]
    upper.bar(
        [e for e, _, _ in filled],
        [a for _, a, _ in filled],
        width,
        align="edge",
        edgecolor="black",
        label="accuracy in the bin",
    )
    upper.plot(
        [c for _, _, c in filled],
        [a for _, a, _ in filled],
        "o",
        color="C3",
        markersize=4,
        label="(mean confidence, accuracy)",
    )
    upper.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    upper.set_ylim(0, 1)
    upper.set_ylabel("accuracy")
    upper.set_title(
        f"Reliability diagram, {bins['split']} split (ECE {bins['ece']:.4f}, {bins['bins']} bins)", fontsize=10
    )
    upper.legend(loc="upper left", fontsize=8)
    lower.bar(edges, bins["count"], width, align="edge", color="grey")
    lower.set_yscale("symlog")
    lower.set_xlim(0, 1)
    lower.set_xlabel("confidence of the predicted label")
    lower.set_ylabel("predictions")
    return figure


def per_layer_figure(title: str, values: list[tuple[str, float]], ylabel: str):
    """A probe's value per layer, in layer order."""
    figure, axes = new_figure(6.4, 3.6)
    axes.plot(range(len(values)), [value for _, value in values], "o-")
    axes.set_xticks(range(len(values)), [name for name, _ in values], rotation=30, ha="right", fontsize=8)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    return figure


def group_rates_figure(title: str, rows: list[tuple[str, float, float | None, float | None]], ylabel: str):
    """Each group's rate (``rows``: name, value, interval low, interval high) as a bar with its interval."""
    figure, axes = new_figure(max(6.4, 0.7 * len(rows)), 4.0)
    values = [value for _, value, _, _ in rows]
    below = [value - low if low is not None else 0.0 for _, value, low, _ in rows]
    above = [high - value if high is not None else 0.0 for _, value, _, high in rows]
    axes.bar(range(len(rows)), values, yerr=[below, above], capsize=4, color="C0")
    axes.set_xticks(range(len(rows)), [name for name, *_ in rows], rotation=30, ha="right", fontsize=8)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    return figure


def history_figure(metric: str, maximise: bool, trials: list[tuple[int, float]]):
    """Each finished trial's objective by trial number, and the best so far."""
    figure, axes = new_figure(6.4, 3.8)
    numbers, values = [n for n, _ in trials], [v for _, v in trials]
    best, running = [], -math.inf if maximise else math.inf
    for value in values:
        running = max(running, value) if maximise else min(running, value)
        best.append(running)
    axes.plot(numbers, values, "o", label="trial")
    axes.step(numbers, best, where="post", color="C3", label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel(f"{metric} ({'higher' if maximise else 'lower'} is better)")
    axes.set_title("Optimisation history", fontsize=10)
    axes.legend(loc="best", fontsize=8)
    axes.grid(alpha=0.3)
    return figure
