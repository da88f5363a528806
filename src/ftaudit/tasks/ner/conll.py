"""Reading CoNLL-style column files and normalising their tag scheme to IOB2."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from ftaudit.errors import ConfigError, DataError
from ftaudit.hub import HubSplit, HubUnavailable, hub_splits
from ftaudit.paths import data_location

log = logging.getLogger(__name__)

SCHEMES = ("auto", "iob1", "iob2")


@dataclass(frozen=True)
class Sentence:
    tokens: list[str]
    tags: list[str]


ASCII_BLANKS = re.compile(r"[ \t]+")  # columns split on ASCII blanks only: a no-break space can be part of a token


def read_conll(path: Path) -> tuple[list[Sentence], list[int]]:
    """Sentences of a column file (token first, tag last) and the line number each starts on.

    Blank lines separate sentences; ``-DOCSTART-`` lines are skipped. Lines end at ``\\n`` (``\\r\\n`` too) only:
    Unicode line separators such as U+2028 or U+0085 inside a token do not end a line, and a UTF-8 byte-order
    mark is not part of the first token.
    """
    sentences, starts, tokens, tags, start = [], [], [], [], 0
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").split("\n")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); convert the file to UTF-8"
        ) from None
    for number, line in enumerate(lines + [""], start=1):
        line = line.rstrip("\r")
        columns = [column for column in ASCII_BLANKS.split(line) if column]
        if columns and columns[0] == "-DOCSTART-":
            continue
        if not columns:
            if tokens:
                sentences.append(Sentence(tokens, tags))
                starts.append(start)
                tokens, tags = [], []
            continue
        if len(columns) < 2:
            raise DataError(f"{path}:{number}: expected 'TOKEN ... TAG' (at least 2 columns), got {line.strip()!r}")
        if not tokens:
            start = number
        tokens.append(columns[0])
        tags.append(columns[-1])
    return sentences, starts


def check_tags(sentences: list[Sentence], starts: list[int], path: Path) -> None:
    """Every tag is ``O`` or ``B-``/``I-`` followed by a type."""
    for sentence, start in zip(sentences, starts):
        for offset, tag in enumerate(sentence.tags):
            if tag != "O" and (tag[:2] not in ("B-", "I-") or len(tag) < 3):
                raise DataError(
                    f"{path}:{start + offset}: unknown tag {tag!r}; tags must be O, B-TYPE or I-TYPE (IOB1 or IOB2)"
                )


def starts_entity_with_inside(tags: list[str]) -> bool:
    """True when an ``I-X`` opens an entity: legal in IOB1, illegal in IOB2."""
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return True
        previous = tag
    return False


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """An ``I-X`` that follows ``O`` or another type begins an entity, so it becomes ``B-X``."""
    converted, previous = [], "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        converted.append(tag)
        previous = tag
    return converted


def to_iob2(sentences: list[Sentence], scheme: str, path: Path) -> tuple[list[Sentence], str]:
    """Return the sentences in IOB2 and the scheme the file was in."""
    if scheme not in SCHEMES:
        raise ConfigError(f"data.tag_scheme={scheme!r} is not one of {', '.join(SCHEMES)}")
    inside_first = [s for s in sentences if starts_entity_with_inside(s.tags)]
    if scheme == "iob2" and inside_first:
        raise DataError(
            f"{path}: data.tag_scheme=iob2 but {len(inside_first)} sentences open an entity with I- "
            f"(e.g. {' '.join(inside_first[0].tags[:8])}); set data.tag_scheme=iob1 or auto"
        )
    if scheme == "iob1" or (scheme == "auto" and inside_first):
        return [Sentence(s.tokens, iob1_to_iob2(s.tags)) for s in sentences], "iob1"
    return sentences, "iob2"


def load_split(path: Path, scheme: str) -> tuple[list[Sentence], str]:
    if not path.is_file():
        raise DataError(f"{path}: split file not found; check data.dir and data.files")
    sentences, starts = read_conll(path)
    if not sentences:
        raise DataError(f"{path}: no sentences (empty split); check data.files points at a CoNLL column file")
    check_tags(sentences, starts, path)
    return to_iob2(sentences, scheme, path)


# CoNLL-2003's NER tags in the id order of its release on the hub: a copy whose names differ, in set or order,
# cannot be trusted to map its ids to the right tags (a wrong mapping silently corrupts every score).
CONLL2003_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def hub_sentences(split: HubSplit, scheme: str) -> list[Sentence]:
    """A hub split's ``tokens`` and ``ner_tags`` (ids named by the split's ``ClassLabel``) as IOB2 sentences;
    ``-DOCSTART-`` rows are skipped, as in the column files."""
    features = split.rows.features
    missing = [name for name in ("tokens", "ner_tags") if name not in features]
    if missing:
        raise DataError(
            f"{split}: no field {', '.join(map(repr, missing))} (it has {', '.join(features)}); "
            "point data.hub_id at a CoNLL-2003 copy with tokens and ner_tags, or set data.dir"
        )
    names = getattr(getattr(features["ner_tags"], "feature", None), "names", None)
    if names != CONLL2003_TAGS:
        raise DataError(
            f"{split}: ner_tags names {names} are not CoNLL-2003's {CONLL2003_TAGS} in that order, so its "
            "ids cannot be read as tags; point data.hub_id at another copy, or set data.dir"
        )
    sentences = [
        Sentence(list(tokens), [names[i] for i in tags])
        for tokens, tags in zip(split.column("tokens"), split.column("ner_tags"))
        if tokens and list(tokens) != ["-DOCSTART-"]
    ]
    return to_iob2(sentences, scheme, split)[0]


def load_conll_splits(cfg) -> tuple[dict[str, list[Sentence]], list[Path | HubSplit]]:
    """The train/validation/test sentences in IOB2, and the files (or hub splits) they came from.

    ``data.dir`` (else ``$<env_var>``), when given, is the only place read; with neither, the repo's data folder,
    then the hub (``data.hub_id``).
    """
    directory, given_by = data_location(cfg.dir, cfg.env_var, cfg.default_dir, "data.dir")
    if directory.is_dir():
        splits, schemes, files = {}, set(), []
        for split, filename in cfg.files.items():
            files.append((directory / filename).resolve())
            splits[split], scheme = load_split(files[-1], cfg.tag_scheme)
            schemes.add(scheme)
        log.info("data: %s (%s)", directory, "converted IOB1 -> IOB2" if "iob1" in schemes else "IOB2")
        return splits, files
    if given_by:
        raise DataError(f"{given_by}={directory} is a file; give the folder holding {', '.join(cfg.files.values())}")
    hub_error = "no hub id configured"
    if cfg.hub_id:
        try:
            found = hub_splits(cfg.hub_id, None, list(cfg.files))
            return {name: hub_sentences(split, cfg.tag_scheme) for name, split in found.items()}, list(found.values())
        except HubUnavailable as err:
            hub_error = str(err)
    raise DataError(
        f"CoNLL data not found in {directory} nor on the hub ({cfg.hub_id}: {hub_error}); "
        f"set data.dir=PATH or ${cfg.env_var} to a folder holding {', '.join(cfg.files.values())}"
    )
