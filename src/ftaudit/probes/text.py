"""Plain-text inputs for the degradation probes: WikiText-2 sentences and length-sorted tokenised batches."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ftaudit.errors import DataError
from ftaudit.hub import HubSplit

# WikiText's raw files escape in-number punctuation as " @-@ ", " @,@ ", " @.@ ".
WIKITEXT_ESCAPE = re.compile(r" @(.)@ ")
SENTENCE_END = re.compile(r"(?<= [.!?]) (?=[A-Z\"'(])")


def wikitext_lines(source: Path | HubSplit) -> Iterator[str]:
    """The lines of a WikiText raw file, or the ``text`` rows of a hub copy (one row per line of that file)."""
    if isinstance(source, HubSplit):
        yield from source.column("text")
        return
    with open(source, encoding="utf-8") as stream:
        yield from stream


def wikitext_sentences(source: Path | HubSplit, count: int, seed: int, min_words: int = 8) -> list[str]:
    """A fixed seeded sample of ``count`` body-text sentences (headings and blank lines skipped), in file order."""
    sentences = []
    for line in wikitext_lines(source):
        line = line.strip()
        if not line or line.startswith("="):
            continue
        for sentence in SENTENCE_END.split(WIKITEXT_ESCAPE.sub(r"\1", line)):
            if len(sentence.split()) >= min_words:
                sentences.append(sentence)
    if len(sentences) < count:
        raise DataError(
            f"{source} has {len(sentences)} sentences of >= {min_words} words; the probe needs {count} "
            "(lower the probe's `sentences` setting or point it at WikiText-2)"
        )
    chosen = sorted(random.Random(seed).sample(range(len(sentences)), count))
    return [sentences[i] for i in chosen]


def text_batches(
    tokenizer, texts: list[str], batch_size: int, max_length: int, progress_bar: Callable[[Iterable], Iterable] = iter
) -> Iterator[tuple[list[int], dict]]:
    """``(indices, padded batch)`` over ``texts``, longest first so each batch pads little, the batches behind
    ``progress_bar`` (e.g. ``ProbeContext.progress(...)``; ``iter``: none)."""
    encoded = tokenizer(
        texts, truncation=True, max_length=min(max_length, tokenizer.model_max_length), return_token_type_ids=False
    )
    order = sorted(range(len(texts)), key=lambda i: -len(encoded["input_ids"][i]))
    for start in progress_bar(range(0, len(order), batch_size)):
        indices = order[start : start + batch_size]
        batch = tokenizer.pad(
            {key: [encoded[key][i] for i in indices] for key in ("input_ids", "attention_mask")}, return_tensors="pt"
        )
        yield indices, dict(batch)
