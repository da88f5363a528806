"""``task=classification`` end to end: the run record on the tiny model, methods, sweeps, and a real MiniLM run."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from ftaudit.errors import ConfigError
from ftaudit.metrics import spec_of
from ftaudit.run import declared_metrics, train
from ftaudit.sweep.study import read_settings
from ftaudit.tasks import build_task
from ftaudit.tasks.calibration import expected_calibration_error
from ftaudit.tasks.classification.data import ids_sha256
from ftaudit.tasks.classification.fairness import FLIP_CHART, GROUP_TABLE
from ftaudit.tasks.classification.reading import Example
from tests.conftest import TEXT_CSV_PAIRS, TINY_CLASSIFICATION_RUN, compose_config, run_script
from tests.tasks.ner.test_fairness import NAMES

LABELS = ["negative", "neutral", "positive"]
GROUPS = ["north_female", "north_male", "south_female", "south_male"]


def names_file(folder) -> str:
    path = folder / "names.yaml"
    path.write_text(NAMES)
    return str(path)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """One real ``python train.py task=classification`` on the tiny model and the PhraseBank-format fixture."""
    cwd = tmp_path_factory.mktemp("classification")
    result = run_script(
        *TINY_CLASSIFICATION_RUN,
        "logger=csv",
        "probes.degradation=[weights]",
        f"probes.fairness.groups_file={names_file(cwd)}",
        "probes.fairness.resamples=200",
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (cwd / "outputs" / "runs").iterdir()
    return run_dir, result.stdout


def read_predictions(run_dir):
    with (run_dir / "predictions" / "test.tsv").open(newline="") as stream:
        return list(csv.DictReader(stream, delimiter="\t"))


@pytest.mark.slow
def test_run_record_is_complete_and_declared(cli_run):
    run_dir, stdout = cli_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    scores = {"accuracy", "f1_macro", "mcc", "ece", *(f"f1_{label}" for label in LABELS)}
    assert {key for key in metrics if key.startswith("task/")} == {f"task/test_{score}" for score in scores} | {
        "task/val_f1_macro"
    }
    declared = json.loads((run_dir / "metrics_info.json").read_text())
    assert declared.keys() == metrics.keys()
    assert declared["task/val_f1_macro"] == {"split": "validation", "higher_is_better": True}
    assert declared["task/test_ece"] == {"split": "test", "higher_is_better": False}
    assert declared["fairness/names/flip_rate_gap"] == {"split": "test", "higher_is_better": False}
    env = json.loads((run_dir / "env.json").read_text())
    assert env["task"] == "classification" and env["data"]["labels"] == LABELS
    assert env["data"]["split"] == {"split_seed": 0, "validation_fraction": 0.1, "test_fraction": 0.1}
    assert {split: info["examples"] for split, info in env["data"]["splits"].items()} == {
        "train": 72,
        "validation": 9,
        "test": 9,
    }
    assert (run_dir / "csv" / "metrics.csv").is_file() and "task/test_f1_macro" in stdout


@pytest.mark.slow
def test_predictions_file_reproduces_the_scores(cli_run):
    run_dir, _ = cli_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = read_predictions(run_dir)
    env = json.loads((run_dir / "env.json").read_text())
    assert ids_sha256([Example(row["id"], "", "") for row in rows]) == env["data"]["splits"]["test"]["ids_sha256"]
    gold, predicted = [row["gold"] for row in rows], [row["predicted"] for row in rows]
    probabilities = np.array([[float(row[f"p_{label}"]) for label in LABELS] for row in rows])
    assert [LABELS[i] for i in probabilities.argmax(axis=1)] == predicted
    expected = {
        "accuracy": accuracy_score(gold, predicted),
        "f1_macro": f1_score(gold, predicted, average="macro"),
        "mcc": matthews_corrcoef(gold, predicted),
        "ece": expected_calibration_error(probabilities.max(axis=1), np.array(gold) == np.array(predicted)),
    }
    present = sorted(set(gold) | set(predicted))
    expected.update(
        {f"f1_{label}": value for label, value in zip(present, f1_score(gold, predicted, labels=present, average=None))}
    )
    assert {key: round(metrics[f"task/test_{key}"], 4) for key in expected} == {
        k: round(v, 4) for k, v in expected.items()
    }


@pytest.mark.slow
def test_tiny_model_learns_something(cli_run):
    metrics = json.loads((cli_run[0] / "metrics.json").read_text())
    assert metrics["task/val_f1_macro"] > 0.6  # loose: a constant guess scores 1/6 on the balanced fixture


@pytest.mark.slow
def test_fairness_probe_records_flip_rates_table_and_chart(cli_run):
    run_dir, _ = cli_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["fairness/names/sentences"] == 9 and metrics["fairness/names/variants_per_group"] == 9 * 2
    for group in GROUPS:
        assert 0 <= metrics[f"fairness/names/group/{group}/flip_rate"] <= 1
        assert sum(metrics[f"fairness/names/group/{group}/share_{label}"] for label in LABELS) == pytest.approx(1)
    for prefix in ("fairness/names", "fairness/names/by_origin", "fairness/names/by_gender"):
        assert metrics[f"{prefix}/flip_rate_gap_ci_low"] <= metrics[f"{prefix}/flip_rate_gap_ci_high"]
    rows = list(csv.DictReader((run_dir / GROUP_TABLE).open()))
    assert [row["group"] for row in rows] == GROUPS
    assert [float(row["flip_rate"]) for row in rows] == pytest.approx(
        [metrics[f"fairness/names/group/{g}/flip_rate"] for g in GROUPS], abs=1e-6
    )
    assert (run_dir / FLIP_CHART).read_bytes()[:4] == b"\x89PNG"


def test_sentence_pairs_from_csv_files(tmp_path):
    metrics = train(
        compose_config(
            *TINY_CLASSIFICATION_RUN,
            *TEXT_CSV_PAIRS,
            "trainer.max_epochs=1",
            "probes.degradation=[]",
            "probes.fairness.enabled=false",
        ),
        tmp_path,
    )
    assert 0 <= metrics["task/test_f1_macro"] <= 1
    assert [row["id"] for row in read_predictions(tmp_path)] == [f"test-{i}" for i in range(12)]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data=conll"], "data=conll (format conll) is not data for task=classification"),
        (["task=ner", "data=phrasebank"], "is not data for task=ner"),
        (["task.name=ner"], "task.name=ner but task._target_ builds the classification"),
    ],
)
def test_a_task_and_data_that_do_not_match_are_refused(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        train(compose_config(*TINY_CLASSIFICATION_RUN, *overrides), tmp_path)
    assert not (tmp_path / "metrics.json").exists()


def test_task_classification_defaults_to_phrasebank_and_its_recipe_and_the_command_line_wins():
    default = compose_config("task=classification")
    assert default.data.name == "phrasebank" and default.trainer.max_epochs == 2
    assert compose_config("task=classification", "data=text_csv").data.name == "text_csv"
    assert compose_config("experiment=phrasebank", "data=text_csv").data.name == "text_csv"
    assert compose_config("task=classification", "trainer.max_epochs=5").trainer.max_epochs == 5
    ner = compose_config()
    assert (ner.data.name, ner.trainer.max_epochs) == ("conll", 3)
    recipe = compose_config("experiment=phrasebank")
    assert (recipe.optimizer.lr, recipe.data.batch_size, recipe.trainer.max_epochs) == (3e-4, 32, 2)
    assert compose_config("experiment=phrasebank", "method=lora").optimizer.lr == 2e-3  # adapters keep their rate


def test_sweeps_maximise_validation_macro_f1_by_default():
    cfg = compose_config("task=classification", config_name="sweep")
    settings = read_settings(cfg.sweep, build_task(cfg.task))
    assert settings.objectives == [("task/val_f1_macro", "maximize")] and settings.monitor == "val/f1_macro"
    assert spec_of("task/val_f1_macro", declared_metrics(cfg)).split == "validation"


@pytest.mark.parametrize("method", ["lora", "adalora", "ia3", "freeze", "l2sp", "wise"])
def test_every_method_runs_on_a_sentence_classifier(tmp_path, method):
    metrics = train(
        compose_config(
            *TINY_CLASSIFICATION_RUN,
            f"method={method}",
            "trainer.max_epochs=1",
            "probes.degradation=[weights]",
            "probes.fairness.enabled=false",
            *(["method.layers=1"] if method == "freeze" else []),
        ),
        tmp_path,
    )
    assert metrics["method/trainable_params"] > 0 and metrics["degradation/weights/drop"] > 0
    if method in ("lora", "adalora", "ia3"):  # peft's SEQ_CLS: adapters plus the classifier head
        assert metrics["method/trainable_fraction"] < 0.1
    if method == "wise":  # WiSE-FT measures the task's headline at each mixing weight
        assert metrics["wise/1/task/test_f1_macro"] == pytest.approx(metrics["task/test_f1_macro"])
        assert metrics["wise/0/degradation/weights/drop"] == 0.0


@pytest.mark.slow
def test_real_minilm_on_a_phrasebank_subset(tmp_path, real_phrasebank_dir):
    cfg = compose_config(
        "task=classification",
        f"data.dir={real_phrasebank_dir}",
        "data.max_train_samples=640",
        "data.max_eval_samples=200",
        "data.batch_size=16",
        "trainer.max_epochs=1",
        "trainer.progress_bar=false",
        "hardware.num_threads=1",
        "probes.degradation=[]",
        f"probes.fairness.groups_file={names_file(tmp_path)}",
        "probes.fairness.sentences=50",
        "probes.fairness.resamples=100",
    )
    metrics = train(cfg, tmp_path / "run")
    assert metrics["task/test_f1_macro"] > 0.4  # loose: labelling every sentence neutral (59% of them) scores 0.25
    assert 0 <= metrics["fairness/names/flip_rate_gap"] <= 1
