"""``train.py`` end to end on the tiny shipped fixture, plus a real MiniLM run when CoNLL-2003 is present."""

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from ftaudit.evaluation import entity_scores
from ftaudit.run import train
from tests.conftest import FIXTURE_CONLL, TINY_RUN, compose_config, run_script

REQUIRED_KEYS = {"task/test_f1", "task/test_precision", "task/test_recall", "task/test_f1_strict", "task/val_f1",
                 "resource/train_seconds", "resource/train_tokens_per_second"}


def read_predictions(path: Path) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    tokens, gold, predicted = [], [], []
    for block in path.read_text().strip("\n").split("\n\n"):
        rows = [line.split(" ") for line in block.split("\n")]
        tokens.append([r[0] for r in rows])
        gold.append([r[1] for r in rows])
        predicted.append([r[2] for r in rows])
    return tokens, gold, predicted


def fixture_test_tokens() -> list[list[str]]:
    blocks = (FIXTURE_CONLL / "test.txt").read_text().split("\n\n")
    return [[line.split()[0] for line in block.strip().split("\n")] for block in blocks if block.strip() and "-DOCSTART-" not in block]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> Path:
    """One real ``python train.py`` on the tiny model; returns its run directory."""
    cwd = tmp_path_factory.mktemp("cli")
    result = run_script(*TINY_RUN, "logger=csv", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (cwd / "outputs" / "runs").iterdir()
    assert f"run directory: {run_dir}" in result.stdout
    return run_dir


def test_run_record_is_complete(cli_run):
    metrics = json.loads((cli_run / "metrics.json").read_text())
    assert REQUIRED_KEYS <= metrics.keys()
    assert {"task/test_f1_PER", "task/test_f1_LOC", "task/test_f1_ORG", "task/test_f1_MISC"} <= metrics.keys()
    assert all(isinstance(v, float) for v in metrics.values())
    assert metrics["resource/train_tokens_per_second"] > 0
    env = json.loads((cli_run / "env.json").read_text())
    assert {"packages", "git_commit", "seed", "device", "command"} <= env.keys()
    assert env["packages"]["torch"] and env["seed"] == 42
    assert "model:" in (cli_run / "config.yaml").read_text()
    assert (cli_run / "csv" / "metrics.csv").is_file()
    assert not list(cli_run.rglob("*.tmp"))


def test_predictions_file_reproduces_test_f1(cli_run):
    metrics = json.loads((cli_run / "metrics.json").read_text())
    tokens, gold, predicted = read_predictions(cli_run / "predictions" / "test.txt")
    assert tokens == fixture_test_tokens()  # every test token exactly once, in order
    assert round(entity_scores(gold, predicted)["f1"], 4) == round(metrics["task/test_f1"], 4)


def test_tiny_model_learns_something(cli_run):
    metrics = json.loads((cli_run / "metrics.json").read_text())
    assert metrics["task/test_f1"] > 0.5  # loose sanity bound: 3 epochs of a random-init 2-layer model on easy templates


def test_same_seed_same_result(tmp_path):
    cfg = compose_config(*TINY_RUN, "trainer.max_epochs=1")
    first = train(cfg, tmp_path / "a")
    second = train(cfg, tmp_path / "b")
    assert first["task/test_f1"] == second["task/test_f1"]
    assert first["task/val_f1"] == second["task/val_f1"]
    assert (tmp_path / "a" / "predictions" / "test.txt").read_text() == (tmp_path / "b" / "predictions" / "test.txt").read_text()


class ModeRecorder(L.Callback):
    """Whether every dropout module was in training mode at each training step, and in eval mode at each validation step."""

    def __init__(self):
        self.train_steps, self.eval_steps = [], []

    @staticmethod
    def dropouts_training(module) -> set[bool]:
        return {m.training for m in module.modules() if isinstance(m, torch.nn.Dropout)}

    def on_train_batch_start(self, trainer, module, batch, batch_index):
        self.train_steps.append(self.dropouts_training(module))

    def on_validation_batch_start(self, trainer, module, batch, batch_index, dataloader_index=0):
        self.eval_steps.append(self.dropouts_training(module))


def test_training_steps_run_with_dropout_on_and_evaluation_with_it_off(tmp_path):
    # from_pretrained hands back a model in eval mode, and Lightning keeps module modes as it finds them
    recorder = ModeRecorder()
    train(compose_config(*TINY_RUN, "trainer.max_epochs=2"), tmp_path, callbacks=[recorder])
    assert recorder.train_steps and all(modes == {True} for modes in recorder.train_steps)
    assert recorder.eval_steps and all(modes == {False} for modes in recorder.eval_steps)


def test_last_checkpoint_option(tmp_path):
    metrics = train(compose_config(*TINY_RUN, "trainer.max_epochs=1", "trainer.checkpoint=last"), tmp_path)
    assert "task/test_f1" in metrics
    assert "last" in json.loads((tmp_path / "env.json").read_text())["tested_checkpoint"]


def test_multirun_gives_one_directory_per_job(tmp_path):
    result = run_script("-m", *TINY_RUN, "trainer.max_epochs=1", "logger=none", "seed=1,2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dirs = sorted(p.parent for p in (tmp_path / "outputs" / "multirun").rglob("metrics.json"))
    assert len(run_dirs) == 2 and run_dirs[0] != run_dirs[1]
    assert [json.loads((d / "env.json").read_text())["seed"] for d in run_dirs] == [1, 2]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.dir=/no/such/dir"], "CoNLL data not found"),
        (["optimizer.lr=0"], "optimizer.lr=0 must be > 0"),
        (["trainer.max_epochs=0"], "trainer.max_epochs=0 must be >= 1"),
    ],
)
def test_bad_input_one_line_nonzero_exit_no_metrics(tmp_path, overrides, message, monkeypatch):
    monkeypatch.delenv("CONLL2003_DIR", raising=False)
    result = run_script(*TINY_RUN, *overrides, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("metrics.json"))


def test_malformed_data_names_file_and_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.txt", "valid.txt", "test.txt"):
        (data / name).write_text((FIXTURE_CONLL / name).read_text())
    (data / "valid.txt").write_text("EU B-ORG\nbroken-line-without-tag\n")
    result = run_script(*TINY_RUN, f"data.dir={data}", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{data / 'valid.txt'}:2: expected" in result.stderr
    assert not list(tmp_path.rglob("metrics.json"))


@pytest.mark.parametrize("override, message", [("trainer.max_epoch=2", "Key 'max_epoch' is not in struct"),
                                               ("model=nonexistent", "Could not find 'model/nonexistent'")])
def test_hydra_rejects_unknown_options(tmp_path, override, message):
    result = run_script(*TINY_RUN, override, cwd=tmp_path)
    assert result.returncode != 0 and message in result.stderr
    assert not list(tmp_path.rglob("metrics.json"))


def test_real_minilm_on_conll_subset(tmp_path, real_conll_dir):
    cfg = compose_config(f"data.dir={real_conll_dir}", "data.max_train_samples=600", "data.max_eval_samples=200",
                         "trainer.max_epochs=1", "trainer.progress_bar=false", "optimizer.lr=2e-4", "probes.degradation=[]",
                         "probes.fairness.enabled=false")
    metrics = train(cfg, tmp_path)
    assert 0.3 < metrics["task/test_f1"] <= 1.0  # loose: pretrained MiniLM learns CoNLL entities fast
