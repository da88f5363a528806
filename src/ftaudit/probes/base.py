"""The probe interface: measure a fine-tuned model (and its untouched base) and return flat metrics."""

from __future__ import annotations

import copy
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

log = logging.getLogger(__name__)


@dataclass
class ProbeContext:
    """Everything a probe may read. ``model`` is the fine-tuned token classifier in eval mode."""

    cfg: DictConfig
    model: torch.nn.Module
    base_state: dict[str, torch.Tensor]  # the same model's weights before fine-tuning (CPU copies)
    tokenizer: object
    datamodule: object
    run_dir: Path
    device: torch.device

    def base_model(self) -> torch.nn.Module:
        """A copy of the fine-tuned architecture holding the untouched pre-fine-tuning weights."""
        base = copy.deepcopy(self.model)
        base.load_state_dict(self.base_state)
        return base.eval()


class Probe(ABC):
    kind: str  # the key prefix: "degradation", "fairness", ...
    name: str

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        """Why this probe does not apply to the model (recorded, never an error); None if it applies."""
        return None

    @abstractmethod
    def measure(self, ctx: ProbeContext) -> dict[str, float]:
        """Flat metrics, keys starting with ``f"{kind}/{name}/"``."""


def run_probes(probes: list[Probe], ctx: ProbeContext) -> tuple[dict[str, float], dict[str, str]]:
    """All probes' metrics plus each one's wall time; skipped probes and their reasons on the side."""
    metrics, skipped = {}, {}
    for probe in probes:
        key = f"{probe.kind}/{probe.name}"
        started = time.perf_counter()  # deciding whether it applies may load things (e.g. an MLM head): part of the cost
        reason = probe.skip_reason(ctx)
        if reason:
            skipped[key] = reason
            log.info("probe %s skipped: %s", key, reason)
            continue
        with torch.inference_mode():
            metrics.update(probe.measure(ctx))
        metrics[f"resource/probe_seconds/{key}"] = time.perf_counter() - started
    return metrics, skipped


def build_probes(cfg: DictConfig) -> list[Probe]:
    """The probes the ``probes`` config group selects, in order."""
    from ftaudit.probes.degradation import build_degradation_probes
    from ftaudit.probes.fairness import build_fairness_probes

    return [*build_degradation_probes(cfg), *build_fairness_probes(cfg)]
