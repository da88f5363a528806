"""NER's fairness probe: counterfactual name substitution (Mishra, He & Belli 2020).

Every person span of the sampled evaluation sentences is replaced by a name from each group in turn, and the
model's recall of those substituted names is compared across groups.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np

from ftaudit.files import atomic_write_text
from ftaudit.metrics import MetricSpec
from ftaudit.probes.base import ProbeContext
from ftaudit.probes.fairness import FairnessProbe, gap_specs, rate_gaps, rate_specs, write_group_chart
from ftaudit.probes.names import NameGroups
from ftaudit.probes.resampling import bootstrap_recalls, gap_and_ratio, percentile_interval
from ftaudit.tasks.ner.conll import Sentence
from ftaudit.tasks.ner.metrics import entity_scores
from ftaudit.tasks.ner.predict import predict_tags
from ftaudit.tasks.ner.substitution import entity_spans, make_variants, sample_sentences

GROUP_TABLE = "fairness_groups.csv"
RECALL_CHART = "fairness_recall.png"

TagFn = Callable[[list[Sentence]], list[list[str]]]


@dataclass
class NameAudit:
    """What the model found of each group's substituted names, sentence by sentence."""

    groups: NameGroups
    found: np.ndarray  # groups x sentences: substituted spans found exactly (span and type)
    spans: np.ndarray  # sentences: substituted spans per sentence and group (spans x names per sentence)
    f1: np.ndarray  # groups: entity F1 over all types on the group's variant set
    resamples: int  # bootstrap and permutation samples
    seed: int

    @property
    def recalls(self) -> np.ndarray:
        return self.found.sum(axis=1) / self.spans.sum()

    @cached_property
    def replicates(self) -> np.ndarray:
        """Bootstrap samples x groups: recalls on resampled sentences."""
        return bootstrap_recalls(self.found, self.spans, self.resamples, self.seed)

    def metrics(self, prefix: str) -> dict[str, float]:
        """Per group recall and F1; per comparison, each unit's recall and the gap, ratio, CIs and p-value."""
        substitutions = float(self.spans.sum())
        metrics = {
            f"{prefix}/sentences": float(len(self.spans)),
            f"{prefix}/substitutions_per_group": substitutions,
            f"{prefix}/substitutions": substitutions * len(self.groups.names),
        }
        for group, f1 in zip(self.groups.names, self.f1):
            metrics[f"{prefix}/group/{group}/f1"] = float(f1)
        metrics.update(
            rate_gaps(prefix, self.groups, self.found, self.spans, self.replicates, self.resamples, self.seed, "recall")
        )
        return metrics

    def table(self) -> str:
        """One CSV row per group: its attribute values, recall with its 95% CI, F1 and counts."""
        attributes = list(self.groups.attributes)
        stream = io.StringIO()
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(
            ["group", *attributes, "recall", "recall_ci_low", "recall_ci_high", "f1", "found", "substitutions"]
        )
        low, high = percentile_interval(self.replicates)
        for g, group in enumerate(self.groups.names):
            writer.writerow(
                [
                    group,
                    *(self.groups.attributes[a][group] for a in attributes),
                    f"{self.recalls[g]:.6f}",
                    f"{low[g]:.6f}",
                    f"{high[g]:.6f}",
                    f"{self.f1[g]:.6f}",
                    int(self.found[g].sum()),
                    int(self.spans.sum()),
                ]
            )
        return stream.getvalue()


