"""Choose the default MiniLM recipe on CoNLL-2003 by validation F1 (never the test set).

Each (lr, batch size, epochs) of the grid is an ordinary run (``train.py``'s config with these overrides, probes
off), recorded in its own folder under ``--out``; the script prints one JSON line per run with its validation F1
after every epoch and the best of them, and finally the recipe with the best validation F1. Test scores are in the
run records but are never read here.

    CONLL2003_DIR=../shared/data/conll2003 python benchmarks/select_recipe.py --lr 1e-4 2e-4 3e-4 --epochs 3
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
    """Validation F1 after every epoch, as the module logged it."""

    def __init__(self):
        self.values: list[float] = []

    def on_validation_end(self, trainer, module):
        self.values.append(round(float(trainer.callback_metrics["val/f1"]), 4))


def main() -> None:
    from ftaudit.run import train
    from ftaudit.sweep.space import to_overrides
    from ftaudit.sweep.trials import as_hydra_job, compose_run_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm", help="model config (tiny: a quick check of this script)")
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-4, 2e-4, 3e-4])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[32])
    parser.add_argument("--epochs", type=int, nargs="+", default=[3])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--overrides", nargs="*", default=[], help="more run overrides, e.g. data.max_train_samples=500")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmarks" /
                        f"select_recipe-{datetime.now():%Y-%m-%d_%H-%M-%S}")
    args = parser.parse_args()
    base = [f"model={args.model}", f"seed={args.seed}", "probes.degradation=[]", "probes.fairness.enabled=false",
            "logger=none", "trainer.progress_bar=false", *args.overrides]
    results = []
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for lr, batch_size, epochs in itertools.product(args.lr, args.batch_size, args.epochs):
            params = {"optimizer.lr": lr, "data.batch_size": batch_size, "trainer.max_epochs": epochs}
            run_dir = args.out / f"lr{lr:g}-batch{batch_size}-epochs{epochs}"
            curve, started = ValidationCurve(), time.perf_counter()
            with as_hydra_job(compose_run_config([*base, *to_overrides(params)]), run_dir) as cfg:
                metrics = train(cfg, run_dir, callbacks=[curve])
            results.append({"lr": lr, "batch_size": batch_size, "epochs": epochs, "val_f1_per_epoch": curve.values,
                            "val_f1": round(metrics["task/val_f1"], 4), "seconds": round(time.perf_counter() - started, 1),
                            "run_dir": str(run_dir)})
            print(json.dumps(results[-1]), flush=True)
    best = max(results, key=lambda row: row["val_f1"])
    print(f"best by validation F1: lr {best['lr']:g}, batch {best['batch_size']}, {best['epochs']} epochs: "
          f"val F1 {best['val_f1']:.4f}", flush=True)


if __name__ == "__main__":
    main()
