"""Checks on a composed config that Hydra's schema cannot express."""

from __future__ import annotations

from pathlib import Path

from ftaudit.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "conf"  # the Hydra config tree, shipped inside the package


def check_config(cfg) -> None:
    problems = []
    if not cfg.optimizer.lr > 0:
        problems.append(f"optimizer.lr={cfg.optimizer.lr} must be > 0 (e.g. optimizer.lr=5e-5)")
    if not 0 <= cfg.optimizer.warmup_ratio < 1:
        problems.append(f"optimizer.warmup_ratio={cfg.optimizer.warmup_ratio} must be in [0, 1)")
    if not cfg.trainer.max_epochs >= 1:
        problems.append(f"trainer.max_epochs={cfg.trainer.max_epochs} must be >= 1")
    if cfg.model.dropout is not None and not 0 <= cfg.model.dropout < 1:
        problems.append(f"model.dropout={cfg.model.dropout} must be in [0, 1), or null for the model's own")
    if cfg.trainer.checkpoint not in ("best", "last"):
        problems.append(f"trainer.checkpoint={cfg.trainer.checkpoint!r} must be 'best' or 'last'")
    for key in ("batch_size", "eval_batch_size", "max_train_samples", "max_eval_samples"):
        value = cfg.data[key]
        if value is not None and not value >= 1:
            problems.append(f"data.{key}={value} must be >= 1")
    if problems:
        raise ConfigError("; ".join(problems))
