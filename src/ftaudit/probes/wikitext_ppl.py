"""WikiText-2 perplexity of a causal LM, the way the Hugging Face perplexity guide computes it, base vs fine-tuned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ftaudit.errors import ConfigError
from ftaudit.hub import HubSplit
from ftaudit.metrics import MetricSpec
from ftaudit.probes.base import ProbeContext
from ftaudit.probes.lm_degradation import (
    CausalLMProbe,
    check_probe_settings,
    paired_comparison,
    paired_comparison_specs,
)
from ftaudit.probes.lm_scoring import model_max_length, window_nlls
from ftaudit.probes.text import wikitext_lines

RECORDED = ("tokens", "windows", "context", "stride")  # what was measured, recorded beside the perplexities


def guide_text(source: Path | HubSplit) -> str:
    """The split as the guide feeds it: ``"\\n\\n".join(rows)`` of the hub's ``wikitext-2-raw-v1`` rows (a raw-file
    line each, blank lines empty, other lines with their newline)."""
    return "\n\n".join(line if line.strip() else "" for line in wikitext_lines(source))


class WikiTextPerplexityProbe(CausalLMProbe):
    base_name = "wikitext2"
    description = (
        "perplexity of the causal LM on WikiText-2 raw, the Hugging Face guide's strided sliding window (`context` "
        "tokens a window, moving by `stride`; each token scored once), over the first `max_tokens` tokens of the "
        "split; drop = fine-tuned - base, with a paired bootstrap interval over the windows"
    )
    data = ("WikiText-2", "WIKITEXT2_DIR", "data/wikitext2")
    split_files = {"test": "wiki.test.raw", "validation": "wiki.valid.raw"}

    def __init__(self, settings, *args):
        super().__init__(settings, *args)
        check_probe_settings(
            self.base_name, settings, ("context", "stride", "batch_size", "resamples"), optional=("max_tokens",)
        )
        if settings.stride > settings.context:
            raise ConfigError(
                f"probes.degradation_settings.wikitext2.stride={settings.stride} must not exceed its context="
                f"{settings.context}: tokens between windows would never be scored"
            )

    def metric_specs(self) -> list[MetricSpec]:
        return [
            *paired_comparison_specs(self.name, self.split, higher_is_better=False),
            *(MetricSpec(f"degradation/{self.name}/{key}", None, None) for key in RECORDED),
        ]

    def token_ids(self, ctx: ProbeContext) -> list[int]:
        """The split tokenised as the guide does (the tokenizer's own special tokens), cut to ``max_tokens``."""
        token_ids = ctx.tokenizer(guide_text(self.data_file()))["input_ids"]
        return token_ids[: self.settings.max_tokens] if self.settings.max_tokens else token_ids

    def measure(self, ctx: ProbeContext) -> dict[str, float]:
        settings, limit = self.settings, model_max_length(ctx.model)
        if settings.context > limit:
            raise ConfigError(
                f"probes.degradation_settings.wikitext2.context={settings.context} exceeds the model's {limit} "
                "positions; lower it"
            )
        token_ids = self.token_ids(ctx)

        def score(model, which: str) -> dict[str, torch.Tensor]:
            nll, tokens = window_nlls(
                model,
                token_ids,
                settings.context,
                settings.stride,
                settings.batch_size,
                ctx.autocast,
                ctx.progress(f"{self.name} {which}"),
            )
            return {"nll": torch.from_numpy(nll), "tokens": torch.from_numpy(tokens)}

        base, finetuned = self.per_item_scores(ctx, score)
        metrics = paired_comparison(
            self.name,
            base["nll"].numpy(),
            finetuned["nll"].numpy(),
            base["tokens"].numpy(),
            settings.resamples,
            settings.seed,
            higher_is_better=False,
            transform=np.exp,
        )
        recorded = (base["tokens"].sum(), len(base["tokens"]), settings.context, settings.stride)
        metrics.update({f"degradation/{self.name}/{key}": float(value) for key, value in zip(RECORDED, recorded)})
        return metrics
