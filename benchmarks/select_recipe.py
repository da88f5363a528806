"""Choose a recipe (learning rate, batch size, epochs) by the task's validation headline (never the test set).

Each (lr, batch size, epochs) of the grid is an ordinary run (``train.py``'s config with these overrides, probes
off), recorded in its own folder under ``--out``; the script prints one JSON line per run with its validation score
(the task's headline: entity F1 for NER, macro F1 for classification) after every epoch and the best of them, and
finally the recipe with the best validation score. Test scores are in the run records but are never read here.

    CONLL2003_DIR=../shared/data/conll2003 python benchmarks/select_recipe.py --lr 1e-4 2e-4 3e-4 --epochs 3
    PHRASEBANK_DIR=../shared/data/financial_phrasebank python benchmarks/select_recipe.py --overrides task=classification
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from datetime import datetime
from pathlib import Path

import lightning as L
from hydra import initialize_config_dir

from ftaudit.config import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]


class ValidationCurve(L.Callback):
    """The validation headline after every epoch, as the module logged it (``monitor``, e.g. ``val/f1``)."""

    def __init__(self, monitor: str):
        self.monitor, self.values = monitor, []

    def on_validation_end(self, trainer, module):
        self.values.append(round(float(trainer.callback_metrics[self.monitor]), 4))


def main() -> None:
    from ftaudit.run import train
    from ftaudit.sweep.space import to_overrides
    from ftaudit.sweep.trials import as_hydra_job, compose_run_config
    from ftaudit.tasks import build_task

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm", help="model config (tiny: a quick check of this script)")
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-4, 2e-4, 3e-4])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[32])
    parser.add_argument("--epochs", type=int, nargs="+", default=[3])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--overrides", nargs="*", default=[], help="more run overrides, e.g. data.max_train_samples=500"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "outputs" / "benchmarks" / f"select_recipe-{datetime.now():%Y-%m-%d_%H-%M-%S}",
    )
    args = parser.parse_args()
    base = [
        f"model={args.model}",
        f"seed={args.seed}",
        "probes.degradation=[]",
        "probes.fairness.enabled=false",
        "logger=none",
        "trainer.progress_bar=false",
        *args.overrides,
    ]
    results = []
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for lr, batch_size, epochs in itertools.product(args.lr, args.batch_size, args.epochs):
            params = {"optimizer.lr": lr, "data.batch_size": batch_size, "trainer.max_epochs": epochs}
            run_dir = args.out / f"lr{lr:g}-batch{batch_size}-epochs{epochs}"
            with as_hydra_job(compose_run_config([*base, *to_overrides(params)]), run_dir) as cfg:
                task = build_task(cfg.task)
                score = f"val_{task.headline}"
                curve, started = ValidationCurve(task.monitor), time.perf_counter()
                metrics = train(cfg, run_dir, callbacks=[curve])
            results.append(
                {
                    "lr": lr,
                    "batch_size": batch_size,
                    "epochs": epochs,
                    f"{score}_per_epoch": curve.values,
                    score: round(metrics[f"task/{score}"], 4),
                    "seconds": round(time.perf_counter() - started, 1),
                    "run_dir": str(run_dir),
                }
            )
            print(json.dumps(results[-1]), flush=True)
    best = (max if task.better == "max" else min)(results, key=lambda row: row[score])
    print(
        f"best by {score}: lr {best['lr']:g}, batch {best['batch_size']}, {best['epochs']} epochs: "
        f"{score} {best[score]:.4f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
