"""TensorBoard and MLflow, each alone and together with CSV, in one real multirun, read back with their own readers:
final values = metrics.json (every key), the flattened config, and the curves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ftaudit.tracking.loggers import flat_config
from tests.conftest import REPO, TINY_RUN

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed: pip install -e '.[tensorboard]'")
pytest.importorskip("mlflow", reason="the mlflow extra is not installed: pip install -e '.[mlflow]'")

from mlflow.tracking import MlflowClient  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

pytestmark = pytest.mark.slow  # every test reads one real multirun of three jobs (subprocess)

JOBS = {"tensorboard": "0", "mlflow": "1", "all": "2"}  # the multirun's jobs, in the order of its logger sweep


@pytest.fixture(scope="module")
def multirun(tmp_path_factory) -> tuple[Path, str]:
    """``python train.py -m logger=tensorboard,mlflow,[tensorboard,mlflow,csv]``: three jobs in one process, each
    logger alone and all together, with no MLflow settings in the environment (so: the default store). The data-free
    probe only: its ``degradation/weights/...`` keys have the same form as every probe's, and the others cost time."""
    cwd = tmp_path_factory.mktemp("loggers")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            "-m",
            *TINY_RUN,
            "logger=tensorboard,mlflow,[tensorboard,mlflow,csv]",
            "trainer.log_every_n_steps=5",
            "probes.degradation=[weights]",
            "probes.fairness.enabled=false",
            "hydra.sweep.dir=sweep",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "sweep", result.stdout + result.stderr


def job(sweep: Path, name: str) -> Path:
    return sweep / JOBS[name]


def metrics_json(job_dir: Path) -> dict[str, float]:
    return json.loads((job_dir / "metrics.json").read_text())


def run_config(job_dir: Path) -> dict:
    return flat_config(OmegaConf.load(job_dir / "config.yaml"))


def tensorboard_events(job_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(job_dir / "tensorboard"), size_guidance={"scalars": 0})  # 0: keep every point
    events.Reload()
    return events


def mlflow_runs(job_dir: Path) -> tuple[MlflowClient, list]:
    client = MlflowClient(f"sqlite:///{job_dir / 'mlflow.db'}")
    return client, client.search_runs([experiment.experiment_id for experiment in client.search_experiments()])


@pytest.mark.parametrize("name", ["tensorboard", "all"])
def test_tensorboard_holds_every_final_value_the_config_and_the_curves(multirun, name):
    sweep, output = multirun
    job_dir = job(sweep, name)
    events = tensorboard_events(job_dir)
    metrics = metrics_json(job_dir)
    last = {tag: events.Scalars(tag)[-1].value for tag in events.Tags()["scalars"]}
    assert {key: last.get(key) for key in metrics} == pytest.approx(metrics, rel=1e-6)  # TensorBoard keeps float32

    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    config = run_config(job_dir)
    assert set(hparams) == {key for key, value in config.items() if value != {}}  # TensorBoard has no empty group
    assert hparams["optimizer.lr"].number_value == 3e-3 and hparams["model.name"].string_value == "tiny"
    assert set(events.PluginTagToContent("hparams")) >= {"_hparams_/experiment", "_hparams_/session_end_info"}

    losses = events.Scalars("train/loss")
    learning_rates = [point.value for point in events.Scalars("lr-AdamW/pg1")]
    assert len(losses) > 2 and len(learning_rates) == len(losses)
    assert max(learning_rates) > learning_rates[-1] > 0  # warm-up then decay
    assert len(events.Scalars("val/f1")) == 3  # TINY_RUN: trainer.max_epochs=3, one validation point per epoch
    assert f"TensorBoard: {job_dir / 'tensorboard'}\n" in output


@pytest.mark.parametrize("name", ["mlflow", "all"])
def test_mlflow_holds_every_final_value_the_config_and_the_curves(multirun, name):
    sweep, output = multirun
    job_dir = job(sweep, name)
    client, runs = mlflow_runs(job_dir)
    (run,) = runs  # its own store beside its record: no job of the multirun wrote into another's
    assert client.get_experiment(run.info.experiment_id).name == f"multirun-{sweep.name}"
    override_dirname = OmegaConf.load(job_dir / ".hydra" / "hydra.yaml").hydra.job.override_dirname
    assert run.info.run_name == override_dirname and "logger=" in override_dirname  # the job's overrides
    assert run.info.status == "FINISHED"

    metrics = metrics_json(job_dir)
    assert {key: run.data.metrics.get(key) for key in metrics} == metrics  # exact: MLflow keeps float64
    assert run.data.params == {key: str(value) for key, value in run_config(job_dir).items()}
    assert run.data.params["optimizer.lr"] == "0.003" and run.data.params["logger.mlflow.tracking_uri"] == "None"

    losses = client.get_metric_history(run.info.run_id, "train/loss")
    learning_rates = [
        point.value
        for point in sorted(client.get_metric_history(run.info.run_id, "lr-AdamW/pg1"), key=lambda point: point.step)
    ]
    assert len(losses) > 2 and len(learning_rates) == len(losses)
    assert max(learning_rates) > learning_rates[-1] > 0
    assert len(client.get_metric_history(run.info.run_id, "val/f1")) == 3
    experiment = client.get_experiment(run.info.experiment_id).name
    assert f"MLflow run: {experiment}/{run.info.run_id} (tracking URI sqlite:///{job_dir / 'mlflow.db'})" in output


def test_each_job_has_only_its_loggers_files(multirun):
    sweep, _ = multirun
    present = {
        name: {folder for folder in ("tensorboard", "mlflow.db", "csv") if (job(sweep, name) / folder).exists()}
        for name in JOBS
    }
    assert present == {
        "tensorboard": {"tensorboard"},
        "mlflow": {"mlflow.db"},
        "all": {"tensorboard", "mlflow.db", "csv"},
    }
    assert not list(sweep.parent.glob("mlruns")) and not list(sweep.parent.glob("mlflow.db"))  # nothing in the cwd
