from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ftaudit.errors import ConfigError, DataError
from ftaudit.tasks.ner.conll import Sentence, iob1_to_iob2, load_conll_splits, load_split, read_conll, to_iob2
from tests.conftest import FIXTURE_CONLL as FIXTURE


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_reads_token_first_tag_last_skipping_docstart(tmp_path):
    path = write(tmp_path / "a.txt", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter B-PER\nBlackburn I-PER")
    sentences, starts = read_conll(path)
    assert sentences == [Sentence(["EU", "rejects"], ["B-ORG", "O"]), Sentence(["Peter", "Blackburn"], ["B-PER", "I-PER"])]
    assert starts == [3, 6]


def test_a_byte_order_mark_is_not_part_of_the_first_token(tmp_path):
    """With the BOM read as text, '\\ufeff-DOCSTART-' became a sentence and shifted every max_eval_samples subset."""
    text = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\n\nPeter B-PER\n"
    plain, marked = write(tmp_path / "plain.txt", text), tmp_path / "bom.txt"
    marked.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert read_conll(marked) == read_conll(plain)
    assert read_conll(marked)[0][0] == Sentence(["EU"], ["B-ORG"])


def test_columns_split_on_ascii_blanks_and_lines_end_only_at_newlines(tmp_path):
    """A no-break space belongs to its token; U+0085 and U+2028 inside a token do not end the line."""
    path = write(tmp_path / "unicode.txt", "New\u00a0York B-LOC\nA\u2028B O\nC\x85D O\r\n\nx O\n")
    sentences, starts = read_conll(path)
    assert sentences == [Sentence(["New\u00a0York", "A\u2028B", "C\x85D"], ["B-LOC", "O", "O"]), Sentence(["x"], ["O"])]
    assert starts == [1, 5]


def test_malformed_line_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.txt", "EU B-ORG\nrejects\n")
    with pytest.raises(DataError, match=r"bad\.txt:2: expected 'TOKEN \.\.\. TAG'"):
        load_split(path, "auto")


def test_unknown_tag_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.txt", "EU B-ORG\n\nrejects X-FOO\n")
    with pytest.raises(DataError, match=r"bad\.txt:3: unknown tag 'X-FOO'"):
        load_split(path, "auto")


def test_empty_split_is_an_error(tmp_path):
    path = write(tmp_path / "empty.txt", "-DOCSTART- -X- -X- O\n\n")
    with pytest.raises(DataError, match="no sentences"):
        load_split(path, "auto")


def test_iob1_to_iob2():
    assert iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]) == ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG"]
    iob2 = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]
    assert iob1_to_iob2(iob2) == iob2


def test_scheme_detection_and_strict_iob2(tmp_path):
    iob1 = [Sentence(["a", "b"], ["I-PER", "O"])]
    converted, scheme = to_iob2(iob1, "auto", tmp_path)
    assert scheme == "iob1" and converted[0].tags == ["B-PER", "O"]
    assert to_iob2(iob1, "iob1", tmp_path)[0][0].tags == ["B-PER", "O"]
    with pytest.raises(DataError, match="tag_scheme=iob2 but 1 sentences open an entity with I-"):
        to_iob2(iob1, "iob2", tmp_path)
    with pytest.raises(ConfigError, match="tag_scheme='bio'"):
        to_iob2(iob1, "bio", tmp_path)


def conll_settings(tmp_path, directory) -> OmegaConf:
    return OmegaConf.create({"dir": directory, "env_var": "CONLL2003_DIR", "default_dir": "no/such/dir", "hub_id": None,
                             "files": {"train": "train.txt"}, "tag_scheme": "auto"})


def test_a_data_dir_the_user_gave_is_the_only_place_read(tmp_path, monkeypatch):
    """data.dir given and missing: an error naming it, even though $CONLL2003_DIR holds good data."""
    monkeypatch.setenv("CONLL2003_DIR", str(FIXTURE))
    with pytest.raises(DataError) as err:
        load_conll_splits(conll_settings(tmp_path, str(tmp_path / "cfg")))
    message = str(err.value)
    assert message.startswith(f"data.dir={tmp_path / 'cfg'}: {tmp_path / 'cfg'} does not exist") and "\n" not in message
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(DataError, match="is a file; give the folder holding train.txt"):
        load_conll_splits(conll_settings(tmp_path, str(tmp_path / "file")))


def test_an_environment_variable_that_is_set_is_authoritative_too(tmp_path, monkeypatch):
    monkeypatch.setenv("CONLL2003_DIR", str(tmp_path / "env"))
    with pytest.raises(DataError, match=r"^\$CONLL2003_DIR=.*env does not exist"):
        load_conll_splits(conll_settings(tmp_path, None))


def test_nothing_given_and_nothing_found_says_where_to_put_the_data(tmp_path, monkeypatch):
    monkeypatch.delenv("CONLL2003_DIR", raising=False)
    with pytest.raises(DataError) as err:
        load_conll_splits(conll_settings(tmp_path, None))
    message = str(err.value)
    assert "CoNLL data not found in" in message and "no/such/dir" in message and "set data.dir=PATH" in message