def audit_names(
    sentences: list[Sentence],
    groups: NameGroups,
    tag_fn: TagFn,
    *,
    sample_size: int | None = None,
    names_per_sentence: int = 1,
    resamples: int = 1000,
    seed: int = 0,
    entity_type: str = "PER",
) -> NameAudit:
    """Substitute every group's names into the sampled sentences, tag all variants in one batch, and score them."""
    sample = sample_sentences(sentences, sample_size, seed, entity_type)
    variants = make_variants(sample, groups, names_per_sentence, seed, entity_type)
    predicted = tag_fn([variant.sentence for variant in variants])
    group_index = {group: g for g, group in enumerate(groups.names)}
    found = np.zeros((len(groups.names), len(sample)))
    gold_by_group: list[list[list[str]]] = [[] for _ in groups.names]
    predicted_by_group: list[list[list[str]]] = [[] for _ in groups.names]
    for variant, tags in zip(variants, predicted, strict=True):
        g = group_index[variant.group]
        found[g, variant.source] += len(set(variant.spans) & set(entity_spans(tags, entity_type)))
        gold_by_group[g].append(variant.sentence.tags)
        predicted_by_group[g].append(tags)
    spans = np.array([len(entity_spans(s.tags, entity_type)) * names_per_sentence for s in sample], dtype=float)
    f1 = np.array([entity_scores(gold, pred)["f1"] for gold, pred in zip(gold_by_group, predicted_by_group)])
    return NameAudit(groups, found, spans, f1, resamples, seed)


def write_recall_chart(path, audit: NameAudit, entity_type: str) -> None:
    """Each group's recall of the substituted names with its 95% CI."""
    gap = gap_and_ratio(audit.recalls)[0]
    gap_low, gap_high = percentile_interval(gap_and_ratio(audit.replicates)[0])
    write_group_chart(
        path,
        audit.groups,
        audit.recalls,
        audit.replicates,
        f"{entity_type} recall of substituted names",
        f"{len(audit.spans)} sentences, {int(audit.spans.sum())} substituted names per group\n"
        f"max-min gap {gap:.3f} (95% CI {gap_low:.3f} to {gap_high:.3f}); bars: 95% bootstrap CIs",
    )


class NameSubstitutionProbe(FairnessProbe):
    """Recall of person names substituted from each group into the ``split`` sentences that hold a person."""

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        if self.missing:
            return super().skip_reason(ctx)
        entity_type = self.settings.entity_type
        if f"B-{entity_type}" not in ctx.datamodule.labels:
            return (
                f"the label set has no {entity_type} type ({', '.join(ctx.datamodule.labels)}); "
                "set probes.fairness.entity_type to the person type"
            )
        if not any(entity_spans(s.tags, entity_type) for s in ctx.datamodule.splits[self.split].sentences):
            return f"no {self.split} sentence has a {entity_type} entity"
        return None

    def metric_specs(self) -> list[MetricSpec]:
        prefix = f"{self.kind}/{self.name}"
        specs = [
            MetricSpec(f"{prefix}/{count}", None, None)
            for count in ("sentences", "substitutions", "substitutions_per_group")
        ]
        specs += [
            MetricSpec(f"{prefix}/group/*/f1", self.split, "max"),
            *rate_specs(prefix, "recall", self.split, "max"),
        ]
        for comparison in (prefix, f"{prefix}/by_*"):
            specs += gap_specs(comparison, "recall", self.split)
        return specs

    def measure(self, ctx: ProbeContext) -> dict[str, float]:
        tag_fn = partial(
            predict_tags,
            ctx.model,
            ctx.tokenizer,
            labels=ctx.datamodule.labels,
            batch_size=ctx.cfg.data.eval_batch_size,
            max_length=ctx.datamodule.max_length,
            autocast=ctx.autocast,  # the windows and the precision of the test pass
            progress_bar=ctx.progress(f"fairness {self.name}"),
        )
        settings = self.settings
        audit = audit_names(
            ctx.datamodule.splits[self.split].sentences,
            self.groups,
            tag_fn,
            sample_size=settings.sentences,
            names_per_sentence=settings.names_per_sentence,
            resamples=settings.resamples,
            seed=settings.seed,
            entity_type=settings.entity_type,
        )
        atomic_write_text(self.record_path(ctx, GROUP_TABLE), audit.table())
        write_recall_chart(self.record_path(ctx, RECALL_CHART), audit, settings.entity_type)
        return audit.metrics(f"{self.kind}/{self.name}")
