"""Degradation probes together: selection, key layout, skip path, and a real (tiny) training run."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import torch

from ftaudit.errors import ConfigError, DataError
from ftaudit.models.loading import load_classifier, load_tokenizer
from ftaudit.probes.base import ProbeContext, run_probes
from ftaudit.probes.degradation import build_degradation_probes, comparison
from ftaudit.run import train
from tests.conftest import TINY_RUN, compose_config
from tests.hub_layout import write_hub_dataset

# Tab-separated like the real STS-B, with its traps: an unbalanced quote and a row with two license fields.
STSB_ROWS = [
    (5.0, "A man is playing a guitar.", "A man plays the guitar."),
    (4.2, "A woman is slicing an onion.", "A woman cuts an onion."),
    (3.6, 'The "big dog runs in the park.', "A large dog is running in a park."),
    (0.2, "A cat sleeps on the sofa.", "The stock market fell sharply today."),
    (1.0, "Two children play football.", "A chef is cooking pasta."),
    (2.5, "The plane landed at the airport.", "An aircraft arrived at the terminal late."),
    (0.0, "Rain is falling on the roof.", "He wrote a letter to his bank."),
    (4.8, "The boy is riding a bicycle.", "A boy rides a bike."),
]
LABELS = ["O", "B-PER", "I-PER"]


def write_stsb(directory: Path, split: str = "test") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        f"main-captions\tMSRvid\t2012test\t{i:04d}\t{score}\t{first}\t{second}"
        for i, (score, first, second) in enumerate(STSB_ROWS)
    ]
    lines[1] += "\tCC BY-SA 4.0\thttps://example.org"
    (directory / f"sts-{split}.csv").write_text("\n".join(lines) + "\n")
    return directory


def write_wikitext(directory: Path, paragraphs: int = 12) -> Path:
    """WikiText raw layout: ' = Title = ' headings, blank lines of one space, @-@ escapes."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [" ", " = Valkyria Chronicles = ", " "]
    for index in range(paragraphs):
        lines += [
            f" The {index} @-@ th game was released in Japan in 20{index:02d} by the company . "
            f"It sold {index} million copies across the world and critics praised its story . "
            f"Players control a squad of soldiers during the war number {index} . ",
            " ",
            " = = Reception = = ",
            " ",
        ]
    (directory / "wiki.test.raw").write_text("\n".join(lines) + "\n")
    return directory


def write_stsb_hub(folder: Path, split: str = "test") -> Path:
    """STS-B as sentence-transformers/stsb holds it: sentence1, sentence2 and the score divided by 5."""
    return write_hub_dataset(
        folder,
        {
            split: {
                "sentence1": [first for _, first, _ in STSB_ROWS],
                "sentence2": [second for _, _, second in STSB_ROWS],
                "score": [score / 5 for score, _, _ in STSB_ROWS],
            }
        },
    )


def write_wikitext_hub(folder: Path, paragraphs: int = 12) -> Path:
    """WikiText-2 raw as Salesforce/wikitext holds it: config wikitext-2-raw-v1, one ``text`` row per line."""
    lines = (write_wikitext(folder / "raw", paragraphs) / "wiki.test.raw").read_text().splitlines(keepends=True)
    return write_hub_dataset(folder / "hub", {"test": {"text": lines}}, config="wikitext-2-raw-v1")


def degradation_overrides(tmp_path: Path, *probes: str) -> list[str]:
    stsb, wikitext = write_stsb(tmp_path / "stsb"), write_wikitext(tmp_path / "wikitext2")
    return [
        f"probes.degradation=[{','.join(probes)}]",
        f"probes.degradation_settings.cache_dir={tmp_path / 'cache'}",
        f"probes.degradation_settings.stsb.dir={stsb}",
        f"probes.degradation_settings.mlm.dir={wikitext}",
        f"probes.degradation_settings.cka.dir={wikitext}",
        "probes.degradation_settings.mlm.sentences=16",
        "probes.degradation_settings.cka.sentences=16",
        "probes.degradation_settings.batch_size=8",
    ]


