"""Does an Optuna sweep (TPE + median pruning) find what a grid finds, for a fraction of the training?

On a fixed CoNLL-2003 subset (the first N training and validation sentences) with MiniLM: a 4 x 3 grid of learning
rate x epochs (24 training epochs in all) against ``sweep.py``'s TPE over the same ranges, which may spend at most
``--budget`` (40%) of the grid's training epochs. Both select on validation F1. Prints both bests and the ratios;
exits 1 if the sweep misses 99% of the grid's best. About 30 minutes on 2 CPU cores.

    CONLL2003_DIR=../shared/data/conll2003 python benchmarks/sweep_vs_grid.py
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import time
from datetime import datetime
from pathlib import Path

from hydra import compose, initialize_config_dir

from ftaudit.config import CONFIG_DIR
from ftaudit.errors import exit_on_user_error

REPO = Path(__file__).resolve().parents[1]
GRID_LRS = (3e-5, 1e-4, 3e-4, 1e-3)
GRID_EPOCHS = (1, 2, 3)
F1_TARGET = 0.99


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-samples", type=int, default=2500, help="first N training sentences")
    parser.add_argument("--eval-samples", type=int, default=1000, help="first N validation (and test) sentences")
    parser.add_argument("--model", default="minilm", help="model config (tiny: a quick check of this script)")
    parser.add_argument("--budget", type=float, default=0.4, help="the sweep's share of the grid's training epochs")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "outputs" / "benchmarks" / f"sweep_vs_grid-{datetime.now():%Y-%m-%d_%H-%M-%S}",
    )
    return parser.parse_args()


def run_overrides(args: argparse.Namespace) -> list[str]:
    """What every run shares: the subset, MiniLM, no probes (only validation F1 matters here), no experiment logger."""
    return [
        f"model={args.model}",
        f"data.max_train_samples={args.train_samples}",
        f"data.max_eval_samples={args.eval_samples}",
        "probes.degradation=[]",
        "probes.fairness.enabled=false",
        "logger=none",
        "trainer.progress_bar=false",
    ]


def run_grid(base: list[str], out: Path) -> list[dict]:
    from ftaudit.run import train
    from ftaudit.sweep.space import to_overrides
    from ftaudit.sweep.trials import as_hydra_job, compose_run_config

    rows = []
    for lr, epochs in itertools.product(GRID_LRS, GRID_EPOCHS):
        run_dir = out / "grid" / f"lr{lr:g}-epochs{epochs}"
        params = {"optimizer.lr": lr, "trainer.max_epochs": epochs}
        with as_hydra_job(compose_run_config([*base, *to_overrides(params)]), run_dir) as cfg:
            rows.append({"lr": lr, "epochs": epochs, "val_f1": train(cfg, run_dir)["task/val_f1"]})
    return rows


def run_sweep_within_budget(base: list[str], out: Path, epoch_budget: float):
    """One more trial at a time (each call resumes the study) while even a full-length trial still fits the budget."""
    from ftaudit.sweep import run_sweep

    search = [
        f"sweep.space.optimizer.lr.low={min(GRID_LRS)}",
        f"sweep.space.optimizer.lr.high={max(GRID_LRS)}",
        f"sweep.space.trainer.max_epochs.low={min(GRID_EPOCHS)}",
        f"sweep.space.trainer.max_epochs.high={max(GRID_EPOCHS)}",
        "sweep.study_name=tpe",
        "sweep.sampler=tpe",
        "sweep.sampler_options={n_startup_trials:2}",
        "sweep.pruner=median",
        "sweep.pruner_options={n_startup_trials:2,n_warmup_steps:0}",
    ]
    study, finished = None, 0
    while study is None or epochs_spent(study) + max(GRID_EPOCHS) <= epoch_budget:
        finished += 1
        overrides = [*base, *search, f"sweep.n_trials={finished}"]
        study = run_sweep(compose("sweep", overrides=overrides), out / "tpe", overrides)
    return study


def epochs_spent(study) -> int:
    return sum(trial.user_attrs.get("epochs", 0) for trial in study.trials)


def report(grid: list[dict], grid_seconds: float, study, sweep_seconds: float) -> bool:
    grid_epochs, sweep_epochs = sum(row["epochs"] for row in grid), epochs_spent(study)
    best_grid = max(grid, key=lambda row: row["val_f1"])
    lines = [
        f"\ngrid: {len(GRID_LRS)} lr x {len(GRID_EPOCHS)} epochs = {len(grid)} runs, {grid_epochs} training epochs, "
        f"{grid_seconds:.0f} s",
        "  lr \\ epochs " + "".join(f"{e:>8}" for e in GRID_EPOCHS),
    ]
    for lr in GRID_LRS:
        lines.append(f"  {lr:<11g} " + "".join(f"{row['val_f1']:8.4f}" for row in grid if row["lr"] == lr))
    lines.append(f"  best: val F1 {best_grid['val_f1']:.4f} (lr={best_grid['lr']:g}, epochs={best_grid['epochs']})")
    states = [trial.state.name.lower() for trial in study.trials]
    lines += [
        f"TPE + median pruning: {len(states)} trials ({', '.join(f'{states.count(s)} {s}' for s in sorted(set(states)))}), "
        f"{sweep_epochs} training epochs, {sweep_seconds:.0f} s",
        "  trial  state     lr          max_epochs  trained  val F1",
    ]
    for trial in study.trials:
        value = f"{trial.value:.4f}" if trial.value is not None else "-"
        lines.append(
            f"  {trial.number:<6} {trial.state.name:<9} {trial.params['optimizer.lr']:<11.3g} "
            f"{trial.params['trainer.max_epochs']:<11} {trial.user_attrs.get('epochs', 0):<8} {value}"
        )
    best = study.best_trial
    f1_ratio, epoch_ratio = study.best_value / best_grid["val_f1"], sweep_epochs / grid_epochs
    lines.append(
        f"  best: val F1 {study.best_value:.4f} (lr={best.params['optimizer.lr']:.3g}, "
        f"epochs={best.params['trainer.max_epochs']}, trial {best.number})"
    )
    met = f1_ratio >= F1_TARGET
    lines.append(
        f"ratio: best val F1 {100 * f1_ratio:.1f}% of the grid's (target >= {100 * F1_TARGET:.0f}%: "
        f"{'met' if met else 'missed'}); training epochs {sweep_epochs}/{grid_epochs} = {100 * epoch_ratio:.1f}% "
        f"of the grid's (target <= 40%: {'met' if epoch_ratio <= 0.4 else 'missed'})"
    )
    print("\n".join(lines), flush=True)
    return met and epoch_ratio <= 0.4


@exit_on_user_error
def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    base = run_overrides(args)
    grid_epochs = len(GRID_LRS) * sum(GRID_EPOCHS)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        started = time.perf_counter()
        study = run_sweep_within_budget(base, args.out, args.budget * grid_epochs)
        sweep_seconds = time.perf_counter() - started
        grid = run_grid(base, args.out)
        grid_seconds = time.perf_counter() - started - sweep_seconds
    print(f"\nruns in {args.out}; every run: {' '.join(base)}")
    return 0 if report(grid, grid_seconds, study, sweep_seconds) else 1


if __name__ == "__main__":
    sys.exit(main())
