"""The fine-tuning method interface: how a run changes the model before training, its loss, and what it measures after.

A method is built from the ``method`` config group (``_target_`` + its settings). The base class is full
fine-tuning; the other methods override only the hooks they need, so a run calls every hook unconditionally.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from ftaudit.errors import ConfigError, UserError
from ftaudit.metrics import MetricSpec


class FineTuningMethod:
    """Full fine-tuning: every weight trains, nothing is added to the training step, and the trained model is
    already a plain token classifier."""

    def __init__(self, name: str = "full"):
        self.name = name

    def prepare(self, model: torch.nn.Module, total_steps: int) -> torch.nn.Module:
        """The model to train (wrapped with adapters, or partly frozen). Called once, after the base weights
        were snapshot; ``total_steps`` is the run's number of optimiser steps."""
        return model

    def callbacks(self) -> list[L.Callback]:
        """Lightning callbacks the method needs during training (after ``prepare``); none costs nothing per step."""
        return []

    def merged(self, model: torch.nn.Module) -> torch.nn.Module:
        """A plain token classifier holding the trained weights, with the base model's state_dict keys:
        what the probes and any later evaluation see."""
        return model

    def metrics(self, model: torch.nn.Module) -> dict[str, float]:
        """``method/...`` figures of the trained model (as returned by ``prepare``)."""
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        return {
            "method/trainable_params": float(trainable),
            "method/trainable_fraction": trainable / total,
            "method/adapter_mb": self.saved_bytes(model) / 1e6,
        }

    def saved_bytes(self, model: torch.nn.Module) -> int:
        """Bytes on disk of what must be kept beside the base model to restore this fine-tune: the trained tensors."""
        from safetensors.torch import save_file

        trained = {name: p.detach().contiguous() for name, p in model.named_parameters() if p.requires_grad}
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "trained.safetensors"
            save_file(trained, str(path))
            return path.stat().st_size

    def metric_specs(self, run_specs: list[MetricSpec]) -> list[MetricSpec]:
        """The split and direction of the keys ``metrics`` and ``evaluate`` return, given the declarations of the
        rest of the run's (``run_specs``: the task's, the probes', the resources')."""
        return [
            MetricSpec("method/trainable_params", None, None),
            MetricSpec("method/trainable_fraction", None, None),
            MetricSpec("method/adapter_mb", None, "min"),
        ]

    def evaluate(self, ctx) -> dict[str, float]:
        """Measurements after the test pass and the probes, given the probes' ``ProbeContext`` (e.g. WiSE-FT's curve)."""
        return {}


def build_method(cfg: DictConfig) -> FineTuningMethod:
    """The method the ``method`` config group selects."""
    if "_target_" not in cfg:
        raise ConfigError(
            "the method config has no _target_; pick one with method=full|lora|adalora|ia3|freeze|l2sp|wise"
        )
    try:
        method = hydra.utils.instantiate(cfg)
    except InstantiationException as err:
        if isinstance(err.__cause__, UserError):  # a method's own check of its settings
            raise err.__cause__ from None
        raise ConfigError(
            f"cannot build method {cfg.get('name')!r}: {err.__cause__ or err}".replace("\n", " ")
        ) from None
    if not isinstance(method, FineTuningMethod):
        raise ConfigError(f"method._target_={cfg._target_} is not a ftaudit.methods.FineTuningMethod")
    return method
