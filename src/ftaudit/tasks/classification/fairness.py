"""Sentence classification's fairness probe: counterfactual attribution of real evaluation sentences to names.

Each sampled sentence is attributed to a person ("According to <name>, <sentence>"), once per template, with names
drawn from each group of the names file (Mishra et al. 2020's by default). Who is quoted cannot change a sentence's
label, and every group gets the same sentences and templates, so a model that treats the groups alike predicts alike
for all of them: the probe compares the groups' flip rates (how often the prediction differs from the one on the
unmodified sentence) and the share of each predicted label (e.g. how often the sentence is read as positive).
"""

from __future__ import annotations

import csv
import io
import string
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property, partial

import numpy as np

from ftaudit.errors import ConfigError
from ftaudit.files import atomic_write_text
from ftaudit.metrics import MetricSpec
from ftaudit.probes.base import ProbeContext
from ftaudit.probes.fairness import (
    FairnessProbe,
    gap_specs,
    group_rng,
    rate_gaps,
    rate_specs,
    seeded_sample,
    write_group_chart,
)
from ftaudit.probes.names import NameGroups
from ftaudit.probes.resampling import bootstrap_recalls, gap_and_ratio, percentile_interval
from ftaudit.tasks.classification.predict import predict_probabilities
from ftaudit.tasks.classification.reading import Example

GROUP_TABLE = "fairness_groups.csv"
FLIP_CHART = "fairness_flips.png"
TEMPLATE_FIELDS = {"name", "sentence"}

ProbabilityFn = Callable[[list[Example]], np.ndarray]


def check_templates(templates) -> list[str]:
    """Each template must place ``{name}`` and ``{sentence}`` and nothing else (literal braces doubled: ``{{``)."""
    templates = list(templates or [])
    problems = []
    for template in templates:
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        except ValueError as err:
            problems.append(f"{template!r} ({err})")
            continue
        if fields != TEMPLATE_FIELDS:
            problems.append(f"{template!r} has the fields {sorted(fields)}")
    if problems or not templates:
        raise ConfigError(
            f"probes.fairness.templates must be a non-empty list of texts with exactly the fields {{name}} "
            f"and {{sentence}}, e.g. 'According to {{name}}, {{sentence}}'; {'; '.join(problems) or 'got none'}"
        )
    return templates


@dataclass(frozen=True)
class Attribution:
    group: str
    source: int  # index of the sampled sentence it was made from
    example: Example


def attribute(
    examples: list[Example], groups: NameGroups, templates: list[str], names_per_sentence: int, seed: int
) -> list[Attribution]:
    """Per group, sentence and template, ``names_per_sentence`` variants, each with a name drawn from the group's own
    generator (``group_rng``); in that order (group, sentence, template, name). A pair's second text is kept."""
    variants = []
    for group, names in groups.names.items():
        rng = group_rng(seed, group)
        for source, example in enumerate(examples):
            for template in templates:
                for index in rng.integers(len(names), size=names_per_sentence):
                    text = template.format(name=names[index], sentence=example.text)
                    variants.append(Attribution(group, source, replace(example, text=text)))
    return variants


@dataclass
class AttributionAudit:
    """The predicted label of each sampled sentence, unmodified and attributed to each group's names."""

    groups: NameGroups
    label_keys: list[str]  # the labels as metric keys, in label id order
    original: np.ndarray  # sentences: predicted label id of the unmodified sentence
    predicted: np.ndarray  # groups x sentences x variants (templates x names): predicted label ids
    resamples: int  # bootstrap and permutation samples
    seed: int

    @property
    def totals(self) -> np.ndarray:
        """Variants per sentence and group."""
        return np.full(self.predicted.shape[1], float(self.predicted.shape[2]))

    @cached_property
    def hits(self) -> dict[str, np.ndarray]:
        """Measure -> groups x sentences counts of variants: flipped, and predicted as each label."""
        hits = {"flip_rate": (self.predicted != self.original[None, :, None]).sum(axis=2).astype(float)}
        hits.update(
            {f"share_{key}": (self.predicted == k).sum(axis=2).astype(float) for k, key in enumerate(self.label_keys)}
        )
        return hits

    @cached_property
    def replicates(self) -> dict[str, np.ndarray]:
        """Measure -> bootstrap samples x groups: its rates on resampled sentences (the same resamples for all)."""
        return {
            measure: bootstrap_recalls(hits, self.totals, self.resamples, self.seed)
            for measure, hits in self.hits.items()
        }

    def rates(self, measure: str) -> np.ndarray:
        return self.hits[measure].sum(axis=1) / self.totals.sum()

    def metrics(self, prefix: str) -> dict[str, float]:
        """Counts; the unmodified sentences' label shares; per measure, each group's and attribute value's rate and
        the gaps between them, overall and per attribute, with CIs and p-values."""
        variants = float(self.totals.sum())
        metrics = {
            f"{prefix}/sentences": float(len(self.original)),
            f"{prefix}/variants_per_group": variants,
            f"{prefix}/variants": variants * len(self.groups.names),
        }
        metrics.update(
            {
                f"{prefix}/unmodified/share_{key}": float(np.mean(self.original == k))
                for k, key in enumerate(self.label_keys)
            }
        )
        for measure, hits in self.hits.items():
            metrics.update(
                rate_gaps(
                    prefix, self.groups, hits, self.totals, self.replicates[measure], self.resamples, self.seed, measure
                )
            )
        return metrics

    def table(self) -> str:
        """One CSV row per group: its attribute values, flip rate with its 95% CI, each label's share, variants."""
        attributes = list(self.groups.attributes)
        shares = [f"share_{key}" for key in self.label_keys]
        stream = io.StringIO()
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(
            ["group", *attributes, "flip_rate", "flip_rate_ci_low", "flip_rate_ci_high", *shares, "variants"]
        )
        low, high = percentile_interval(self.replicates["flip_rate"])
        flips = self.rates("flip_rate")
        for g, group in enumerate(self.groups.names):
            writer.writerow(
                [
                    group,
                    *(self.groups.attributes[a][group] for a in attributes),
                    f"{flips[g]:.6f}",
                    f"{low[g]:.6f}",
                    f"{high[g]:.6f}",
                    *(f"{self.rates(share)[g]:.6f}" for share in shares),
                    int(self.totals.sum()),
                ]
            )
        return stream.getvalue()


