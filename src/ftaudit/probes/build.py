"""The probes a run's config selects: its degradation probes (each the class its config names), then its task's
fairness probe. Apart from ``probes.base`` so that the probe interface imports no probe."""

from __future__ import annotations

from omegaconf import DictConfig

from ftaudit.probes.base import Probe
from ftaudit.probes.degradation import build_degradation_probes
from ftaudit.probes.fairness import build_fairness_probes


def build_probes(cfg: DictConfig, task) -> list[Probe]:
    """The probes the ``probes`` config group selects, in order: degradation, then the task's fairness probe."""
    return [*build_degradation_probes(cfg), *build_fairness_probes(cfg, task)]
