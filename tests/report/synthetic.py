"""Synthetic run records, laid out as Hydra writes them, for report tests and the speed check."""

from __future__ import annotations

import json
import random
from pathlib import Path

import yaml

FAIRNESS_GROUPS = ("black_female", "black_male", "white_female", "white_male")
# What the producers of these keys declare (split, higher is better), as a run writes it to metrics_info.json.
DECLARED = {
    "task/test_f1": ("test", True),
    "task/val_f1": ("validation", True),
    "degradation/stsb/drop": ("test", False),
    "degradation/cka/drop": ("test", False),
    "resource/train_seconds": (None, False),
    "fairness/names/recall_gap": ("test", False),
    "fairness/names/recall_gap_p_value": ("test", None),
    "task/test_f1_macro": ("test", True),
    "task/test_accuracy": ("test", True),
    "task/val_f1_macro": ("validation", True),
    "fairness/names/flip_rate_gap": ("test", False),
}
TASK_DATA = {
    "ner": {"name": "conll", "files": {"train": "train.txt", "test": "test.txt"}, "tag_scheme": "auto"},
    "classification": {"name": "phrasebank", "file": "Sentences_50Agree.txt", "split_seed": 0},
}


def declaration(key: str) -> dict:
    split, higher = DECLARED.get(key, ("test", True) if key.endswith("/recall") else (None, None))
    return {"split": split, "higher_is_better": higher}


def write_run(run_dir: Path, config: dict, metrics: dict[str, float]) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    (run_dir / "metrics_info.json").write_text(json.dumps({key: declaration(key) for key in metrics}, sort_keys=True))
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))  # Hydra's copy: not a run record
    return run_dir


def run_config(lr: float, seed: int, run_dir: Path) -> dict:
    return {
        "model": {"name": "minilm", "random_init": None},
        "optimizer": {"lr": lr, "weight_decay": 0.01},
        "probes": {"degradation": ["stsb", "cka"]},
        "seed": seed,
        "trainer": {"max_epochs": 1, "progress_bar": False},
        "logger": {"wandb": {"save_dir": str(run_dir)}},
    }


def run_metrics(rng: random.Random) -> dict[str, float]:
    metrics = {
        "task/test_f1": rng.uniform(0.6, 0.9),
        "task/val_f1": rng.uniform(0.6, 0.9),
        "degradation/stsb/drop": rng.uniform(0, 20),
        "degradation/cka/drop": rng.uniform(0, 0.3),
        "resource/train_seconds": rng.uniform(50, 500),
        "fairness/names/recall_gap": rng.uniform(0, 0.2),
    }
    metrics.update({f"fairness/names/group/{group}/recall": rng.uniform(0.7, 1.0) for group in FAIRNESS_GROUPS})
    return metrics


def make_sweep(root: Path, learning_rates: list[float], seeds: list[int], rng_seed: int = 0) -> list[Path]:
    """One multirun folder of len(lr) x len(seeds) jobs, plus a failed job (no metrics.json) that must be skipped."""
    rng = random.Random(rng_seed)
    runs = []
    for job, (lr, seed) in enumerate((lr, seed) for lr in learning_rates for seed in seeds):
        run_dir = root / str(job)
        runs.append(write_run(run_dir, run_config(lr, seed, run_dir), run_metrics(rng)))
    failed = root / str(len(runs))
    failed.mkdir()
    (failed / "config.yaml").write_text(yaml.safe_dump(run_config(learning_rates[0], 99, failed)))
    return runs


def task_run(root: Path, task: str, lr: float, seed: int, rng: random.Random) -> Path:
    """A run of ``task`` (ner or classification) with its own data settings and the metrics that task records (the
    classification runs without the CKA probe, so the tradeoff plots' default costs differ)."""
    run_dir = root / f"{task}-{lr:g}-{seed}"
    config = run_config(lr, seed, run_dir) | {"task": {"name": task}, "data": TASK_DATA[task]}
    if task == "ner":
        return write_run(run_dir, config, run_metrics(rng))
    metrics = {
        "task/test_f1_macro": rng.uniform(0.6, 0.9),
        "task/test_accuracy": rng.uniform(0.7, 0.9),
        "task/val_f1_macro": rng.uniform(0.6, 0.9),
        "degradation/stsb/drop": rng.uniform(0, 20),
        "resource/train_seconds": rng.uniform(50, 500),
        "fairness/names/flip_rate_gap": rng.uniform(0, 0.1),
    }
    metrics.update({f"fairness/names/group/{group}/flip_rate": rng.uniform(0, 0.1) for group in FAIRNESS_GROUPS})
    return write_run(run_dir, config, metrics)
