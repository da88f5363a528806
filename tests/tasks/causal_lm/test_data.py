"""Causal-LM data: prompts through the chat template or plain, the loss on the response and EOS only, left
truncation counted, validation carved out of train, and one clear error for each kind of bad input."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from ftaudit.config import CONFIG_DIR
from ftaudit.errors import ConfigError, DataError
from ftaudit.models.causal import load_causal_tokenizer
from ftaudit.tasks.causal_lm.data import IGNORE, CausalLMDataModule
from tests.conftest import FIXTURE_TEXT_CSV

PROMPTING = {"chat_template": "auto", "system_prompt": None, "train_on_prompt": False, "separator": "\n"}
SENTIMENT = {"text_column": "sentence", "label_column": "sentiment"}  # the text_csv fixture's columns
PAIRS = [{"prompt": f"question {i}?", "response": f"answer {i}."} for i in range(20)]


@pytest.fixture(scope="module")
def tokenizer():
    return load_causal_tokenizer(OmegaConf.load(CONFIG_DIR / "model" / "tiny-llama.yaml"))


def data_cfg(name: str, directory: Path, **overrides):
    cfg = OmegaConf.load(CONFIG_DIR / "data" / f"{name}.yaml")
    return OmegaConf.merge(cfg, {"dir": str(directory), **overrides})


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def jsonl_folder(tmp_path: Path, train=PAIRS, validation=PAIRS[:4], test=PAIRS[:4]) -> Path:
    for split, records in (("train", train), ("validation", validation), ("test", test)):
        write_jsonl(tmp_path / f"{split}.jsonl", records)
    return tmp_path


def prepared(cfg, tokenizer, **prompting) -> CausalLMDataModule:
    data = CausalLMDataModule(cfg, tokenizer, seed=0, prompting=OmegaConf.create(PROMPTING | prompting))
    data.setup()
    return data


def test_the_loss_falls_on_the_response_and_eos_only(tmp_path, tokenizer):
    data = prepared(data_cfg("jsonl", jsonl_folder(tmp_path)), tokenizer)
    train = data.splits["train"]
    for example, ids, labels, prompt in zip(train.examples, train.input_ids, train.labels, train.prompts):
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": example.prompt}], tokenize=False, add_generation_prompt=True
        )
        assert prompt == tokenizer(rendered, add_special_tokens=False)["input_ids"]
        response = tokenizer(example.response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        assert ids.tolist() == prompt + response
        assert labels.tolist() == [IGNORE] * len(prompt) + response
    assert data.data_info["splits"]["train"]["response_tokens"] == sum(
        len(i) - len(p) for i, p in zip(train.input_ids, train.prompts)
    )


def test_train_on_prompt_trains_on_every_token_and_plain_prompts_end_with_the_separator(tmp_path, tokenizer):
    data = prepared(data_cfg("jsonl", jsonl_folder(tmp_path)), tokenizer, train_on_prompt=True, chat_template=False)
    train = data.splits["train"]
    assert all(torch.equal(ids, labels) for ids, labels in zip(train.input_ids, train.labels))
    example = train.examples[0]
    assert data.rendered(example.prompt) == example.prompt + "\n"
    assert not data.data_info["chat_template"]


def test_long_prompts_lose_tokens_on_the_left_and_are_counted(tmp_path, tokenizer):
    long = [{"prompt": "word " * 200 + f"end {i}", "response": "yes"} for i in range(3)]
    data = prepared(data_cfg("jsonl", jsonl_folder(tmp_path, test=long), max_length=64), tokenizer)
    test = data.splits["test"]
    assert test.truncated == 3 and data.data_info["splits"]["test"]["truncated"] == 3
    assert data.splits["train"].truncated == 0
    for ids, labels in zip(test.input_ids, test.labels):
        assert len(ids) == 64
        response = tokenizer("yes", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        assert labels.tolist()[-len(response) :] == response  # the response survives whole


def test_without_a_validation_file_validation_is_carved_out_of_train_seeded(tmp_path, tokenizer):
    folder = jsonl_folder(tmp_path)
    cfg = data_cfg("jsonl", folder, files={"validation": None}, validation_fraction=0.25)
    first, again = prepared(cfg, tokenizer), prepared(cfg, tokenizer)
    train = {e.prompt for e in first.splits["train"].examples}
    validation = {e.prompt for e in first.splits["validation"].examples}
    assert len(validation) == 5 and len(train) == 15 and not train & validation
    assert validation == {e.prompt for e in again.splits["validation"].examples}
    assert first.data_info["split"]["validation"] == "carved out of train"


def test_conversations_answer_their_last_turn_with_the_turns_before_it(tmp_path, tokenizer):
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi?"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Name?"},
        {"role": "assistant", "content": "Tiny."},
    ]
    records = [{"messages": conversation}] * 4
    for split in ("train", "validation", "test"):
        write_jsonl(tmp_path / f"{split}.jsonl", records)
    data = prepared(data_cfg("chat_jsonl", tmp_path), tokenizer)
    example = data.splits["test"].examples[0]
    assert example.response == "Tiny." and example.prompt == tuple(conversation[:-1])
    expected = tokenizer.apply_chat_template(conversation[:-1], tokenize=False, add_generation_prompt=True)
    assert data.splits["test"].prompts[0] == tokenizer(expected, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"prompt": "q"}, "no 'response' field"),
        ({"prompt": "q", "response": 3}, "'response' is int"),
        ({"prompt": "q", "response": "  "}, "empty 'response'"),
        (["q", "a"], "expected one JSON object per line"),
    ],
)
def test_a_bad_pair_names_its_file_and_line(tmp_path, tokenizer, record, message):
    jsonl_folder(tmp_path, train=[*PAIRS[:2], record])
    with pytest.raises(DataError, match=f"train.jsonl:3: .*{message}"):
        prepared(data_cfg("jsonl", tmp_path), tokenizer)


def test_invalid_json_and_non_utf8_bytes_are_reported(tmp_path, tokenizer):
    jsonl_folder(tmp_path)
    (tmp_path / "test.jsonl").write_text('{"prompt": "q", "response": "a"}\n{"prompt": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"test.jsonl:2: not valid JSON"):
        prepared(data_cfg("jsonl", tmp_path), tokenizer)
    (tmp_path / "test.jsonl").write_bytes('{"prompt": "caf\xe9", "response": "a"}\n'.encode("latin-1"))
    with pytest.raises(DataError, match=r"test.jsonl: not UTF-8 text"):
        prepared(data_cfg("jsonl", tmp_path), tokenizer)


def test_a_conversation_must_end_with_the_assistant(tmp_path, tokenizer):
    turns = [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]
    for split in ("train", "validation", "test"):
        write_jsonl(tmp_path / f"{split}.jsonl", [{"messages": turns}])
    write_jsonl(tmp_path / "validation.jsonl", [{"messages": [*turns, {"role": "user", "content": "And?"}]}])
    with pytest.raises(DataError, match=r"validation.jsonl:1: the last turn is the user's"):
        prepared(data_cfg("chat_jsonl", tmp_path), tokenizer)


def test_a_response_that_cannot_fit_is_an_error(tmp_path, tokenizer):
    jsonl_folder(tmp_path, train=[{"prompt": "q", "response": "word " * 100}])
    with pytest.raises(DataError, match=r"train.jsonl:1: the response alone is \d+ tokens.*data.max_length=32"):
        prepared(data_cfg("jsonl", tmp_path, max_length=32), tokenizer)


def test_a_chat_template_asked_of_a_tokenizer_without_one_is_an_error(tmp_path, tokenizer):
    plain = load_causal_tokenizer(OmegaConf.load(CONFIG_DIR / "model" / "tiny-llama.yaml"))
    plain.chat_template = None
    with pytest.raises(ConfigError, match="chat_template=true, but .* has no chat template"):
        prepared(data_cfg("jsonl", jsonl_folder(tmp_path)), plain, chat_template=True)
    with pytest.raises(ConfigError, match="holds conversations, but .* has no chat template"):
        prepared(data_cfg("chat_jsonl", tmp_path), plain)


def test_labelled_data_become_instructions_answered_by_label_strings(tokenizer):
    cfg = data_cfg("text_csv", FIXTURE_TEXT_CSV, **SENTIMENT)
    data = prepared(cfg, tokenizer)
    assert data.label_responses == [label.replace("_", " ") for label in data.labels]
    eos = tokenizer.eos_token_id
    assert data.candidates == [
        tokenizer(r, add_special_tokens=False)["input_ids"] + [eos] for r in data.label_responses
    ]
    test = data.splits["test"]
    for example, answer in zip(test.examples, test.answers):
        assert data.labels[answer] == example.label and example.response == data.label_responses[answer]
        assert example.text in example.prompt


def test_a_label_template_that_merges_two_labels_is_an_error(tokenizer):
    cfg = data_cfg("text_csv", FIXTURE_TEXT_CSV, **SENTIMENT, prompt={"label_template": "x"})
    with pytest.raises(DataError, match="gives the same response 'x' for the labels"):
        prepared(cfg, tokenizer)


def cfg_dir() -> str:
    return os.environ["BANKING77_DIR"]


@pytest.mark.skipif(not os.environ.get("BANKING77_DIR"), reason="BANKING77_DIR not set (../shared/data/banking77)")
def test_banking77_validation_comes_out_of_train_stratified_never_out_of_test(tokenizer):
    cfg = OmegaConf.merge(OmegaConf.load(CONFIG_DIR / "data" / "banking77.yaml"), {"max_length": 256})
    data = prepared(cfg, tokenizer)
    assert len(data.labels) == 77 and len(data.label_responses) == 77
    sizes = {split: len(encoded.examples) for split, encoded in data.splits.items()}
    assert sizes == {"train": 9002, "validation": 1001, "test": 3080}  # 10% of each intent, rounded
    with open(Path(cfg_dir()) / "train.csv", encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    train_csv = Counter(row["text"] for row in rows)
    taken = Counter(e.text for split in ("train", "validation") for e in data.splits[split].examples)
    assert taken == train_csv  # train and validation share out train.csv, each message once; test.csv untouched
    per_intent = Counter(row["category"] for row in rows)
    counts = data.data_info["splits"]["validation"]["labels"]
    assert all(abs(counts[intent] - 0.1 * n) <= 1 for intent, n in per_intent.items())  # stratified by intent
    again = prepared(cfg, tokenizer)
    assert [e.where for e in again.splits["validation"].examples] == [
        e.where for e in data.splits["validation"].examples
    ]
