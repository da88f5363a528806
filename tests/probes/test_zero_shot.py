"""Zero-shot ARC-Easy, PIQA and LAMBADA: readers, lm-eval's prompts and acc/acc_norm, the probes end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ftaudit.errors import DataError
from ftaudit.metrics import declarations
from ftaudit.probes.base import run_probes
from ftaudit.probes.cache import BaseResultCache
from ftaudit.probes.degradation import BaseIdentity
from ftaudit.probes.lm_scoring import Continuation, loglikelihoods
from ftaudit.probes.zero_shot import (
    ArcEasyProbe,
    ChoiceItem,
    LambadaProbe,
    PiqaProbe,
    choice_correctness,
    choice_requests,
    read_arc,
    read_lambada,
    read_piqa,
)
from tests.probes.conftest import lm_context, perturbed

ARC_QUESTIONS = [
    ("What do plants need to grow?", ["sunlight", "darkness", "salt", "noise"], ["A", "B", "C", "D"], "A"),
    ("Which is a liquid?", ["ice", "water", "steam"], ["A", "B", "C"], "B"),
    ("Which tool measures mass?", ["ruler", "balance", "clock", "map"], ["1", "2", "3", "4"], "2"),  # digit keys
    ("What makes day and night?", ["Earth spinning", "the Moon", "clouds", "wind"], ["A", "B", "C", "D"], "A"),
]


def write_arc(directory: Path, split: str = "test") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rows = [
        {"id": f"q{i}", "question": q, "choices": {"text": texts, "label": labels}, "answerKey": key}
        for i, (q, texts, labels, key) in enumerate(ARC_QUESTIONS * 2)
    ]
    (directory / f"{split}.json").write_text(json.dumps(rows, indent=2))
    return directory


def write_piqa(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rows = [
        {"goal": "How do I dry wet shoes?", "sol1": "Stuff them with paper.", "sol2": "Fill them with water."},
        {"goal": "Keep bread fresh", "sol1": "Leave it open in the sun.", "sol2": "Keep it in a closed bag."},
    ] * 4
    (directory / "valid.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (directory / "valid-labels.lst").write_text("0\n1\n" * 4)
    return directory


def write_lambada(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    texts = ["The cat sat on the mat and looked at the door", "He paid the bill with his card at the bank"] * 4
    (directory / "lambada_test.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
    return directory


def probe_of(probe_class, tmp_path: Path, directory: Path, split: str, **overrides):
    settings = OmegaConf.create(
        {
            "dir": str(directory),
            "splits": [split],
            "items": None,
            "max_length": None,
            "resamples": 200,
            "seed": 0,
            **overrides,
        }
    )
    return probe_class(settings, split, 4, BaseResultCache(tmp_path / "cache"), BaseIdentity())


def test_arc_items_take_lm_eval_prompt_and_any_label_scheme(tmp_path):
    items = read_arc(write_arc(tmp_path / "arc") / "test.json")
    assert items[0] == ChoiceItem("Question: What do plants need to grow?\nAnswer:", ARC_QUESTIONS[0][1], 0)
    assert [item.gold for item in items[:4]] == [0, 1, 1, 0]
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            [{"id": "x", "question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "C"}]
        )
    )
    with pytest.raises(DataError, match=r"question 0 \(id x\) lacks .* an answerKey among its labels"):
        read_arc(bad)


def test_piqa_labels_come_from_the_file_beside_and_must_match_it(tmp_path):
    directory = write_piqa(tmp_path / "piqa")
    items = read_piqa(directory / "valid.jsonl")
    assert items[1] == ChoiceItem(
        "Question: Keep bread fresh\nAnswer:", ["Leave it open in the sun.", "Keep it in a closed bag."], 1
    )
    (directory / "valid-labels.lst").write_text("0\n1\n")
    with pytest.raises(DataError, match="needs one label 0 or 1 per line"):
        read_piqa(directory / "valid.jsonl")


def test_lambada_target_is_the_last_space_separated_word(tmp_path):
    requests = read_lambada(write_lambada(tmp_path / "lambada") / "lambada_test.jsonl")
    assert requests[0] == ("The cat sat on the mat and looked at the", " door")


def test_acc_norm_divides_by_the_choices_byte_length_not_characters():
    # "éé" is 2 characters but 4 bytes: per byte -3.5/4 beats -3.0/3; per character -3.5/2 would lose to -3.0/3
    scored = [Continuation(-3.5, False, 2), Continuation(-3.0, False, 2)]
    scores = choice_correctness([ChoiceItem("Q", ["éé", "abc"], 0)], scored)
    assert scores["acc"].tolist() == [0.0] and scores["acc_norm"].tolist() == [1.0]


def test_choices_are_scored_after_a_space_as_lm_eval_does_and_regrouped_by_item():
    items = [ChoiceItem("Question: q\nAnswer:", ["a", "b"], 0), ChoiceItem("Question: r\nAnswer:", ["c", "d", "e"], 2)]
    assert choice_requests(items) == [("Question: q\nAnswer:", " a"), ("Question: q\nAnswer:", " b")] + [
        ("Question: r\nAnswer:", f" {choice}") for choice in "cde"
    ]
    scored = [Continuation(value, False, 1) for value in (-1.0, -2.0, -3.0, -2.0, -1.0)]
    assert choice_correctness(items, scored)["acc"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("probe_class", "writer", "split", "name"),
    [
        (ArcEasyProbe, write_arc, "test", "arc_easy"),
        (PiqaProbe, write_piqa, "validation", "piqa_val"),
        (LambadaProbe, write_lambada, "test", "lambada"),
    ],
)
def test_each_benchmark_compares_base_and_fine_tuned_on_a_seeded_subset(
    tmp_path, lm_model, lm_tokenizer, probe_class, writer, split, name
):
    directory = writer(tmp_path / name)
    probe = probe_of(probe_class, tmp_path, directory, split, sample_size=6)
    same, skipped = run_probes([probe], lm_context(lm_model, lm_tokenizer, tmp_path))
    assert skipped == {} and same[f"degradation/{name}/items"] == 6
    assert same[f"degradation/{name}/drop"] == 0.0 == same[f"degradation/{name}/drop_ci_high"]
    assert 0 <= same[f"degradation/{name}/base"] <= 100
    finetuned = perturbed(lm_model, scale=0.5)
    changed, _ = run_probes([probe], lm_context(lm_model, lm_tokenizer, tmp_path, finetuned))
    assert changed[f"degradation/{name}/base"] == same[f"degradation/{name}/base"]  # the cached base
    if name == "lambada":
        assert changed["degradation/lambada/perplexity/drop"] != 0.0
    else:
        items = probe.sample(probe.read_items(probe.data_file()))
        expected = choice_correctness(items, loglikelihoods(finetuned, lm_tokenizer, choice_requests(items), 4))
        assert changed[f"degradation/{name}/finetuned"] == pytest.approx(100 * float(expected["acc"].mean()))
        assert changed[f"degradation/{name}/acc_norm/finetuned"] == pytest.approx(
            100 * float(expected["acc_norm"].mean())
        )
    declarations({k: v for k, v in changed.items() if k.startswith("degradation/")}, probe.metric_specs())


REAL = [
    (ArcEasyProbe, "ARC_EASY_DIR", "test", "test.json"),
    (PiqaProbe, "PIQA_DIR", "validation", "valid.jsonl"),
    (LambadaProbe, "LAMBADA_DIR", "test", "lambada_test.jsonl"),
]


@pytest.mark.parametrize(("probe_class", "env_var", "split", "filename"), REAL)
def test_real_benchmark_subsets(tmp_path, lm_model, lm_tokenizer, probe_class, env_var, split, filename):
    directory = os.environ.get(env_var)
    if not directory or not (Path(directory) / filename).is_file():
        pytest.skip(f"{probe_class.base_name} not available: set {env_var} to a folder with {filename}")
    probe = probe_of(probe_class, tmp_path, Path(directory), split, sample_size=8)
    metrics, skipped = run_probes([probe], lm_context(lm_model, lm_tokenizer, tmp_path))
    assert skipped == {} and metrics[f"degradation/{probe.name}/items"] == 8
    assert metrics[f"degradation/{probe.name}/drop"] == 0.0
