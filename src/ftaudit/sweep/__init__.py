"""Hyper-parameter search with Optuna over the training config; every trial is an ordinary run."""

from ftaudit.sweep.run import run_sweep

__all__ = ["run_sweep"]
