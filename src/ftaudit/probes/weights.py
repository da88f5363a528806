"""Weights probe: how far fine-tuning moved the encoder's weights from the base, overall and per layer."""

from __future__ import annotations

import math
import re
from collections import defaultdict

import torch

from ftaudit.metrics import MetricSpec
from ftaudit.probes.base import ProbeContext
from ftaudit.probes.degradation import DegradationProbe, comparison, comparison_specs

# Transformer blocks are numbered from 0 in parameter names (BERT/RoBERTa "encoder.layer.3.", GPT "h.3.").
BLOCK_INDEX = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)\.")


def parameter_group(name: str) -> str | None:
    """``embeddings``, ``layer_<n>`` (blocks counted from 1, as CKA's hidden states are), or None (e.g. a final norm)."""
    if name.startswith("embeddings."):
        return "embeddings"
    block = BLOCK_INDEX.search(name)
    return f"layer_{int(block.group(1)) + 1}" if block else None


def relative_distances(base: dict[str, torch.Tensor], finetuned: dict[str, torch.Tensor]) -> dict[str, float]:
    """||finetuned - base|| / ||base|| over all of ``base``'s tensors (``overall``) and per group."""
    squared = defaultdict(lambda: [0.0, 0.0])  # group -> [sum of squared changes, sum of squared base weights]
    for name, before in base.items():
        before = before.double()
        after = finetuned[name].detach().to("cpu", torch.float64)
        change, size = float((after - before).square().sum()), float(before.square().sum())
        for group in ("overall", parameter_group(name)):
            if group:
                squared[group][0] += change
                squared[group][1] += size
    return {group: math.sqrt(change / size) if size else 0.0 for group, (change, size) in squared.items()}


class WeightDistanceProbe(DegradationProbe):
    base_name = "weights"
    description = (
        "relative distance ||w_finetuned - w_base|| / ||w_base|| of the encoder's weights, overall and per layer"
    )

    def metric_specs(self) -> list[MetricSpec]:
        # No data: a distance in weight space, measured on no split.
        return [
            *comparison_specs(self.name, None, higher_is_better=False),
            *(MetricSpec(f"degradation/{self.name}/{group}", None, "min") for group in ("embeddings", "layer_*")),
        ]

    def measure(self, ctx: ProbeContext) -> dict[str, float]:
        prefix = ctx.model.base_model_prefix + "."
        finetuned = dict(ctx.model.base_model.named_parameters())
        base = {name: ctx.base_state[prefix + name] for name in finetuned}
        distances = relative_distances(base, finetuned)
        # A distance: the base is 0 from itself, and the drop is how far the weights moved.
        metrics = comparison(self.name, 0.0, distances.pop("overall"), higher_is_better=False)
        metrics.update({f"degradation/{self.name}/{group}": value for group, value in distances.items()})
        return metrics
