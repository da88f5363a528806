"""Degradation probes: what fine-tuning made the base model forget."""

from __future__ import annotations


def build_degradation_probes(cfg) -> list:
    return []
