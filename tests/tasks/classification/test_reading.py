"""Reading PhraseBank lines and CSV/TSV/JSONL tables: quoting, encodings, and one clear error per bad record."""

from __future__ import annotations

import pytest

from ftaudit.errors import ConfigError, DataError
from ftaudit.tasks.classification.reading import Columns, Example, label_keys, label_order, read_phrasebank, read_table
from tests.conftest import FIXTURE_PHRASEBANK, FIXTURE_TEXT_CSV

COLUMNS = Columns("text", "label")


def test_phrasebank_splits_on_the_last_at_and_reads_latin1_with_crlf(tmp_path):
    path = tmp_path / "Sentences_50Agree.txt"
    path.write_bytes(
        "Mail info@nokia.fi , said Wärtsilä .@neutral\r\n\r\nSales rose 5 % .@positive\r\n".encode("iso-8859-1")
    )
    examples, encoding = read_phrasebank(path)
    assert encoding == "iso-8859-1"
    assert examples == [
        Example("1", "Mail info@nokia.fi , said Wärtsilä .", "neutral"),
        Example("3", "Sales rose 5 % .", "positive"),
    ]  # ids are line numbers; no '\r' kept


def test_phrasebank_reencoded_as_utf8_is_read_as_utf8_not_mojibake(tmp_path):
    path = tmp_path / "Sentences_50Agree.txt"
    path.write_text("Wärtsilä grew .@positive\n", encoding="utf-8")
    examples, encoding = read_phrasebank(path)
    assert encoding == "utf-8" and examples[0].text == "Wärtsilä grew ."
    with pytest.raises(DataError, match="not ascii text"):
        read_phrasebank(path, "ascii")  # an encoding the user gave is taken at its word


@pytest.mark.parametrize(
    "line, message",
    [
        ("no label here", "expected 'sentence@label'"),
        ("@positive", "expected 'sentence@label'"),
        ("Sales rose .@upbeat", "label 'upbeat' is not one of negative, neutral, positive"),
    ],
)
def test_a_bad_phrasebank_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "Sentences_50Agree.txt"
    path.write_text(f"Fine .@neutral\r\n{line}\r\n", encoding="iso-8859-1")
    with pytest.raises(DataError, match=f"{path}:2: {message}"):
        read_phrasebank(path)


def test_shipped_phrasebank_fixture():
    examples, encoding = read_phrasebank(FIXTURE_PHRASEBANK / "Sentences_50Agree.txt")
    assert len(examples) == 90 and encoding == "iso-8859-1"
    assert {label: sum(e.label == label for e in examples) for label in ("negative", "neutral", "positive")} == {
        "negative": 30,
        "neutral": 30,
        "positive": 30,
    }
    assert any(e.text.startswith("Contact info@elisa.fi") for e in examples)  # an '@' in the sentence
    assert any("Wärtsilä" in e.text for e in examples)  # Latin-1 bytes read as what they are


def test_csv_with_bom_quotes_commas_and_newlines():
    examples = read_table(FIXTURE_TEXT_CSV / "tricky.csv", COLUMNS)
    assert len(examples) == 30
    assert examples[0].text.startswith('He\nsaid "')  # a quoted field holding a newline and doubled quotes
    assert any(", " in e.text for e in examples) and all(
        e.label in ("negative", "neutral", "positive") for e in examples
    )
    assert examples[1].id == "4"  # the line its record starts on: record 1 spans lines 2-3


def test_tsv_takes_quotes_literally_and_jsonl_reads_numbers_as_labels(tmp_path):
    tsv = tmp_path / "data.tsv"
    tsv.write_text('text\tlabel\n"odd quote\t1\nplain\t0\n', encoding="utf-8")
    assert [(e.text, e.label) for e in read_table(tsv, COLUMNS)] == [('"odd quote', "1"), ("plain", "0")]
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text(
        '{"text": "a", "label": 2, "other": "b", "key": "x"}\n\n{"text": "c", "label": "10", "other": "d", "key": "y"}\n'
    )
    examples = read_table(jsonl, Columns("text", "label", text_pair="other", id="key"))
    assert examples == [Example("x", "a", "2", "b"), Example("y", "c", "10", "d")]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("a.csv", "text,label\nfine,pos\nempty label,\n", "a.csv:3: empty label \\(field 'label'\\)"),
        ("a.csv", 'text,label\nfine,pos\n"two\nlines",  \n', "a.csv:3: empty label"),
        ("a.csv", "text,label\nfine,pos\nno label\n", "a.csv:3: 1 fields where the header has 2"),
        ("a.csv", "text,label\nfine,pos\nun, quoted, commas,neg\n", "a.csv:3: 4 fields where the header has 2"),
        ("a.csv", 'text,label\nfine,pos\n"never closed,neg\n', "a.csv:3: malformed CSV"),
        ("a.csv", "sentence,label\nfine,pos\n", "no column 'text' \\(the header has 'sentence', 'label'\\)"),
        ("a.csv", "", "empty file"),
        ("a.csv", "text,label\n", "no records"),
        ("a.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n', "a.jsonl:2: missing label"),
        ("a.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": null}\n', "a.jsonl:2: missing label"),
        ("a.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": true}\n', "a.jsonl:2: label .* is bool"),
        ("a.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": "x"\n', "a.jsonl:2: not valid JSON"),
        ("a.jsonl", '["a", "x"]\n', "a.jsonl:1: expected one JSON object per line"),
    ],
)
def test_bad_records_are_one_error_naming_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_table(path, COLUMNS)


def test_duplicate_ids_unknown_formats_and_non_utf8(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("id,text,label\n7,a,x\n7,b,y\n")
    with pytest.raises(DataError, match="a.csv:3: id '7' again \\(first on line 2\\)"):
        read_table(path, Columns("text", "label", id="id"))
    with pytest.raises(ConfigError, match="cannot tell the format from the extension '.txt'"):
        read_table(tmp_path / "a.txt", COLUMNS)
    assert read_table(path, COLUMNS, "csv")[0].id == "2"
    path.write_bytes("text,label\nWärtsilä,x\n".encode("iso-8859-1"))
    with pytest.raises(DataError, match="not UTF-8 text"):
        read_table(path, COLUMNS)


def test_labels_sorted_numerically_when_integers_and_made_safe_for_metric_keys():
    assert label_order(["b", "a", "b"]) == ["a", "b"]
    assert label_order(["10", "2", "-1"]) == ["-1", "2", "10"]
    assert label_keys(["very good", "a/b", "ok-ish"]) == {"very good": "very_good", "a/b": "a_b", "ok-ish": "ok-ish"}
    with pytest.raises(DataError, match="would all be recorded as f1_a_b"):
        label_keys(["a b", "a/b"])
