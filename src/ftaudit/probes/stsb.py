"""STS-B probe: do the encoder's mean-pooled hidden states still rank sentence pairs by meaning?"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from scipy.stats import spearmanr

from ftaudit.errors import DataError
from ftaudit.hub import HubSplit
from ftaudit.metrics import MetricSpec
from ftaudit.probes.base import ProbeContext
from ftaudit.probes.degradation import DegradationProbe, comparison, comparison_specs
from ftaudit.probes.text import text_batches


@dataclass
class SimilarityPairs:
    first: list[str]
    second: list[str]
    gold: list[float]


def read_stsb(path: Path) -> SimilarityPairs:
    """STS-B's tab-separated ``genre file year id score sentence1 sentence2 [license...]`` rows.

    Quoting is off: sentences hold unbalanced ``"`` that a default CSV reader would merge across rows.
    """
    pairs = SimilarityPairs([], [], [])
    with open(path, encoding="utf-8", newline="") as stream:
        for line_number, row in enumerate(csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            try:
                score, first, second = float(row[4]), row[5], row[6]
            except (IndexError, ValueError):
                raise DataError(
                    f"{path}:{line_number}: expected tab-separated 'genre file year id score "
                    f"sentence1 sentence2', got {len(row)} field(s)"
                ) from None
            pairs.first.append(first)
            pairs.second.append(second)
            pairs.gold.append(score)
    if len(pairs.gold) < 2:
        raise DataError(f"{path}: needs at least 2 sentence pairs, has {len(pairs.gold)}")
    return pairs


STSB_SCALE = 5.0  # STS-B's gold scores run from 0 to 5


def hub_stsb_pairs(split: HubSplit, score_scale: float) -> SimilarityPairs:
    """A hub copy's ``sentence1``, ``sentence2`` and ``score`` columns, the scores multiplied by ``score_scale`` onto
    STS-B's 0-5 scale (sentence-transformers/stsb divided them by 5; Spearman is unchanged either way)."""
    first, second = split.column("sentence1"), split.column("sentence2")
    gold = [score * score_scale for score in split.column("score")]
    if not all(0 <= score <= STSB_SCALE for score in gold):
        raise DataError(
            f"{split}: scores x {score_scale} run from {min(gold)} to {max(gold)}, not STS-B's 0 to 5; set "
            "probes.degradation_settings.stsb.hub_score_scale to what puts the copy's scores on 0-5"
        )
    if len(gold) < 2:
        raise DataError(f"{split}: needs at least 2 sentence pairs, has {len(gold)}")
    return SimilarityPairs(list(first), list(second), gold)


@torch.inference_mode()
def mean_pooled_embeddings(
    encoder,
    tokenizer,
    texts: list[str],
    batch_size: int,
    max_length: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    progress_bar: Callable[[Iterable], Iterable] = iter,
) -> torch.Tensor:
    """One vector per text: the last hidden states averaged over its real (attention-masked) tokens; the batches
    behind ``progress_bar`` (``text_batches``)."""
    device = next(encoder.parameters()).device
    embeddings = torch.empty(len(texts), encoder.config.hidden_size)
    for indices, batch in text_batches(tokenizer, texts, batch_size, max_length, progress_bar):
        batch = {key: value.to(device) for key, value in batch.items()}
        with autocast():
            hidden = encoder(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        embeddings[indices] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu()
    return embeddings


def similarity_spearman(
    encoder,
    tokenizer,
    pairs: SimilarityPairs,
    batch_size: int,
    max_length: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    progress_bar: Callable[[Iterable], Iterable] = iter,
) -> float:
    """Spearman x 100 between the pairs' embedding cosine similarities and their gold scores."""
    texts = list(dict.fromkeys(pairs.first + pairs.second))  # each distinct sentence encoded once
    position = {text: index for index, text in enumerate(texts)}
    embeddings = mean_pooled_embeddings(encoder, tokenizer, texts, batch_size, max_length, autocast, progress_bar)
    first = embeddings[[position[text] for text in pairs.first]]
    second = embeddings[[position[text] for text in pairs.second]]
    cosine = torch.nn.functional.cosine_similarity(first, second).numpy()
    return 100 * float(spearmanr(cosine, pairs.gold).statistic)


class StsbProbe(DegradationProbe):
    base_name = "stsb"
    description = (
        "Spearman correlation (x100) between the cosine similarity of the encoder's mean-pooled last hidden "
        "states and the gold similarity of STS-B sentence pairs; drop = base - fine-tuned"
    )
    data = ("STS-B", "STSB_DIR", "data/stsb")
    split_files = {"test": "sts-test.csv", "validation": "sts-dev.csv"}

    def metric_specs(self) -> list[MetricSpec]:
        return comparison_specs(self.name, self.split)

    def measure(self, ctx: ProbeContext) -> dict[str, float]:
        source = self.data_file()
        pairs = (
            hub_stsb_pairs(source, self.settings.hub_score_scale) if isinstance(source, HubSplit) else read_stsb(source)
        )

        def spearman(model, which: str) -> float:
            return similarity_spearman(
                model.base_model,
                ctx.tokenizer,
                pairs,
                self.batch_size,
                self.settings.max_length,
                ctx.autocast,
                ctx.progress(f"{self.name} {which}"),
            )

        base = self.cached_base(ctx, lambda: {"spearman": spearman(ctx.base_model(), "base")})
        return comparison(self.name, base["spearman"], spearman(ctx.model, "fine-tuned"))
