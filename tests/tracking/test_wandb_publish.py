"""The W&B side of a run in-process: tables and images from the record, failed runs closed, offline by default."""

from __future__ import annotations

import pytest

from ftaudit.tracking.publish import publish_run
from ftaudit.tracking.wandb_run import wandb_logger, wandb_mode, wandb_run_closed
from tests.tracking.wandb_records import offline_run_files, read_offline_run


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")


def test_mode_is_offline_unless_wandb_mode_says_otherwise(monkeypatch):
    monkeypatch.delenv("WANDB_MODE")
    assert wandb_mode() == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"


@pytest.mark.slow
def test_publish_sends_metrics_tables_and_images(tmp_path, capsys):
    from PIL import Image

    run_dir = tmp_path / "run"
    (run_dir / "plots").mkdir(parents=True)
    Image.new("RGB", (8, 8), "red").save(run_dir / "plots" / "recall.png")
    (run_dir / "fairness_groups.csv").write_text("group,recall\nblack_female,0.9\nwhite_male,0.8\n")
    (run_dir / "csv").mkdir()
    (run_dir / "csv" / "metrics.csv").write_text("step,loss\n0,1.0\n")  # the CSV logger's file: not a table
    metrics = {
        "task/test_f1": 0.5,
        "task/test_f1_strict": 0.4,
        "task/test_f1_PER": 0.75,
        "task/test_f1_macro": 0.6,
        "fairness/names/recall_gap": 0.1,
    }

    publish_run([wandb_logger(save_dir=str(run_dir), project="test")], run_dir, metrics)

    import wandb

    assert wandb.run is None
    (wandb_file,) = offline_run_files(run_dir)
    run = read_offline_run(wandb_file)
    assert {key: run.summary[key] for key in metrics} == metrics
    assert run.summary["tables/test_f1_per_type/nrows"] == 1  # PER only: f1_strict and f1_macro are no type or label
    assert run.summary["tables/fairness_groups/nrows"] == 2
    assert run.summary["plots/plots/recall/_type"] == "image-file"
    assert not any(key.startswith("tables/csv/") for key in run.summary)
    assert f"W&B run: test/{run.run_id}" in capsys.readouterr().out


def test_failed_run_is_finished_as_failed_and_next_run_is_separate(tmp_path):
    import wandb

    with pytest.raises(RuntimeError), wandb_run_closed():
        failing = wandb_logger(save_dir=str(tmp_path / "a"), project="test").experiment
        raise RuntimeError("out of memory")
    assert wandb.run is None
    with wandb_run_closed():
        second = wandb_logger(save_dir=str(tmp_path / "b"), project="test").experiment
    assert second.id != failing.id
    (failed_file,) = offline_run_files(tmp_path / "a")
    (second_file,) = offline_run_files(tmp_path / "b")
    failed = read_offline_run(failed_file)
    assert failed.exit_code == 1 and failed.summary["stopped_by"] == "RuntimeError"
    assert read_offline_run(second_file).exit_code == 0
