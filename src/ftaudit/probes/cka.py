"""CKA probe: how similar the fine-tuned encoder's representations stay to the base's, layer by layer."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import torch

from ftaudit.errors import ConfigError
from ftaudit.metrics import MetricSpec
from ftaudit.probes.base import ProbeContext
from ftaudit.probes.degradation import DegradationProbe, comparison, comparison_specs
from ftaudit.probes.text import text_batches, wikitext_sentences


def layer_names(hidden_state_count: int) -> list[str]:
    """Hugging Face hidden states: the embedding output, then one per transformer block (``layer_1`` ...)."""
    return ["embeddings"] + [f"layer_{index}" for index in range(1, hidden_state_count)]


@torch.inference_mode()
def token_states(
    encoder,
    tokenizer,
    texts: list[str],
    batch_size: int,
    max_length: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    progress_bar: Callable[[Iterable], Iterable] = iter,
) -> dict[str, torch.Tensor]:
    """Each layer's hidden states of every non-pad token, as one (tokens, hidden) matrix per layer, in a fixed order;
    the batches behind ``progress_bar`` (``text_batches``)."""
    device = next(encoder.parameters()).device
    per_layer: list[list[torch.Tensor]] = []
    for _, batch in text_batches(tokenizer, texts, batch_size, max_length, progress_bar):
        batch = {key: value.to(device) for key, value in batch.items()}
        with autocast():
            hidden_states = encoder(**batch, output_hidden_states=True).hidden_states
        is_token = batch["attention_mask"].bool()
        per_layer = per_layer or [[] for _ in hidden_states]
        for rows, states in zip(per_layer, hidden_states):
            rows.append(states[is_token].float().cpu())
    return {name: torch.cat(rows) for name, rows in zip(layer_names(len(per_layer)), per_layer)}


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA (Kornblith et al. 2019) of two (examples, features) matrices: ||Y'X||^2 / (||X'X|| ||Y'Y||), centred.

    Products in float32 (fast), sums of squares in float64 under one square root of their product, so that
    CKA(X, X) is exactly 1: with X as Y the three products are the same computation.
    """
    x, y = x.float() - x.float().mean(0), y.float() - y.float().mean(0)
    cross = (y.T @ x).double().square().sum()
    return float(cross / torch.sqrt((x.T @ x).double().square().sum() * (y.T @ y).double().square().sum()))


class CKAProbe(DegradationProbe):
    base_name = "cka"
    description = (
        "linear CKA between the base's and the fine-tuned encoder's hidden states on WikiText-2 sentences, "
        "per layer; finetuned = the mean over the transformer blocks (1 = representations unchanged)"
    )
    data = ("WikiText-2", "WIKITEXT2_DIR", "data/wikitext2")
    split_files = {"test": "wiki.test.raw", "validation": "wiki.valid.raw"}

    def __init__(self, settings, *args):
        super().__init__(settings, *args)
        if settings.sentences < 2:
            raise ConfigError(f"probes.degradation_settings.cka.sentences={settings.sentences} must be >= 2")

    def metric_specs(self) -> list[MetricSpec]:
        return [
            *comparison_specs(self.name, self.split),
            *(MetricSpec(f"degradation/{self.name}/{layer}", self.split, "max") for layer in ("embeddings", "layer_*")),
        ]

    def measure(self, ctx: ProbeContext) -> dict[str, float]:
        texts = wikitext_sentences(self.data_file(), self.settings.sentences, self.settings.seed)

        def states(model, which: str) -> dict[str, torch.Tensor]:
            return token_states(
                model.base_model,
                ctx.tokenizer,
                texts,
                self.batch_size,
                self.settings.max_length,
                ctx.autocast,
                ctx.progress(f"{self.name} {which}"),
            )

        base = self.cached_base(ctx, lambda: states(ctx.base_model(), "base"), tensors=True)
        finetuned_states = states(ctx.model, "fine-tuned")
        per_layer = {name: linear_cka(base[name], finetuned) for name, finetuned in finetuned_states.items()}
        blocks = [value for name, value in per_layer.items() if name != "embeddings"]
        # The base's CKA with itself is 1 by definition; `finetuned` is the mean over the transformer blocks.
        metrics = comparison(self.name, 1.0, sum(blocks) / len(blocks))
        metrics.update({f"degradation/{self.name}/{name}": value for name, value in per_layer.items()})
        return metrics
