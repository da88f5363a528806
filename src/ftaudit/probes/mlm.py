"""Masked-LM probe: can the model's own pretrained MLM head still fill in masked words from the fine-tuned encoder?"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable

import torch

from ftaudit.errors import ConfigError
from ftaudit.metrics import MetricSpec
from ftaudit.models.loading import resolve_source
from ftaudit.probes.base import ProbeContext
from ftaudit.probes.cache import weights_sha256
from ftaudit.probes.degradation import DegradationProbe, comparison, comparison_specs
from ftaudit.probes.text import text_batches, wikitext_sentences


def load_masked_lm(source: str):
    """``(model, missing head weights)``: the checkpoint as a masked LM, and which head weights it lacks."""
    from transformers import AutoModelForMaskedLM

    model, info = AutoModelForMaskedLM.from_pretrained(source, output_loading_info=True)
    encoder_prefix = model.base_model_prefix + "."
    return model.eval(), sorted(key for key in info["missing_keys"] if not key.startswith(encoder_prefix))


def choose_masked(candidates: torch.Tensor, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """Per row, exactly round(ratio x candidates) (at least one) of the candidate positions, drawn from ``generator``."""
    masked = torch.zeros_like(candidates)
    for row, positions in enumerate(candidates):
        where = positions.nonzero().squeeze(1)
        count = max(1, round(ratio * len(where)))
        masked[row, where[torch.randperm(len(where), generator=generator)[:count]]] = True
    return masked


@torch.inference_mode()
def masked_token_scores(
    masked_lm,
    tokenizer,
    texts: list[str],
    batch_size: int,
    max_length: int,
    ratio: float,
    seed: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    progress_bar: Callable[[Iterable], Iterable] = iter,
) -> dict[str, float]:
    """Accuracy (%) of the top prediction at the masked positions, and exp(mean negative log-likelihood) there; the
    batches behind ``progress_bar`` (``text_batches``)."""
    device = next(masked_lm.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    special_ids = torch.tensor(tokenizer.all_special_ids)
    correct, negative_log_likelihood, count = 0, 0.0, 0
    for _, batch in text_batches(tokenizer, texts, batch_size, max_length, progress_bar):
        input_ids = batch["input_ids"]
        masked = choose_masked(batch["attention_mask"].bool() & ~torch.isin(input_ids, special_ids), ratio, generator)
        inputs = input_ids.masked_fill(masked, tokenizer.mask_token_id)
        with autocast():
            logits = masked_lm(input_ids=inputs.to(device), attention_mask=batch["attention_mask"].to(device)).logits
        log_probs = logits[masked.to(device)].float().log_softmax(-1)
        targets = input_ids[masked].to(device)
        correct += int((log_probs.argmax(-1) == targets).sum())
        negative_log_likelihood -= float(log_probs.gather(1, targets[:, None]).sum())
        count += len(targets)
    return {"accuracy": 100 * correct / count, "pseudo_perplexity": math.exp(negative_log_likelihood / count)}


class MaskedLMProbe(DegradationProbe):
    base_name = "mlm"
    description = (
        "accuracy (%) of the base model's own pretrained masked-LM head on top of the encoder, predicting "
        "masked tokens of WikiText-2 sentences (and the pseudo-perplexity there); drop = base - fine-tuned"
    )
    data = ("WikiText-2", "WIKITEXT2_DIR", "data/wikitext2")
    split_files = {"test": "wiki.test.raw", "validation": "wiki.valid.raw"}

    def __init__(self, settings, *args):
        super().__init__(settings, *args)
        if not 0 < settings.mask_ratio < 1:
            raise ConfigError(f"probes.degradation_settings.mlm.mask_ratio={settings.mask_ratio} must be in (0, 1)")
        self.masked_lm, self.head_identity = None, None

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        if ctx.base_source is None:
            return "random-init base model (model.random_init): there is no pretrained masked-LM head"
        if ctx.tokenizer.mask_token_id is None:
            return "the tokenizer has no mask token"
        data_problem = super().skip_reason(ctx)
        if data_problem:
            return data_problem
        source = resolve_source(ctx.base_source)  # the base's head: an audited fine-tuned checkpoint has none
        masked_lm, missing = load_masked_lm(source)
        if missing:
            return f"{source} has no pretrained masked-LM head weights (missing {', '.join(missing)})"
        encoder_prefix = masked_lm.base_model_prefix + "."
        head = {name: value for name, value in masked_lm.state_dict().items() if not name.startswith(encoder_prefix)}
        self.head_identity = weights_sha256(head, "")
        self.masked_lm = masked_lm.to(ctx.device)
        return None

    def metric_specs(self) -> list[MetricSpec]:
        return [
            *comparison_specs(self.name, self.split),
            *comparison_specs(f"{self.name}/pseudo_perplexity", self.split, higher_is_better=False),
        ]

    def measure(self, ctx: ProbeContext) -> dict[str, float]:
        settings = self.settings
        texts = wikitext_sentences(self.data_file(), settings.sentences, settings.seed)
        prefix = ctx.model.base_model_prefix + "."

        masked_lm_encoder = self.masked_lm.base_model.state_dict().keys()

        def scores(encoder_state: dict[str, torch.Tensor], which: str) -> dict[str, float]:
            # The pretrained head on top of the given encoder (tied input/output embeddings move with it). A sentence
            # classifier's encoder also holds a pooler, which the masked LM neither has nor uses.
            self.masked_lm.base_model.load_state_dict(
                {k: v for k, v in encoder_state.items() if k in masked_lm_encoder}
            )
            return masked_token_scores(
                self.masked_lm,
                ctx.tokenizer,
                texts,
                self.batch_size,
                settings.max_length,
                settings.mask_ratio,
                settings.seed,
                ctx.autocast,
                ctx.progress(f"{self.name} {which}"),
            )

        base_encoder = {name[len(prefix) :]: value for name, value in ctx.base_state.items() if name.startswith(prefix)}
        base = self.cached_base(ctx, lambda: scores(base_encoder, "base"), extra={"head_weights": self.head_identity})
        finetuned = scores(ctx.model.base_model.state_dict(), "fine-tuned")
        self.masked_lm = None  # free it: the run goes on
        metrics = comparison(self.name, base["accuracy"], finetuned["accuracy"])
        metrics.update(
            comparison(
                f"{self.name}/pseudo_perplexity",
                base["pseudo_perplexity"],
                finetuned["pseudo_perplexity"],
                higher_is_better=False,
            )
        )
        return metrics
