"""Fairness probes: does the fine-tuned model treat names from different groups alike?

Counterfactual name substitution (Mishra, He & Belli 2020) on the real test set: every person span of
the sampled test sentences is replaced by a name from each group in turn, and the model's recall of
those substituted names is compared across groups.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import Callable

import numpy as np

from ftaudit.data.conll import Sentence
from ftaudit.errors import ConfigError, DataError
from ftaudit.evaluation import entity_scores
from ftaudit.models.predict import predict_tags
from ftaudit.paths import find_data
from ftaudit.probes.base import Probe, ProbeContext
from ftaudit.probes.resampling import (bootstrap_recalls, gap_and_ratio, p_value, percentile_interval, permuted_recalls,
                                      pooled_recalls)
from ftaudit.probes.substitution import NameGroups, entity_spans, load_name_groups, make_variants, sample_sentences
from ftaudit.tracking.record import atomic_save_figure, atomic_write_text

NAMES_ENV_VAR = "FAIRNESS_NAMES_FILE"
NAMES_DEFAULT = "data/fairness_names/mishra2020.yaml"
GROUP_TABLE = "fairness_groups.csv"
RECALL_CHART = "fairness_recall.png"

log = logging.getLogger(__name__)

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

    def comparisons(self) -> dict[str, tuple[dict[str, list[int]], list[list[int]]]]:
        """Key prefix -> (each compared unit and its groups' indices, the strata its permutation test shuffles within).

        Overall, every group is a unit and all groups are exchangeable under the null. Per attribute,
        the units are its values (e.g. female, male), each pooling its groups; the null swaps only groups
        that agree on every other attribute, so a gender gap is not confounded with an ethnicity gap.
        """
        index = {group: i for i, group in enumerate(self.groups.names)}
        comparisons = {"": ({f"group/{group}": [i] for group, i in index.items()}, [list(index.values())])}
        for attribute in self.groups.attributes:
            others = [other for other in self.groups.attributes if other != attribute]
            strata: dict[tuple, list[int]] = {}
            for group, i in index.items():
                strata.setdefault(tuple(self.groups.attributes[other][group] for other in others), []).append(i)
            units = {f"by_{attribute}/{value}": [index[group] for group in groups]
                     for value, groups in self.groups.members(attribute).items()}
            comparisons[f"by_{attribute}"] = (units, list(strata.values()))
        return comparisons

    def metrics(self, prefix: str) -> dict[str, float]:
        """Per group recall and F1; per comparison, each unit's recall and the gap, ratio, CIs and p-value."""
        substitutions = float(self.spans.sum())
        metrics = {f"{prefix}/sentences": float(len(self.spans)), f"{prefix}/substitutions_per_group": substitutions,
                   f"{prefix}/substitutions": substitutions * len(self.groups.names)}
        for group, f1 in zip(self.groups.names, self.f1):
            metrics[f"{prefix}/group/{group}/f1"] = float(f1)
        for name, (units, strata) in self.comparisons().items():
            columns = list(units.values())
            recalls = pooled_recalls(self.recalls, columns)
            metrics.update({f"{prefix}/{unit}/recall": float(recall) for unit, recall in zip(units, recalls)})
            null = permuted_recalls(self.found, self.spans, strata, self.resamples, self.seed)
            comparison = "/".join(filter(None, (prefix, name)))
            metrics.update(gap_metrics(comparison, recalls, pooled_recalls(self.replicates, columns),
                                       pooled_recalls(null, columns)))
        return metrics

    def table(self) -> str:
        """One CSV row per group: its attribute values, recall with its 95% CI, F1 and counts."""
        attributes = list(self.groups.attributes)
        stream = io.StringIO()
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["group", *attributes, "recall", "recall_ci_low", "recall_ci_high", "f1", "found", "substitutions"])
        low, high = percentile_interval(self.replicates)
        for g, group in enumerate(self.groups.names):
            writer.writerow([group, *(self.groups.attributes[a][group] for a in attributes), f"{self.recalls[g]:.6f}",
                             f"{low[g]:.6f}", f"{high[g]:.6f}", f"{self.f1[g]:.6f}", int(self.found[g].sum()),
                             int(self.spans.sum())])
        return stream.getvalue()


def gap_metrics(prefix: str, recalls: np.ndarray, replicates: np.ndarray, null: np.ndarray) -> dict[str, float]:
    """Max-min gap and min/max ratio of ``recalls`` with bootstrap percentile intervals; the gap's permutation p-value."""
    point, resampled = gap_and_ratio(recalls), gap_and_ratio(replicates)
    metrics = {}
    for name, value, samples in zip(("recall_gap", "recall_ratio"), point, resampled):
        low, high = percentile_interval(samples)
        metrics.update({f"{prefix}/{name}": float(value), f"{prefix}/{name}_ci_low": float(low),
                        f"{prefix}/{name}_ci_high": float(high)})
    metrics[f"{prefix}/recall_gap_p_value"] = p_value(float(point[0]), gap_and_ratio(null)[0])
    return metrics


