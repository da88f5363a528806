"""What keeping a run's model and keeping it resumable cost: the size of the saved model (``record.save_model``) and
the time of the full-state checkpoint written after every epoch (``checkpoints/last.ckpt``), set against an epoch.

Each method trains MiniLM for one epoch on the first ``--train-samples`` CoNLL-2003 sentences (probes off); the
epoch checkpoint is timed where the run writes it, and an epoch of the full training split (280,125 non-pad tokens)
is estimated from the run's own training throughput.

    python benchmarks/checkpoint_cost.py --methods full lora
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from ftaudit import compose, train
from ftaudit.resume import EpochCheckpoint, last_checkpoint

FULL_EPOCH_TOKENS = (
    280_125  # non-pad tokens in one pass over CoNLL-2003's training split (docs/results.md: the default recipe)
)


def measure(method: str, train_samples: int, folder: Path) -> dict:
    saves: list[tuple[float, int]] = []
    original = EpochCheckpoint.on_train_epoch_end

    def timed(self, trainer, module):
        started = time.perf_counter()
        original(self, trainer, module)
        saves.append((time.perf_counter() - started, last_checkpoint(folder).stat().st_size))

    EpochCheckpoint.on_train_epoch_end = timed
    try:
        metrics = train(
            compose(
                [
                    f"method={method}",
                    f"data.max_train_samples={train_samples}",
                    "data.max_eval_samples=200",
                    "trainer.max_epochs=1",
                    "trainer.progress_bar=false",
                    "logger=none",
                    "probes.degradation=[]",
                    "probes.fairness.enabled=false",
                ]
            ),
            folder,
        )
    finally:
        EpochCheckpoint.on_train_epoch_end = original
    ((seconds, checkpoint_bytes),) = saves
    epoch_seconds = FULL_EPOCH_TOKENS / metrics["resource/train_tokens_per_second"]
    saved = json.loads((folder / "env.json").read_text())["saved_model"]["model"]
    return {
        "method": method,
        "saved_mb": saved["bytes"] / 1e6,
        "saved_form": saved["form"],
        "checkpoint_mb": checkpoint_bytes / 1e6,
        "checkpoint_s": seconds,
        "full_epoch_s": epoch_seconds,
        "overhead": seconds / epoch_seconds,
        "test_f1": metrics["task/test_f1"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["full", "lora"])
    parser.add_argument("--train-samples", type=int, default=500)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for method in args.methods:
            rows.append(measure(method, args.train_samples, Path(scratch) / method))
    print("| method | saved model/ | form | epoch checkpoint | its save | full-data epoch (est.) | overhead |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['method']} | {row['saved_mb']:.2f} MB | {row['saved_form']} | {row['checkpoint_mb']:.1f} MB | "
            f"{row['checkpoint_s']:.2f} s | {row['full_epoch_s']:.0f} s | {row['overhead']:.2%} |"
        )


if __name__ == "__main__":
    main()
