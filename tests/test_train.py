"""``train.py`` end to end on the tiny shipped fixture, plus a real MiniLM run when CoNLL-2003 is present."""

import errno
import hashlib
import json
import re
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from ftaudit.errors import Interrupted, UserError
from ftaudit.run import train
from ftaudit.tasks.module import TaskModule
from ftaudit.tasks.ner.metrics import entity_scores
from ftaudit.trainer import optimizer_steps
from tests.conftest import FIXTURE_CONLL, TINY_RUN, compose_config, run_script

REQUIRED_KEYS = {
    "task/test_f1",
    "task/test_precision",
    "task/test_recall",
    "task/test_f1_strict",
    "task/val_f1",
    "resource/train_seconds",
    "resource/train_tokens_per_second",
}


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
    return [
        [line.split()[0] for line in block.strip().split("\n")]
        for block in blocks
        if block.strip() and "-DOCSTART-" not in block
    ]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> Path:
    """One real ``python train.py`` on the tiny model; returns its run directory."""
    cwd = tmp_path_factory.mktemp("cli")
    result = run_script(*TINY_RUN, "logger=csv", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (cwd / "outputs" / "runs").iterdir()
    assert f"run directory: {run_dir}" in result.stdout
    return run_dir


@pytest.mark.slow
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
    assert not list(cli_run.rglob("*.tmp")) and not (cli_run / "checkpoints").exists()


PINNED_NER_KEYS = {  # the NER run's own keys, as before the task interface (plus task/test_ece, which it added)
    "task/test_f1",
    "task/test_precision",
    "task/test_recall",
    "task/test_f1_strict",
    "task/test_f1_LOC",
    "task/test_f1_MISC",
    "task/test_f1_ORG",
    "task/test_f1_PER",
    "task/test_ece",
    "task/val_f1",
    "method/adapter_mb",
    "method/trainable_fraction",
    "method/trainable_params",
    *(
        f"resource/{key}"
        for key in (
            "co2_kg",
            "cpu_threads",
            "devices",
            "energy_is_estimate",
            "energy_kwh",
            "load_average_at_start",
            "mfu",
            "padding_overhead",
            "params_non_embedding",
            "params_total",
            "params_trainable",
            "peak_rss_mb",
            "peak_tflops",
            "probes_seconds",
            "setup_seconds",
            "test_seconds",
            "total_seconds",
            "train_flops_estimate",
            "train_padded_tokens",
            "train_samples",
            "train_samples_per_second",
            "train_seconds",
            "train_tokens",
            "train_tokens_per_second",
            "validation_seconds",
        )
    ),
}


@pytest.mark.slow
def test_the_ner_run_records_exactly_its_pinned_keys(cli_run):
    metrics = json.loads((cli_run / "metrics.json").read_text())
    probes = {key for key in metrics if key.startswith(("degradation/", "fairness/", "resource/probe_seconds/"))}
    assert metrics.keys() - probes == PINNED_NER_KEYS


@pytest.mark.slow
def test_every_metric_declares_its_split_and_direction(cli_run):
    metrics = json.loads((cli_run / "metrics.json").read_text())
    declared = json.loads((cli_run / "metrics_info.json").read_text())
    assert declared.keys() == metrics.keys()
    assert declared["task/test_f1"] == {"split": "test", "higher_is_better": True}
    assert declared["task/val_f1"] == {"split": "validation", "higher_is_better": True}
    assert declared["task/test_ece"] == {"split": "test", "higher_is_better": False}
    assert declared["fairness/names/recall_gap"] == {"split": "test", "higher_is_better": False}
    assert declared["fairness/names/recall_gap_p_value"] == {"split": "test", "higher_is_better": None}
    assert declared["resource/train_seconds"] == {"split": None, "higher_is_better": False}
    assert declared["resource/energy_is_estimate"] == {"split": None, "higher_is_better": None}


@pytest.mark.slow
def test_env_records_every_data_file_read_with_its_hash(cli_run):
    files = {
        Path(entry["path"]): entry["sha256"] for entry in json.loads((cli_run / "env.json").read_text())["data_files"]
    }
    for name in ("train.txt", "valid.txt", "test.txt"):
        assert files[FIXTURE_CONLL / name] == hashlib.sha256((FIXTURE_CONLL / name).read_bytes()).hexdigest()


@pytest.mark.slow
def test_predictions_file_reproduces_test_f1(cli_run):
    metrics = json.loads((cli_run / "metrics.json").read_text())
    tokens, gold, predicted = read_predictions(cli_run / "predictions" / "test.txt")
    assert tokens == fixture_test_tokens()  # every test token exactly once, in order
    assert round(entity_scores(gold, predicted)["f1"], 4) == round(metrics["task/test_f1"], 4)


@pytest.mark.slow
def test_tiny_model_learns_something(cli_run):
    metrics = json.loads((cli_run / "metrics.json").read_text())
    assert (
        metrics["task/test_f1"] > 0.5
    )  # loose sanity bound: 3 epochs of a random-init 2-layer model on easy templates


@pytest.mark.slow
def test_same_seed_same_result(tmp_path):
    cfg = compose_config(*TINY_RUN, "trainer.max_epochs=1")
    first = train(cfg, tmp_path / "a")
    second = train(cfg, tmp_path / "b")
    assert first["task/test_f1"] == second["task/test_f1"]
    assert first["task/val_f1"] == second["task/val_f1"]
    assert (tmp_path / "a" / "predictions" / "test.txt").read_text() == (
        tmp_path / "b" / "predictions" / "test.txt"
    ).read_text()


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


@pytest.mark.slow
def test_training_steps_run_with_dropout_on_and_evaluation_with_it_off(tmp_path):
    # from_pretrained hands back a model in eval mode, and Lightning keeps module modes as it finds them
    recorder = ModeRecorder()
    train(compose_config(*TINY_RUN, "trainer.max_epochs=2"), tmp_path, callbacks=[recorder])
    assert recorder.train_steps and all(modes == {True} for modes in recorder.train_steps)
    assert recorder.eval_steps and all(modes == {False} for modes in recorder.eval_steps)


@pytest.mark.slow
def test_last_checkpoint_option(tmp_path):
    metrics = train(compose_config(*TINY_RUN, "trainer.max_epochs=1", "trainer.checkpoint=last"), tmp_path)
    assert "task/test_f1" in metrics
    assert "last" in json.loads((tmp_path / "env.json").read_text())["tested_checkpoint"]


@pytest.mark.slow
def test_multirun_gives_one_directory_per_job(tmp_path):
    result = run_script("-m", *TINY_RUN, "trainer.max_epochs=1", "logger=none", "seed=1,2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dirs = sorted(p.parent for p in (tmp_path / "outputs" / "multirun").rglob("metrics.json"))
    assert len(run_dirs) == 2 and run_dirs[0] != run_dirs[1]
    assert [json.loads((d / "env.json").read_text())["seed"] for d in run_dirs] == [1, 2]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.dir=/no/such/dir"], "data.dir=/no/such/dir: /no/such/dir does not exist"),
        (["optimizer.lr=0"], "optimizer.lr=0: must be greater than 0"),
        (["optimizer.lr=abc"], "optimizer.lr='abc': must be a valid number"),
        (["optimizer.lr=inf"], "optimizer.lr=inf: must be a finite number"),
        (["data.batch_size=abc"], "data.batch_size='abc': must be a valid integer"),
        (["trainer.max_epochs=0"], "trainer.max_epochs=0: must be greater than or equal to 1"),
        (["trainer.max_epochs=two"], "trainer.max_epochs='two': must be a valid integer"),
        (
            ["trainer.max_epochs=1.5"],
            "trainer.max_epochs=1.5: must be a valid integer, got a number with a fractional part",
        ),
        (["seed=-1"], "seed=-1: must be greater than or equal to 0"),
        (["+trainer.max_epoch=2"], "trainer.max_epoch is not an argument of lightning.pytorch.Trainer"),
        (["+trainer.use_distributed_sampler=true"], "trainer.use_distributed_sampler is set by ftaudit"),
        (["trainer.val_check_interval=-3"], "trainer: lightning.pytorch.Trainer rejected the settings"),
    ],
)
@pytest.mark.slow
def test_bad_input_one_line_nonzero_exit_no_metrics(tmp_path, overrides, message):
    """CONLL2003_DIR stays set: a data.dir the user gave that does not exist must not fall back to it."""
    result = run_script(*TINY_RUN, *overrides, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("metrics.json"))


