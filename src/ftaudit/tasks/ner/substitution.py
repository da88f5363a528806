"""Counterfactual name substitution: every person span of a sentence replaced by a name from one group."""

from __future__ import annotations

from dataclasses import dataclass

from ftaudit.probes.fairness import group_rng, seeded_sample
from ftaudit.probes.names import NameGroups
from ftaudit.tasks.ner.conll import Sentence

Span = tuple[int, int]  # [start, end) word indices


def entity_spans(tags: list[str], entity_type: str) -> list[Span]:
    """The [start, end) spans of ``entity_type``; an ``I-`` without a ``B-`` opens a span, as conlleval counts it."""
    begin, inside = f"B-{entity_type}", f"I-{entity_type}"
    spans, start = [], None
    for index, tag in enumerate([*tags, "O"]):
        continues = tag == inside and start is not None
        if start is not None and not continues:
            spans.append((start, index))
            start = None
        if start is None and tag in (begin, inside):
            start = index
    return spans


def substitute(
    sentence: Sentence, spans: list[Span], names: list[str], entity_type: str
) -> tuple[Sentence, list[Span]]:
    """Replace each span by its name (split on whitespace, tagged B- then I-); every other word and tag is kept.

    A name replacing an all-capitals span (a headline) is written in capitals too, so only the name changes.
    """
    tokens, tags, new_spans, cursor = [], [], [], 0
    for (start, end), name in zip(spans, names, strict=True):
        tokens += sentence.tokens[cursor:start]
        tags += sentence.tags[cursor:start]
        words = name.split()
        if " ".join(sentence.tokens[start:end]).isupper():
            words = [word.upper() for word in words]
        new_spans.append((len(tokens), len(tokens) + len(words)))
        tokens += words
        tags += [f"B-{entity_type}"] + [f"I-{entity_type}"] * (len(words) - 1)
        cursor = end
    tokens += sentence.tokens[cursor:]
    tags += sentence.tags[cursor:]
    return Sentence(tokens, tags), new_spans


@dataclass(frozen=True)
class Variant:
    group: str
    source: int  # index of the sampled sentence it was made from
    sentence: Sentence
    spans: list[Span]  # the substituted spans: the gold entities recall is measured on


def sample_sentences(sentences: list[Sentence], size: int | None, seed: int, entity_type: str) -> list[Sentence]:
    """Up to ``size`` sentences (all if None) that hold at least one ``entity_type`` span, in their original order."""
    return seeded_sample([s for s in sentences if entity_spans(s.tags, entity_type)], size, seed)


def make_variants(
    sentences: list[Sentence], groups: NameGroups, names_per_sentence: int, seed: int, entity_type: str
) -> list[Variant]:
    """``names_per_sentence`` variants of every sentence per group, each span given its own seeded draw.

    Each group draws from its own generator (``group_rng``), so adding or reordering groups in the file leaves the
    other groups' variants unchanged.
    """
    variants = []
    for group, names in groups.names.items():
        rng = group_rng(seed, group)
        for source, sentence in enumerate(sentences):
            spans = entity_spans(sentence.tags, entity_type)
            for _ in range(names_per_sentence):
                drawn = [names[i] for i in rng.integers(len(names), size=len(spans))]
                variant, new_spans = substitute(sentence, spans, drawn, entity_type)
                variants.append(Variant(group, source, variant, new_spans))
    return variants
