import re
from pathlib import Path

import datasets
import pytest
from omegaconf import OmegaConf

from ftaudit.errors import ConfigError, DataError
from ftaudit.tasks.ner.conll import (
    CONLL2003_TAGS,
    Sentence,
    iob1_to_iob2,
    load_conll_splits,
    load_split,
    read_conll,
    to_iob2,
)
from tests.conftest import FIXTURE_CONLL as FIXTURE, compose_config
from tests.hub_layout import write_hub_dataset


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_reads_token_first_tag_last_skipping_docstart(tmp_path):
    path = write(
        tmp_path / "a.txt",
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter B-PER\nBlackburn I-PER",
    )
    sentences, starts = read_conll(path)
    assert sentences == [
        Sentence(["EU", "rejects"], ["B-ORG", "O"]),
        Sentence(["Peter", "Blackburn"], ["B-PER", "I-PER"]),
    ]
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
    assert iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]) == [
        "B-PER",
        "I-PER",
        "O",
        "B-LOC",
        "B-LOC",
        "B-ORG",
    ]
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
    return OmegaConf.create(
        {
            "dir": directory,
            "env_var": "CONLL2003_DIR",
            "default_dir": "no/such/dir",
            "hub_id": None,
            "files": {"train": "train.txt"},
            "tag_scheme": "auto",
        }
    )


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


def write_conll_hub(
    folder: Path, splits: dict[str, list[Sentence]], names: list[str] = CONLL2003_TAGS, tags_field: str = "ner_tags"
) -> Path:
    """CoNLL-2003 as its hub copies hold it: tokens, and ner_tags as ids of a ClassLabel named ``names``."""
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            tags_field: datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    columns = {
        split: {
            "tokens": [s.tokens for s in sentences],
            tags_field: [[names.index(t) for t in s.tags] for s in sentences],
        }
        for split, sentences in splits.items()
    }
    return write_hub_dataset(folder, columns, features)


def fixture_sentences() -> dict[str, list[Sentence]]:
    files = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
    return {split: load_split(FIXTURE / name, "auto")[0] for split, name in files.items()}


def hub_settings(tmp_path, hub_id) -> OmegaConf:
    cfg = compose_config(f"data.hub_id={hub_id}").data
    cfg.default_dir = str(tmp_path / "empty")  # nothing in the default place
    return cfg


def test_the_hub_copy_gives_the_same_sentences_as_the_column_files(tmp_path, hub_cache, monkeypatch):
    """Tags are read by their ClassLabel names; the hub's IOB2 meets the column files' IOB1 once converted."""
    monkeypatch.delenv("CONLL2003_DIR", raising=False)
    local = fixture_sentences()
    docstart = Sentence(["-DOCSTART-"], ["O"])  # some copies keep the document separators as rows
    folder = write_conll_hub(tmp_path / "hub", {split: [docstart, *s] for split, s in local.items()})
    splits, files = load_conll_splits(hub_settings(tmp_path, folder))
    assert splits == local
    assert [(f.hub_id, f.split) for f in files] == [(str(folder), split) for split in ("train", "validation", "test")]

    iob1 = write(tmp_path / "iob1.txt", "EU I-ORG\nrejects O\nGerman I-MISC\ncall O\n")
    iob2 = [Sentence(["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"])]
    hub = write_conll_hub(tmp_path / "iob2", dict.fromkeys(("train", "validation", "test"), iob2))
    assert load_conll_splits(hub_settings(tmp_path, hub))[0]["test"] == load_split(iob1, "auto")[0] == iob2


@pytest.mark.parametrize(
    "names",
    [
        [
            "O",
            "B-ORG",
            "I-ORG",
            "B-PER",
            "I-PER",
            "B-LOC",
            "I-LOC",
            "B-MISC",
            "I-MISC",
        ],  # shuffled: ids would mean others
        ["O", "B-PERSON", "I-PERSON", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"],
    ],
)
def test_a_hub_copy_whose_tag_names_are_not_conll2003s_is_refused(tmp_path, hub_cache, monkeypatch, names):
    monkeypatch.delenv("CONLL2003_DIR", raising=False)
    sentences = [Sentence(["EU", "rejects"], ["B-ORG", "O"])]
    folder = write_conll_hub(tmp_path / "hub", dict.fromkeys(("train", "validation", "test"), sentences), names)
    with pytest.raises(DataError) as err:
        load_conll_splits(hub_settings(tmp_path, folder))
    message = str(err.value)
    assert "ner_tags names" in message and "are not CoNLL-2003's" in message and "\n" not in message


def test_a_hub_copy_without_tokens_and_ner_tags_is_refused(tmp_path, hub_cache, monkeypatch):
    monkeypatch.delenv("CONLL2003_DIR", raising=False)
    sentences = [Sentence(["EU", "rejects"], ["B-ORG", "O"])]
    folder = write_conll_hub(
        tmp_path / "hub", dict.fromkeys(("train", "validation", "test"), sentences), tags_field="tags"
    )
    with pytest.raises(DataError, match="train split: no field 'ner_tags' \\(it has tokens, tags\\)"):
        load_conll_splits(hub_settings(tmp_path, folder))


def test_the_hub_is_read_only_when_no_folder_was_given_and_the_default_is_empty(tmp_path, hub_cache, monkeypatch):
    folder = write_conll_hub(
        tmp_path / "hub", {split: [Sentence(["Hub"], ["B-ORG"])] for split in ("train", "validation", "test")}
    )
    monkeypatch.setenv("CONLL2003_DIR", str(FIXTURE))
    splits, files = load_conll_splits(hub_settings(tmp_path, folder))
    assert splits == fixture_sentences() and files == [
        FIXTURE / name for name in ("train.txt", "valid.txt", "test.txt")
    ]
    monkeypatch.delenv("CONLL2003_DIR", raising=False)
    monkeypatch.setattr("ftaudit.paths.DATA_ROOT", tmp_path)  # the run's own config: <repo>/data/conll2003 is empty
    splits, files = load_conll_splits(compose_config(f"data.hub_id={folder}").data)
    assert splits["test"] == [Sentence(["Hub"], ["B-ORG"])] and files[0].hub_id == str(folder)
    with pytest.raises(
        DataError,
        match=re.escape(
            f"CoNLL data not found in {tmp_path}/data/conll2003 nor on the hub "
            f"({tmp_path}/gone: FileNotFoundError: Couldn't find any data file"
        ),
    ):
        load_conll_splits(compose_config(f"data.hub_id={tmp_path / 'gone'}").data)