@pytest.mark.slow
def test_a_diverged_run_fails_in_one_line_and_records_nothing(tmp_path):
    result = run_script(*TINY_RUN, "optimizer.lr=1e12", "trainer.gradient_clip_val=null", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert re.search(r"training loss is (nan|inf) at step \d+ \(epoch \d+\): the run diverged", line)
    assert "Traceback" not in result.stderr and not list(tmp_path.rglob("metrics.json"))
    assert not list(tmp_path.rglob("*.ckpt"))  # a failed run leaves no checkpoint behind


@pytest.mark.slow
def test_a_finished_run_directory_is_refused_before_anything_is_written(tmp_path, cli_run):
    before = {path: path.stat().st_mtime_ns for path in cli_run.rglob("*")}
    result = run_script(*TINY_RUN, f"hydra.run.dir={cli_run}", cwd=tmp_path)
    assert result.returncode == 2 and "already holds a finished run" in result.stderr
    assert "Traceback" not in result.stderr
    assert {path: path.stat().st_mtime_ns for path in cli_run.rglob("*")} == before  # .hydra/, CSVs, PNGs untouched


def test_an_unwritable_output_folder_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    result = run_script(*TINY_RUN, f"hydra.run.dir={blocker}/run", cwd=tmp_path)
    assert result.returncode == 2 and "cannot write the run record under" in result.stderr
    assert "Traceback" not in result.stderr


class DiskFillsUp(L.Callback):
    """From the end of the test pass on, every new file fails as on a full disk (probe tables and charts, the record)."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch

    def on_test_end(self, trainer, module):
        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        self.monkeypatch.setattr("ftaudit.files.tempfile.mkstemp", full)


@pytest.mark.slow
def test_a_disk_that_fills_up_is_one_error_and_no_metrics(tmp_path, monkeypatch):
    with pytest.raises(UserError, match=f"cannot write {tmp_path}/.*: No space left on device; free disk space"):
        train(compose_config(*TINY_RUN, "trainer.max_epochs=1"), tmp_path, callbacks=[DiskFillsUp(monkeypatch)])
    assert not (tmp_path / "metrics.json").exists()


class CtrlC(L.Callback):
    def on_train_batch_start(self, trainer, module, batch, batch_index):
        if batch_index == 2:
            raise KeyboardInterrupt


def test_ctrl_c_ends_the_run_saying_where_the_partial_folder_is(tmp_path):
    with pytest.raises(Interrupted, match=f"interrupted \\(Ctrl-C\\); the partial run is in {tmp_path}"):
        train(compose_config(*TINY_RUN), tmp_path, callbacks=[CtrlC()])
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_a_successful_run_leaves_no_checkpoint_folder_unless_asked(tmp_path):
    train(compose_config(*TINY_RUN, "trainer.max_epochs=1"), tmp_path / "default")
    assert not (tmp_path / "default" / "checkpoints").exists()
    train(compose_config(*TINY_RUN, "trainer.max_epochs=1", "trainer.keep_checkpoint=true"), tmp_path / "kept")
    assert (tmp_path / "kept" / "checkpoints" / "best.ckpt").is_file()
    assert not (tmp_path / "kept" / "checkpoints" / "last.ckpt").exists()  # the resume point goes with success


@pytest.mark.slow
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


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.max_epoch=2", "Could not override 'trainer.max_epoch'"),
        ("model=nonexistent", "Could not find 'model/nonexistent'"),
    ],
)
def test_hydra_rejects_unknown_options_in_one_line(tmp_path, override, message):
    result = run_script(*TINY_RUN, override, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1 and "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("metrics.json"))


@pytest.mark.slow
def test_real_minilm_on_conll_subset(tmp_path, real_conll_dir):
    cfg = compose_config(
        f"data.dir={real_conll_dir}",
        "data.max_train_samples=600",
        "data.max_eval_samples=200",
        "trainer.max_epochs=1",
        "trainer.progress_bar=false",
        "optimizer.lr=2e-4",
        "probes.degradation=[]",
        "probes.fairness.enabled=false",
    )
    metrics = train(cfg, tmp_path)
    assert 0.3 < metrics["task/test_f1"] <= 1.0  # loose: pretrained MiniLM learns CoNLL entities fast


@pytest.mark.parametrize(
    "batches, overrides, processes, steps",
    [
        (10, {}, 1, 30),
        (10, {}, 2, 15),
        (11, {}, 2, 18),
        (10, {"accumulate_grad_batches": 4}, 1, 9),
        (10, {"limit_train_batches": 4}, 1, 12),
        (10, {"limit_train_batches": 0.5}, 1, 15),
        (10, {"max_steps": 7}, 1, 7),
    ],
)
def test_optimizer_steps_are_the_real_ones_whatever_the_processes(batches, overrides, processes, steps):
    """AdaLoRA's rank schedule spans these: under DDP each process takes every processes-th batch, so N processes
    take N times fewer steps (it used to be computed for one process)."""
    trainer = compose_config(
        "trainer.max_epochs=3", *(f"trainer.{key}={value}" for key, value in overrides.items())
    ).trainer
    assert optimizer_steps(batches, trainer, processes) == steps


@pytest.mark.slow
def test_debug_fdr_is_a_tryout_that_records_no_metrics(tmp_path):
    """One batch of each stage scores part of the splits: the run says so and leaves no metrics.json nor
    predictions (nothing downstream can take its numbers for the splits'), in outputs/debug/."""
    result = run_script(*TINY_RUN, "debug=fdr", "data.eval_batch_size=4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "debug").iterdir()
    env = json.loads((run_dir / "env.json").read_text())
    assert env["partial_evaluation"]["test"].startswith("4 of ")
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "predictions").exists()
    assert "a try-out: evaluated" in result.stdout


def test_overfitting_takes_the_same_batches_every_epoch(tmp_path):
    cfg = compose_config(*TINY_RUN, "debug=overfit")
    assert cfg.trainer.overfit_batches == 3
    sampler = SimpleNamespace(set_epoch=lambda epoch: epochs.append(epoch))
    epochs = []
    for overfit_batches, epoch in ((3, 5), (0, 5)):
        trainer = SimpleNamespace(
            overfit_batches=overfit_batches,
            current_epoch=epoch,
            train_dataloader=SimpleNamespace(batch_sampler=sampler),
        )
        TaskModule.on_train_epoch_start(SimpleNamespace(trainer=trainer, current_epoch=epoch))
    assert epochs == [0, 5]


@pytest.mark.slow
def test_calibration_file_holds_the_test_reliability_bins_of_the_recorded_ece(cli_run):
    metrics = json.loads((cli_run / "metrics.json").read_text())
    bins = json.loads((cli_run / "calibration.json").read_text())
    assert bins["split"] == "test" and bins["ece"] == metrics["task/test_ece"]
    assert sum(bins["count"]) == sum(map(len, fixture_test_tokens()))  # one prediction per word
    gaps = [n * abs(acc - conf) for n, acc, conf in zip(bins["count"], bins["accuracy"], bins["confidence"]) if n]
    assert sum(gaps) / sum(bins["count"]) == pytest.approx(metrics["task/test_ece"])
