"""The fairness probe inside a real (tiny) training run, and on a real model twice over."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from ftaudit.models.loading import load_classifier, load_tokenizer
from ftaudit.probes.base import ProbeContext, run_probes
from ftaudit.probes.fairness import build_fairness_probes
from ftaudit.run import train
from ftaudit.tasks.ner import NERTask
from ftaudit.tasks.ner.data import NERDataModule
from ftaudit.tasks.ner.fairness import GROUP_TABLE, RECALL_CHART
from tests.conftest import TINY_RUN, compose_config
from tests.tasks.ner.test_fairness import NAMES

GROUPS = ["north_female", "north_male", "south_female", "south_male"]


def fairness_run_overrides(tmp_path) -> list[str]:
    names = tmp_path / "names.yaml"
    names.write_text(NAMES)
    return [
        *TINY_RUN,
        "trainer.max_epochs=1",
        "probes.degradation=[]",
        "probes.fairness.enabled=true",
        f"probes.fairness.groups_file={names}",
        "probes.fairness.names_per_sentence=2",
        "probes.fairness.resamples=200",
    ]


@pytest.mark.slow
def test_tiny_run_records_fairness_metrics_table_and_chart(tmp_path):
    run_dir = tmp_path / "run"
    train(compose_config(*fairness_run_overrides(tmp_path)), run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for group in GROUPS:
        assert 0 <= metrics[f"fairness/names/group/{group}/recall"] <= 1
        assert 0 <= metrics[f"fairness/names/group/{group}/f1"] <= 1
    for prefix in ("fairness/names", "fairness/names/by_origin", "fairness/names/by_gender"):
        assert metrics[f"{prefix}/recall_gap_ci_low"] <= metrics[f"{prefix}/recall_gap_ci_high"]
        assert 0 <= metrics[f"{prefix}/recall_ratio"] <= 1
    # the fixture's test split: 9 sentences hold a PER entity, with 10 PER spans in all
    assert metrics["fairness/names/sentences"] == 9
    assert metrics["fairness/names/substitutions_per_group"] == 10 * 2
    assert metrics["resource/probe_seconds/fairness/names"] > 0
    assert "fairness/names" not in json.loads((run_dir / "env.json").read_text())["skipped_probes"]
    rows = list(csv.DictReader((run_dir / GROUP_TABLE).open()))
    assert [row["group"] for row in rows] == GROUPS
    assert [float(row["recall"]) for row in rows] == [metrics[f"fairness/names/group/{g}/recall"] for g in GROUPS]
    assert (run_dir / RECALL_CHART).read_bytes()[:4] == b"\x89PNG"


def test_same_model_same_seed_same_numbers_with_or_without_a_progress_bar(tmp_path, capsys):
    cfg = compose_config(*fairness_run_overrides(tmp_path))
    tokenizer = load_tokenizer(cfg.model)
    datamodule = NERDataModule(cfg.data, tokenizer, cfg.seed)
    datamodule.setup()
    torch.manual_seed(0)
    model = load_classifier(cfg.model, "AutoModelForTokenClassification", datamodule.labels).eval()
    measured = []
    for run_dir, shown in ((tmp_path / "a", False), (tmp_path / "b", True)):
        cfg.trainer.progress_bar = shown
        context = ProbeContext(cfg, model, {}, tokenizer, datamodule, run_dir, torch.device("cpu"))
        metrics, skipped = run_probes(build_fairness_probes(cfg, NERTask("TOKEN_CLS")), context)
        assert skipped == {}
        assert ("fairness names:" in capsys.readouterr().err) == shown  # the substitutions' batches
        measured.append({key: value for key, value in metrics.items() if not key.startswith("resource/")})
    assert measured[0] == measured[1] and len(measured[0]) > 20
    assert (tmp_path / "a" / GROUP_TABLE).read_text() == (tmp_path / "b" / GROUP_TABLE).read_text()
