"""Saving the fine-tuned model: one folder, written whole or not at all."""

import errno

import pytest
from transformers import AutoModelForTokenClassification

from ftaudit.errors import UserError
from ftaudit.models.loading import load_classifier, load_tokenizer
from ftaudit.models.saving import save_pretrained
from tests.conftest import compose_config


@pytest.fixture
def tiny():
    cfg = compose_config("model=tiny").model
    return load_classifier(cfg, "AutoModelForTokenClassification", ["O", "B-PER", "I-PER"]), load_tokenizer(cfg)


def test_the_folder_holds_model_tokenizer_and_card_readable_by_all(tiny, tmp_path):
    model, tokenizer = tiny
    size = save_pretrained(tmp_path / "model", model, tokenizer, "---\nlibrary_name: transformers\n---\n# card\n")
    files = {path.name: path for path in (tmp_path / "model").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= files.keys()
    assert size == sum(path.stat().st_size for path in files.values())
    assert all(path.stat().st_mode & 0o044 == 0o044 for path in files.values())  # shared like the rest of the record
    assert AutoModelForTokenClassification.from_pretrained(tmp_path / "model").config.id2label[1] == "B-PER"
    assert [path.name for path in tmp_path.iterdir()] == ["model"]  # no temporary folder left


def test_a_write_that_fails_leaves_no_model_folder(tiny, tmp_path, monkeypatch):
    model, tokenizer = tiny

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tokenizer, "save_pretrained", disk_full)
    with pytest.raises(UserError, match=f"cannot write {tmp_path / 'model'}: No space left on device"):
        save_pretrained(tmp_path / "model", model, tokenizer, "card")
    assert list(tmp_path.iterdir()) == []
