"""Fairness probes: does the fine-tuned model treat names from different groups alike?"""

from __future__ import annotations


def build_fairness_probes(cfg) -> list:
    return []
