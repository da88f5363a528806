"""What the decoder probes share: a causal-LM check, per-item base scores from the cache, and paired-bootstrap drops.

A decoder probe scores the same items with the untouched base model and the fine-tuned one and keeps per-item numbers
(e.g. 1 for a correct answer, a window's summed negative log-likelihood), so every drop gets a paired bootstrap
interval: the items are resampled once for both models (``ftaudit.probes.resampling.bootstrap_recalls``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ftaudit.errors import ConfigError
from ftaudit.metrics import MetricSpec
from ftaudit.probes.base import ProbeContext
from ftaudit.probes.cache import weights_sha256
from ftaudit.probes.degradation import DegradationProbe, comparison, comparison_specs
from ftaudit.probes.resampling import bootstrap_recalls, percentile_interval

PerItem = dict[str, torch.Tensor]  # measure -> one value per item


def is_causal_lm(model: torch.nn.Module) -> bool:
    """A transformers model class with a causal-LM head (e.g. LlamaForCausalLM, GPT2LMHeadModel)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    names = {name for value in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values() for name in np.atleast_1d(value)}
    return type(model).__name__ in names


def check_probe_settings(name: str, settings, positive: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    """Each of ``positive`` must be an integer >= 1, each of ``optional`` too or null (e.g. ``items: null`` = all)."""
    problems = [
        f"probes.degradation_settings.{name}.{key}={settings.get(key)} must be an integer >= 1"
        + (" (or null)" if key in optional else "")
        for key in (*positive, *optional)
        if not (settings.get(key) is None and key in optional)
        and not (isinstance(settings.get(key), int) and settings.get(key) >= 1)
    ]
    if problems:
        raise ConfigError("; ".join(problems))


class CausalLMProbe(DegradationProbe):
    """A degradation probe of a causal LM: skipped for other models; the base side's per-item scores are cached."""

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        if not is_causal_lm(ctx.model):
            return f"{type(ctx.model).__name__} is not a causal language model"
        return super().skip_reason(ctx)

    def per_item_scores(self, ctx: ProbeContext, score: Callable[[torch.nn.Module, str], PerItem], extra=None):
        """``(base, fine-tuned)`` per-item scores; ``score(model, which)`` measures one model. The cache key holds the
        weights outside the base-model prefix too: a causal LM's output head (tied or not) decides its scores."""
        prefix = ctx.model.base_model_prefix + "."
        head = {name: value for name, value in ctx.base_state.items() if not name.startswith(prefix)}
        base = self.cached_base(
            ctx,
            lambda: score(ctx.base_model(), "base"),
            tensors=True,
            extra={"head_weights": weights_sha256(head, ""), **(extra or {})},
        )
        return base, score(ctx.model, "fine-tuned")


def paired_comparison(
    name: str,
    base: np.ndarray,
    finetuned: np.ndarray,
    weights: np.ndarray,
    resamples: int,
    seed: int,
    higher_is_better: bool = True,
    transform: Callable[[np.ndarray], np.ndarray] = lambda mean: mean,
) -> dict[str, float]:
    """``comparison`` of ``transform(sum(values) / sum(weights))`` for both models, plus ``drop_ci_low`` and
    ``drop_ci_high``: the 95% percentile interval of the drop over ``resamples`` paired bootstrap resamples of the
    items (e.g. accuracy: values 0/1, weights 1; perplexity: values a window's NLL, weights its tokens, ``exp``)."""
    values = np.stack([base, finetuned]).astype(float)
    point = transform(values.sum(axis=1) / weights.sum())
    resampled = transform(bootstrap_recalls(values, weights.astype(float), resamples, seed))
    drops = resampled[:, 0] - resampled[:, 1] if higher_is_better else resampled[:, 1] - resampled[:, 0]
    low, high = percentile_interval(drops)
    metrics = comparison(name, point[0], point[1], higher_is_better)
    metrics.update({f"degradation/{name}/drop_ci_low": float(low), f"degradation/{name}/drop_ci_high": float(high)})
    return metrics


def paired_comparison_specs(name: str, split: str | None, higher_is_better: bool = True) -> list[MetricSpec]:
    return [*comparison_specs(name, split, higher_is_better), MetricSpec(f"degradation/{name}/drop_ci_*", split, None)]


def percent(mean: np.ndarray) -> np.ndarray:
    return 100 * mean
