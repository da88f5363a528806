"""``python -m ftaudit.report RUN_DIR... [--group-by KEYS] [--metrics KEYS] [--format md,latex,csv,html] [--out DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ftaudit.errors import ConfigError, exit_on_user_error
from ftaudit.files import atomic_write_text
from ftaudit.report.html import write_html
from ftaudit.report.plots import default_tradeoff_metric, fairness_measures, plot_fairness, plot_files, plot_tradeoff
from ftaudit.report.records import find_runs
from ftaudit.report.render import RENDERERS
from ftaudit.report.table import aggregate, check_group_keys, default_group_keys, headlines, select_metrics

FORMATS = (*RENDERERS, "html")


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: list[str] | None, prog: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Tables and plots from run records (metrics.json + config.yaml), "
        "found recursively; mean ± std and n over the runs of each group.",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="runs, multiruns or sweep folders")
    parser.add_argument(
        "--group-by",
        type=comma_list,
        default=None,
        metavar="KEYS",
        help="dotted config keys, comma-separated (default: the keys that vary across runs, seed "
        "excluded, names first, without those a varying name already determines)",
    )
    parser.add_argument(
        "--metrics",
        type=comma_list,
        default=None,
        metavar="KEYS",
        help="metric keys or globs (* within a segment, ** across), comma-separated "
        "(default: each task's headline on test, accuracy, the headline on validation, degradation "
        "drops, fairness gaps, training time, energy)",
    )
    parser.add_argument(
        "--format",
        type=comma_list,
        default=["md", "latex", "csv"],
        metavar="FORMATS",
        help="any of md, latex, csv (tables and PNG plots), html (report.html: one self-contained page, and a page "
        "per run for several runs) (default: md,latex,csv)",
    )
    parser.add_argument(
        "--tradeoff",
        default=None,
        metavar="KEY",
        help="the x axis of the tradeoff plots (default: the first degradation/*/drop the plotted "
        "task's runs recorded, else training time)",
    )
    parser.add_argument("--out", type=Path, default=Path("report"), help="output folder (default: ./report)")
    return parser.parse_args(argv)


def write_tables(tables: list[str], runs, groups, group_keys: list[str], metrics: list[str], args) -> list[Path]:
    """The table in each of ``tables`` (md, latex, csv), then the tradeoff and fairness plots as PNG."""
    written = []
    for name in tables:
        filename, render = RENDERERS[name]
        atomic_write_text(args.out / filename, render(groups, group_keys, metrics))
        written.append(args.out / filename)
    available = set().union(*(run.metrics for run in runs))
    scores = [score for score in headlines(runs) if f"task/test_{score}" in available]  # one plot per task's headline
    for score, filename in plot_files("tradeoff", scores).items():
        recorded = set().union(*(run.metrics for run in runs if f"task/test_{score}" in run.metrics))
        tradeoff_metric = args.tradeoff or default_tradeoff_metric(recorded)  # a cost that task's runs recorded
        if tradeoff_metric and plot_tradeoff(
            groups, group_keys, tradeoff_metric, f"task/test_{score}", args.out / filename
        ):
            written.append(args.out / filename)
    for measure, filename in plot_files("fairness", fairness_measures(available)).items():
        if plot_fairness(groups, group_keys, measure, args.out / filename):
            written.append(args.out / filename)
    return written


@exit_on_user_error
def main(argv: list[str] | None = None, prog: str = "python -m ftaudit.report") -> None:
    """``prog``: the command as the user typed it, for the usage line (``ftaudit report`` from the CLI)."""
    args = parse_args(argv, prog)
    unknown = [name for name in args.format if name not in FORMATS]
    if unknown:
        raise ConfigError(f"--format {','.join(unknown)}: choose from {','.join(FORMATS)}")
    runs = find_runs(args.run_dirs)
    available = set().union(*(run.metrics for run in runs))
    if args.tradeoff and args.tradeoff not in available:
        raise ConfigError(f"--tradeoff {args.tradeoff}: no run has this metric")
    group_keys = args.group_by if args.group_by is not None else default_group_keys(runs)
    check_group_keys(runs, group_keys)
    metrics = select_metrics(runs, args.metrics)
    groups = aggregate(runs, group_keys, metrics)

    written = (
        write_html(runs, groups, group_keys, metrics, args.run_dirs, args.out, args.tradeoff)
        if "html" in args.format
        else []
    )
    tables = [name for name in args.format if name in RENDERERS]
    if tables:
        written += write_tables(tables, runs, groups, group_keys, metrics, args)
    print(f"{len(runs)} runs in {len(groups)} groups (by {', '.join(group_keys) or 'nothing'})")
    if "md" in args.format:
        print((args.out / "table.md").read_text(encoding="utf-8"), end="")
    print("wrote " + ", ".join(str(path) for path in written))


if __name__ == "__main__":
    main(sys.argv[1:])