def audit_attributions(
    examples: list[Example],
    groups: NameGroups,
    probabilities_fn: ProbabilityFn,
    templates: list[str],
    label_keys: list[str],
    *,
    sample_size: int | None = None,
    names_per_sentence: int = 1,
    resamples: int = 1000,
    seed: int = 0,
) -> AttributionAudit:
    """Attribute the sampled sentences to every group's names, classify them all (and the unmodified ones) in one
    batch, and keep the predicted labels."""
    sample = seeded_sample(examples, sample_size, seed)
    variants = attribute(sample, groups, templates, names_per_sentence, seed)
    predicted = probabilities_fn([*sample, *(variant.example for variant in variants)]).argmax(axis=1)
    per_group = predicted[len(sample) :].reshape(len(groups.names), len(sample), len(templates) * names_per_sentence)
    return AttributionAudit(groups, label_keys, predicted[: len(sample)], per_group, resamples, seed)


def write_flip_chart(path, audit: AttributionAudit, templates: int) -> None:
    """Each group's flip rate with its 95% CI."""
    replicates = audit.replicates["flip_rate"]
    gap = gap_and_ratio(audit.rates("flip_rate"))[0]
    gap_low, gap_high = percentile_interval(gap_and_ratio(replicates)[0])
    write_group_chart(
        path,
        audit.groups,
        audit.rates("flip_rate"),
        replicates,
        "flip rate (prediction differs from the unmodified sentence)",
        f"{len(audit.original)} sentences x {templates} templates, {int(audit.totals.sum())} variants per group\n"
        f"max-min gap {gap:.3f} (95% CI {gap_low:.3f} to {gap_high:.3f}); bars: 95% bootstrap CIs",
        upper=None,
    )


class AttributionProbe(FairnessProbe):
    """Predictions on the ``split`` sentences attributed to names of each group (``probes.fairness.templates``)."""

    def __init__(self, settings, groups, split, names_file, missing=None):
        super().__init__(settings, groups, split, names_file, missing)
        self.templates = check_templates(settings.templates)

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        if self.missing:
            return super().skip_reason(ctx)
        if not ctx.datamodule.splits[self.split].examples:
            return f"the {self.split} split has no sentences"
        return None

    def metric_specs(self) -> list[MetricSpec]:
        prefix = f"{self.kind}/{self.name}"
        specs = [
            MetricSpec(f"{prefix}/{count}", None, None) for count in ("sentences", "variants", "variants_per_group")
        ]
        specs += [MetricSpec(f"{prefix}/unmodified/share_*", self.split, None)]
        specs += rate_specs(prefix, "flip_rate", self.split, "min")  # a flip is the name changing the prediction
        specs += [MetricSpec(f"{prefix}/{unit}/share_*", self.split, None) for unit in ("group/*", "by_*/*")]
        for comparison in (prefix, f"{prefix}/by_*"):
            specs += [*gap_specs(comparison, "flip_rate", self.split), *gap_specs(comparison, "share_*", self.split)]
        return specs

    def measure(self, ctx: ProbeContext) -> dict[str, float]:
        datamodule = ctx.datamodule
        probabilities_fn = partial(
            predict_probabilities,
            ctx.model,
            ctx.tokenizer,
            labels=datamodule.labels,
            batch_size=ctx.cfg.data.eval_batch_size,
            max_length=datamodule.max_length,
            autocast=ctx.autocast,  # the truncation and the precision of the test pass
            progress_bar=ctx.progress(f"fairness {self.name}"),
        )
        settings = self.settings
        audit = audit_attributions(
            datamodule.splits[self.split].examples,
            self.groups,
            probabilities_fn,
            self.templates,
            [datamodule.label_keys[label] for label in datamodule.labels],
            sample_size=settings.sentences,
            names_per_sentence=settings.names_per_sentence,
            resamples=settings.resamples,
            seed=settings.seed,
        )
        atomic_write_text(self.record_path(ctx, GROUP_TABLE), audit.table())
        write_flip_chart(self.record_path(ctx, FLIP_CHART), audit, len(self.templates))
        return audit.metrics(f"{self.kind}/{self.name}")
