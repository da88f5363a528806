"""The probe interface: measure a fine-tuned model (and its untouched base) and return flat, declared metrics."""

from __future__ import annotations

import contextlib
import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from omegaconf import DictConfig

from ftaudit.metrics import MetricSpec
from ftaudit.progress import progress, stage

Item = TypeVar("Item")


@dataclass
class ProbeContext:
    """Everything a probe may read. ``model`` is the fine-tuned classifier in eval mode; ``precision`` the run's
    (e.g. ``bf16-mixed``) and ``autocast`` the context its test pass ran under, for every other inference too."""

    cfg: DictConfig
    model: torch.nn.Module
    base_state: dict[str, torch.Tensor]  # the same model's weights before fine-tuning (CPU copies)
    tokenizer: object
    datamodule: object
    run_dir: Path
    device: torch.device
    precision: str = "32-true"
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    task: object = None  # the run's ftaudit.tasks.base.Task
    base_source: str | None = (
        None  # the base checkpoint (name or folder) the model was fine-tuned from; None: random init
    )

    def base_model(self) -> torch.nn.Module:
        """A copy of the fine-tuned architecture holding the untouched pre-fine-tuning weights."""
        base = copy.deepcopy(self.model)
        base.load_state_dict(self.base_state)
        return base.eval()

    def progress(self, description: str) -> Callable[[Iterable[Item]], Iterable[Item]]:
        """What puts a loop (e.g. over batches) behind a progress bar titled ``description``, unless the run turned
        bars off (``trainer.progress_bar=false``)."""
        return lambda iterable: progress(iterable, description, self.cfg.trainer.progress_bar)


class Probe(ABC):
    kind: str  # the key prefix: "degradation", "fairness", ...
    name: str
    description: str = ""  # what its numbers mean, in a sentence (model cards quote it)
    data_files: list[Path] = []  # the files it reads, recorded with their hashes in env.json

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        """Why this probe does not apply to the model (recorded, never an error); None if it applies."""
        return None

    @abstractmethod
    def metric_specs(self) -> list[MetricSpec]:
        """The split and direction of every key ``measure`` returns."""

    @abstractmethod
    def measure(self, ctx: ProbeContext) -> dict[str, float]:
        """Flat metrics, keys starting with ``f"{kind}/{name}/"``."""


def run_probes(probes: list[Probe], ctx: ProbeContext) -> tuple[dict[str, float], dict[str, str]]:
    """All probes' metrics plus each one's wall time (logged, a line each); skipped probes and why on the side.

    A probe that cannot produce a finite number for every key is skipped with that reason: a NaN is never recorded.
    """
    metrics, skipped = {}, {}
    for probe in probes:
        key = f"{probe.kind}/{probe.name}"
        # Deciding whether it applies may load things (e.g. an MLM head): part of its time.
        with stage(f"probe {key}") as timed:
            reason = probe.skip_reason(ctx)
            if not reason:
                with torch.inference_mode():
                    measured = probe.measure(ctx)
                non_finite = sorted(name for name, value in measured.items() if not math.isfinite(value))
                reason = f"non-finite values for {', '.join(non_finite)}" if non_finite else None
            timed.outcome = f"skipped: {reason}" if reason else None
        if reason:
            skipped[key] = reason
            continue
        metrics.update(measured)
        metrics[f"resource/probe_seconds/{key}"] = timed.seconds
    return metrics, skipped


def probe_metric_specs(probes: list[Probe]) -> list[MetricSpec]:
    return [spec for probe in probes for spec in probe.metric_specs()]