def tiny_context(cfg, run_dir: Path, seed: int = 0, head: str = "AutoModelForTokenClassification") -> ProbeContext:
    """An untrained model as its own fine-tuned version: every probe must see no change."""
    torch.manual_seed(seed)
    tokenizer = load_tokenizer(cfg.model)
    model = load_classifier(cfg.model, head, LABELS).eval()
    base_state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    base_source = None if cfg.model.random_init else cfg.model.name_or_path
    return ProbeContext(cfg, model, base_state, tokenizer, None, run_dir, torch.device("cpu"), base_source=base_source)


def perturb_encoder(model: torch.nn.Module, scale: float = 0.05, seed: int = 1) -> None:
    """Stand-in for fine-tuning: move every encoder weight a little, deterministically."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.base_model.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))


def test_default_config_selects_all_four_probes_in_order():
    probes = build_degradation_probes(compose_config("model=tiny"))
    assert [probe.name for probe in probes] == ["stsb", "mlm", "cka", "weights"]
    assert {probe.kind for probe in probes} == {"degradation"}


def test_unknown_probe_name_is_a_config_error():
    with pytest.raises(ConfigError, match=r"unknown probe\(s\) \['stbs'\]"):
        build_degradation_probes(compose_config("model=tiny", "probes.degradation=[stsb,stbs]"))


def test_drop_is_signed_so_positive_means_worse():
    assert comparison("stsb", 80.0, 75.0)["degradation/stsb/drop"] == 5.0
    perplexity = comparison("mlm/pseudo_perplexity", 4.0, 6.0, higher_is_better=False)
    assert perplexity["degradation/mlm/pseudo_perplexity/drop"] == 2.0


def test_untrained_tiny_model_loses_nothing_and_mlm_is_skipped_with_reason(tmp_path):
    cfg = compose_config("model=tiny", *degradation_overrides(tmp_path, "stsb", "mlm", "cka", "weights"))
    metrics, skipped = run_probes(build_degradation_probes(cfg), tiny_context(cfg, tmp_path))
    assert "random-init" in skipped["degradation/mlm"]
    assert not any(key.startswith("degradation/mlm") for key in metrics)
    for probe in ("stsb", "cka", "weights"):
        assert metrics[f"degradation/{probe}/drop"] == 0.0
        assert metrics[f"resource/probe_seconds/degradation/{probe}"] > 0
    assert metrics["degradation/stsb/base"] == metrics["degradation/stsb/finetuned"]
    assert -100 <= metrics["degradation/stsb/base"] <= 100
    assert [metrics[f"degradation/cka/{layer}"] for layer in ("embeddings", "layer_1", "layer_2")] == [1.0, 1.0, 1.0]
    assert [metrics[f"degradation/weights/{part}"] for part in ("embeddings", "layer_1", "layer_2")] == [0.0, 0.0, 0.0]


def test_each_probe_is_one_timed_log_line_and_its_batches_a_bar_unless_turned_off(tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="ftaudit.progress")
    for shown in (True, False):
        cfg = compose_config(
            "model=tiny",
            f"trainer.progress_bar={str(shown).lower()}",
            *degradation_overrides(tmp_path / str(shown), "stsb", "mlm", "cka"),
        )
        run_probes(build_degradation_probes(cfg), tiny_context(cfg, tmp_path))
        bars = capsys.readouterr().err
        assert [bar in bars for bar in ("stsb base:", "stsb fine-tuned:", "cka base:", "cka fine-tuned:")] == [
            shown
        ] * 4
        assert "%|" in bars if shown else bars == ""
        lines = [re.sub(r"\d+\.\d s", "N s", line) for line in caplog.messages]
        assert lines[:2] == [
            "probe degradation/stsb: N s",
            "probe degradation/mlm: N s (skipped: random-init base model "
            "(model.random_init): there is no pretrained masked-LM head)",
        ]
        assert lines[2:] == ["probe degradation/cka: N s"]
        caplog.clear()


def test_probe_data_nowhere_to_be_found_is_a_skip_with_reason(tmp_path, monkeypatch, hub_cache):
    monkeypatch.delenv("STSB_DIR", raising=False)
    monkeypatch.setattr("ftaudit.paths.DATA_ROOT", tmp_path)  # nothing given, nothing in the default place nor the hub
    cfg = compose_config(
        "model=tiny",
        *degradation_overrides(tmp_path, "stsb"),
        "probes.degradation_settings.stsb.dir=null",
        f"probes.degradation_settings.stsb.hub_id={tmp_path / 'no-hub-copy'}",
    )
    metrics, skipped = run_probes(build_degradation_probes(cfg), tiny_context(cfg, tmp_path))
    assert "STS-B not found" in skipped["degradation/stsb"] and "STSB_DIR" in skipped["degradation/stsb"]
    assert f"nor on the hub ({tmp_path / 'no-hub-copy'}: FileNotFoundError" in skipped["degradation/stsb"]
    assert metrics == {}


def test_probe_data_comes_from_the_hub_when_none_was_given_and_the_default_is_empty(tmp_path, monkeypatch, hub_cache):
    monkeypatch.delenv("STSB_DIR", raising=False)
    monkeypatch.delenv("WIKITEXT2_DIR", raising=False)
    monkeypatch.setattr("ftaudit.paths.DATA_ROOT", tmp_path)
    stsb, wikitext = write_stsb_hub(tmp_path / "stsb-hub"), write_wikitext_hub(tmp_path / "wikitext-hub")
    cfg = compose_config(
        "model=tiny",
        *degradation_overrides(tmp_path, "stsb", "cka"),
        "probes.degradation_settings.stsb.dir=null",
        "probes.degradation_settings.cka.dir=null",
        f"probes.degradation_settings.stsb.hub_id={stsb}",
        f"probes.degradation_settings.cka.hub_id={wikitext}",
    )
    probes = build_degradation_probes(cfg)
    assert [(probe.data_file().hub_id, probe.data_file().config) for probe in probes] == [
        (str(stsb), None),
        (str(wikitext), "wikitext-2-raw-v1"),
    ]
    metrics, skipped = run_probes(probes, tiny_context(cfg, tmp_path))
    assert skipped == {} and metrics["degradation/stsb/drop"] == metrics["degradation/cka/drop"] == 0.0


@pytest.mark.parametrize("given", ["config", "environment", "folder without the split's file"])
def test_probe_data_the_user_gave_must_be_there_before_training_starts(tmp_path, monkeypatch, given):
    """A given folder is authoritative: missing is an error when the probes are built, never a silent fall back."""
    stsb = write_stsb(tmp_path / "stsb")
    monkeypatch.setenv("STSB_DIR", str(stsb if given == "config" else tmp_path / "nowhere"))
    setting = {
        "config": f"dir={tmp_path / 'nowhere'}",
        "environment": "dir=null",
        "folder without the split's file": f"dir={stsb}",
    }[given]
    splits = "[validation]" if given.startswith("folder") else "[test]"
    with pytest.raises(DataError, match="nowhere does not exist|sts-dev.csv not found"):
        build_degradation_probes(
            compose_config(
                "model=tiny",
                "probes.degradation=[stsb]",
                f"probes.degradation_settings.stsb.{setting}",
                f"probes.degradation_settings.stsb.splits={splits}",
            )
        )


@pytest.mark.slow
def test_tiny_training_run_records_degradation_keys(tmp_path):
    run_dir = tmp_path / "run"
    train(
        compose_config(
            *TINY_RUN,
            "trainer.max_epochs=1",
            "probes.fairness.enabled=false",
            *degradation_overrides(tmp_path, "stsb", "mlm", "cka", "weights"),
        ),
        run_dir,
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for probe in ("stsb", "cka", "weights"):
        assert {f"degradation/{probe}/{part}" for part in ("base", "finetuned", "drop")} <= metrics.keys()
    assert metrics["degradation/weights/drop"] > 0  # training moved the weights
    assert 0 < metrics["degradation/cka/layer_2"] < 1
    assert "random-init" in json.loads((run_dir / "env.json").read_text())["skipped_probes"]["degradation/mlm"]


def test_a_misspelt_probe_stops_the_run_before_training(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match="stbs"):
        train(compose_config(*TINY_RUN, "probes.degradation=[stbs]"), run_dir)
    assert not (run_dir / "checkpoints").exists()