def audit_names(sentences: list[Sentence], groups: NameGroups, tag_fn: TagFn, *, sample_size: int | None = None,
                names_per_sentence: int = 1, resamples: int = 1000, seed: int = 0,
                entity_type: str = "PER") -> NameAudit:
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


def write_recall_chart(path: Path, audit: NameAudit, entity_type: str) -> None:
    """Bar chart of each group's recall with its 95% CI, written atomically."""
    from matplotlib.figure import Figure  # the object API renders with Agg and leaves pyplot's global state alone

    names = list(audit.groups.names)
    low, high = percentile_interval(audit.replicates)
    colour_by = next(iter(audit.groups.attributes), None)
    values = [audit.groups.attributes[colour_by][group] if colour_by else "" for group in names]
    palette = {value: f"C{i}" for i, value in enumerate(dict.fromkeys(values))}
    figure = Figure(figsize=(max(6.0, 0.8 * len(names)), 4.5), layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(names))
    axes.bar(positions, audit.recalls, yerr=[audit.recalls - low, high - audit.recalls], capsize=4,
             color=[palette[value] for value in values])
    axes.set_xticks(positions, names, rotation=30, ha="right")
    axes.set_ylim(0, 1.05)
    axes.set_ylabel(f"{entity_type} recall of substituted names")
    gap = gap_and_ratio(audit.recalls)[0]
    gap_low, gap_high = percentile_interval(gap_and_ratio(audit.replicates)[0])
    axes.set_title(f"{len(audit.spans)} test sentences, {int(audit.spans.sum())} substituted names per group\n"
                   f"max-min gap {gap:.3f} (95% CI {gap_low:.3f} to {gap_high:.3f}); bars: 95% bootstrap CIs", fontsize=10)
    atomic_save_figure(figure, path)


class NameSubstitutionProbe(Probe):
    kind = "fairness"
    name = "names"

    def __init__(self, settings, groups: NameGroups | None, missing: str | None = None):
        """``groups`` is None when no names file was found; ``missing`` says where the probe looked."""
        self.settings, self.groups, self.missing = settings, groups, missing

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        if self.missing:
            log.warning("fairness probe skipped: %s", self.missing)
            return self.missing
        entity_type = self.settings.entity_type
        if f"B-{entity_type}" not in ctx.datamodule.labels:
            return (f"the label set has no {entity_type} type ({', '.join(ctx.datamodule.labels)}); "
                    "set probes.fairness.entity_type to the person type")
        if not any(entity_spans(s.tags, entity_type) for s in ctx.datamodule.splits["test"].sentences):
            return f"no test sentence has a {entity_type} entity"
        return None

    def measure(self, ctx: ProbeContext) -> dict[str, float]:
        tokenizer = ctx.tokenizer
        tag_fn = partial(predict_tags, ctx.model, tokenizer, labels=ctx.datamodule.labels,
                         batch_size=ctx.cfg.data.eval_batch_size,
                         # the same windows as training used
                         max_length=min(ctx.cfg.data.max_length or tokenizer.model_max_length, tokenizer.model_max_length))
        settings = self.settings
        audit = audit_names(ctx.datamodule.splits["test"].sentences, self.groups, tag_fn, sample_size=settings.sentences,
                            names_per_sentence=settings.names_per_sentence, resamples=settings.resamples,
                            seed=settings.seed, entity_type=settings.entity_type)
        atomic_write_text(ctx.run_dir / GROUP_TABLE, audit.table())
        write_recall_chart(ctx.run_dir / RECALL_CHART, audit, settings.entity_type)
        return audit.metrics(f"{self.kind}/{self.name}")


def check_settings(settings) -> None:
    problems = []
    if settings.sentences is not None and not settings.sentences >= 1:
        problems.append(f"probes.fairness.sentences={settings.sentences} must be >= 1 (or null for all)")
    for key in ("names_per_sentence", "resamples"):
        if not settings[key] >= 1:
            problems.append(f"probes.fairness.{key}={settings[key]} must be >= 1")
    if problems:
        raise ConfigError("; ".join(problems))


def build_fairness_probes(cfg) -> list[Probe]:
    """The name-substitution probe if ``probes.fairness.enabled``; reads and checks the names file now.

    A names file that is nowhere to be found skips the probe (like other probes' missing data);
    a malformed one is an error.
    """
    settings = cfg.probes.fairness
    if not settings.enabled:
        return []
    check_settings(settings)
    try:
        path = find_data("fairness names file", settings.groups_file, NAMES_ENV_VAR, NAMES_DEFAULT)
    except DataError as err:
        return [NameSubstitutionProbe(settings, None, missing=str(err))]
    attributes = list(settings.attributes) if settings.attributes else None
    return [NameSubstitutionProbe(settings, load_name_groups(path, attributes))]
