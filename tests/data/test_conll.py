from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ftaudit.data.conll import Sentence, iob1_to_iob2, load_conll_splits, load_split, read_conll, to_iob2
from ftaudit.errors import ConfigError, DataError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_reads_token_first_tag_last_skipping_docstart(tmp_path):
    path = write(tmp_path / "a.txt", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter B-PER\nBlackburn I-PER")
    sentences, starts = read_conll(path)
    assert sentences == [Sentence(["EU", "rejects"], ["B-ORG", "O"]), Sentence(["Peter", "Blackburn"], ["B-PER", "I-PER"])]
    assert starts == [3, 6]


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


def test_missing_data_names_every_place_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("CONLL2003_DIR", str(tmp_path / "env"))
    cfg = OmegaConf.create({"dir": str(tmp_path / "cfg"), "env_var": "CONLL2003_DIR", "default_dir": "no/such/dir",
                            "hub_id": None, "files": {"train": "train.txt"}, "tag_scheme": "auto"})
    with pytest.raises(DataError) as err:
        load_conll_splits(cfg)
    message = str(err.value)
    assert str(tmp_path / "cfg") in message and str(tmp_path / "env") in message and "no/such/dir" in message
    assert "\n" not in message
