"""Counterfactual name substitution: every person span of a sentence replaced by a name from one group."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ftaudit.data.conll import Sentence
from ftaudit.errors import DataError

# A names file may declare what its group keys encode in a comment, e.g. "# Group keys: <ethnicity>_<gender>."
KEY_PATTERN_LINE = re.compile(r"^#\s*group keys:\s*(<\w+>(?:_<\w+>)*)", re.IGNORECASE | re.MULTILINE)

Span = tuple[int, int]  # [start, end) word indices


@dataclass(frozen=True)
class NameGroups:
    """Groups of names, in file order, and what each group key says about its group (e.g. gender=female)."""

    names: dict[str, list[str]]
    attributes: dict[str, dict[str, str]]  # attribute -> {group: value}; empty when the keys encode none

    def members(self, attribute: str) -> dict[str, list[str]]:
        """Each value of ``attribute`` (in first-seen order) and the groups that have it."""
        members: dict[str, list[str]] = {}
        for group, value in self.attributes[attribute].items():
            members.setdefault(value, []).append(group)
        return members


def load_name_groups(path: Path, attribute_names: list[str] | None = None) -> NameGroups:
    """Read a YAML ``group: [names...]`` file; attributes come from ``attribute_names`` or the file's key pattern."""
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise DataError(f"{path}: not valid YAML ({str(err).splitlines()[0]}); expected 'group: [name, ...]' lines") from None
    if not isinstance(data, dict) or len(data) < 2:
        raise DataError(f"{path}: expected a mapping of at least 2 groups, 'group: [name, ...]' per line")
    names = {}
    for group, group_names in data.items():
        if not isinstance(group_names, list) or not group_names:
            raise DataError(f"{path}: group {group!r} must be a non-empty list of names")
        bad = [name for name in group_names if not isinstance(name, str) or not name.split()]
        if bad:
            # YAML reads unquoted yes/no/on/off/null as booleans or null, and digits as numbers
            raise DataError(f"{path}: group {group!r} has entries that are not names: {bad!r}; quote them")
        names[str(group)] = group_names
    if not attribute_names:
        declared = KEY_PATTERN_LINE.search(text)
        attribute_names = re.findall(r"<(\w+)>", declared.group(1)) if declared else []
    return NameGroups(names, split_group_keys(list(names), list(attribute_names), path))


def split_group_keys(groups: list[str], attribute_names: list[str], path: Path) -> dict[str, dict[str, str]]:
    """``black_female`` with attributes ``[ethnicity, gender]`` -> ethnicity=black, gender=female."""
    if not attribute_names:
        return {}
    pattern = "_".join(f"<{name}>" for name in attribute_names)
    attributes: dict[str, dict[str, str]] = {name: {} for name in attribute_names}
    for group in groups:
        values = group.split("_")
        if len(values) != len(attribute_names):
            raise DataError(f"{path}: group key {group!r} does not match the key pattern {pattern}; rename the group "
                            "or set probes.fairness.attributes to the names of its '_'-separated parts")
        for name, value in zip(attribute_names, values):
            attributes[name][group] = value
    return attributes


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


def substitute(sentence: Sentence, spans: list[Span], names: list[str], entity_type: str) -> tuple[Sentence, list[Span]]:
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
    candidates = [s for s in sentences if entity_spans(s.tags, entity_type)]
    if size is None or size >= len(candidates):
        return candidates
    chosen = np.random.default_rng(seed).choice(len(candidates), size=size, replace=False)
    return [candidates[i] for i in sorted(chosen)]


def make_variants(sentences: list[Sentence], groups: NameGroups, names_per_sentence: int, seed: int,
                  entity_type: str) -> list[Variant]:
    """``names_per_sentence`` variants of every sentence per group, each span given its own seeded draw.

    Each group draws from its own generator (seeded by the seed and the group's name), so adding or
    reordering groups in the file leaves the other groups' variants unchanged.
    """
    variants = []
    for group, names in groups.names.items():
        rng = np.random.default_rng([seed, zlib.crc32(group.encode("utf-8"))])
        for source, sentence in enumerate(sentences):
            spans = entity_spans(sentence.tags, entity_type)
            for _ in range(names_per_sentence):
                drawn = [names[i] for i in rng.integers(len(names), size=len(spans))]
                variant, new_spans = substitute(sentence, spans, drawn, entity_type)
                variants.append(Variant(group, source, variant, new_spans))
    return variants
