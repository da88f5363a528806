"""Reading labelled sentences: Financial PhraseBank's ``sentence@label`` lines, and CSV, TSV or JSONL tables."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ftaudit.errors import ConfigError, DataError

PHRASEBANK_LABELS = ("negative", "neutral", "positive")
TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl"}
KEY_UNSAFE = re.compile(r"[^\w.-]")  # a label becomes part of metric keys (task/test_f1_<label>): no '/' or blanks


@dataclass(frozen=True)
class Example:
    id: str  # unique within its split: an id column's value, else the line its record starts on
    text: str
    label: str
    text_pair: str | None = None  # the second sentence of a pair, fed to the tokenizer as a pair


def decode_text(path: Path, encoding: str | None) -> tuple[str, str]:
    """The file's text and the encoding read: ``encoding``, or with None UTF-8 when the bytes are valid UTF-8, else
    ISO-8859-1 (PhraseBank's original release is Latin-1; a UTF-8 re-encoding must not turn into mojibake)."""
    data = path.read_bytes()
    for candidate in [encoding] if encoding else ["utf-8", "iso-8859-1"]:
        try:
            return data.decode(candidate), candidate
        except UnicodeDecodeError as err:
            if encoding:
                raise DataError(
                    f"{path}: not {encoding} text ({err.reason} at byte {err.start}); set data.encoding"
                ) from None
        except LookupError:
            raise ConfigError(
                f"data.encoding={encoding!r} is not an encoding Python knows (e.g. utf-8, iso-8859-1)"
            ) from None
    raise AssertionError("ISO-8859-1 decodes any bytes")


def read_phrasebank(path: Path, encoding: str | None = None) -> tuple[list[Example], str]:
    """Financial PhraseBank: one ``sentence@label`` per line, split on the last ``@`` (sentences hold ``@`` too);
    the id of a sentence is its line number. Returns the examples and the encoding read."""
    text, used = decode_text(path, encoding)
    examples = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        sentence, at, label = line.rpartition("@")
        label = label.strip()
        if not at or not sentence.strip():
            raise DataError(f"{path}:{number}: expected 'sentence@label', got {line[:80]!r}")
        if label not in PHRASEBANK_LABELS:
            raise DataError(f"{path}:{number}: label {label!r} is not one of {', '.join(PHRASEBANK_LABELS)}")
        examples.append(Example(str(number), sentence.strip(), label))
    if not examples:
        raise DataError(f"{path}: no sentences; expected 'sentence@label' lines (Financial PhraseBank)")
    return examples, used


@dataclass(frozen=True)
class Columns:
    """Which field of a record holds what (``data.text_column`` etc.)."""

    text: str
    label: str
    text_pair: str | None = None
    id: str | None = None

    @property
    def needed(self) -> list[str]:
        return [name for name in (self.text, self.text_pair, self.label, self.id) if name]


def table_format(path: Path, file_format: str) -> str:
    if file_format != "auto":
        if file_format not in TABLE_FORMATS.values():
            raise ConfigError(f"data.file_format={file_format!r} must be auto, {', '.join(TABLE_FORMATS.values())}")
        return file_format
    if path.suffix.lower() not in TABLE_FORMATS:
        raise ConfigError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; name it .csv, .tsv or "
            f".jsonl, or set data.file_format=csv|tsv|jsonl"
        )
    return TABLE_FORMATS[path.suffix.lower()]


def delimited_records(path: Path, delimiter: str, columns: Columns) -> Iterator[tuple[int, dict]]:
    """(line the record starts on, field -> value) per record of a CSV (RFC 4180 quoting: quoted fields may hold
    commas, quotes and newlines) or TSV (no quoting, as GLUE's files: a quote is an ordinary character)."""
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:  # a BOM is not part of the first column's name
            reader = csv.reader(stream, delimiter=delimiter, quoting=quoting, strict=True)
            header = next(reader, None)
            if not header:
                raise DataError(
                    f"{path}: empty file; expected a header row naming the columns ({', '.join(columns.needed)})"
                )
            missing = [name for name in columns.needed if name not in header]
            if missing:
                raise DataError(
                    f"{path}: no column {', '.join(map(repr, missing))} (the header has {', '.join(map(repr, header))}); "
                    "set data.text_column, data.label_column (data.text_pair_column, data.id_column)"
                )
            start = reader.line_num + 1
            for row in reader:
                if row and len(row) != len(header):
                    raise DataError(
                        f"{path}:{start}: {len(row)} fields where the header has {len(header)}; "
                        "quote fields that hold the delimiter"
                    )
                if row:
                    yield start, dict(zip(header, row))
                start = reader.line_num + 1
    except csv.Error as err:
        raise DataError(f"{path}:{reader.line_num}: malformed {'CSV' if delimiter == ',' else 'TSV'} ({err})") from None
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); convert the file to UTF-8"
        ) from None


def json_records(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) per non-blank line of a JSON Lines file."""
    try:
        lines = path.read_text(encoding="utf-8-sig").split("\n")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); convert the file to UTF-8"
        ) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{number}: not valid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: expected one JSON object per line, got {type(record).__name__}")
        yield number, record


def field_text(record: dict, name: str, path: Path, number: int, what: str) -> str:
    """A field as text; missing, null or blank is an error naming the file and line."""
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        if value is None:
            raise DataError(f"{path}:{number}: missing {what} (field {name!r}); every record needs one")
        raise DataError(f"{path}:{number}: {what} (field {name!r}) is {type(value).__name__} {value!r}; expected text")
    text = str(value)
    if not text.strip():
        raise DataError(f"{path}:{number}: empty {what} (field {name!r}); every record needs one")
    return text


def read_table(path: Path, columns: Columns, file_format: str = "auto") -> list[Example]:
    """The labelled examples of a CSV, TSV or JSONL file; ids must be unique."""
    kind = table_format(path, file_format)
    records = (
        json_records(path) if kind == "jsonl" else delimited_records(path, "," if kind == "csv" else "\t", columns)
    )
    examples, seen = [], {}
    for number, record in records:
        example = Example(
            id=field_text(record, columns.id, path, number, "id").strip() if columns.id else str(number),
            text=field_text(record, columns.text, path, number, "text"),
            label=field_text(record, columns.label, path, number, "label").strip(),
            text_pair=field_text(record, columns.text_pair, path, number, "second text") if columns.text_pair else None,
        )
        if example.id in seen:
            raise DataError(
                f"{path}:{number}: id {example.id!r} again (first on line {seen[example.id]}); ids must be unique"
            )
        seen[example.id] = number
        examples.append(example)
    if not examples:
        raise DataError(f"{path}: no records; expected a header row and one row per example")
    return examples


def label_order(labels) -> list[str]:
    """The label set, sorted (numerically when every label is an integer), so label ids never depend on file order."""
    unique = set(labels)
    if all(re.fullmatch(r"-?\d+", label) for label in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def label_keys(labels: list[str]) -> dict[str, str]:
    """Each label as it appears in metric keys (``f1_<key>``): characters other than letters, digits, ``_``, ``.`` and
    ``-`` become ``_``; two labels that would share a key are an error."""
    keys = {label: KEY_UNSAFE.sub("_", label) for label in labels}
    clashing = [label for label in labels if list(keys.values()).count(keys[label]) > 1]
    if clashing:
        raise DataError(f"labels {clashing} would all be recorded as f1_{keys[clashing[0]]}; rename them in the data")
    return keys
