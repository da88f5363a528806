"""The MLflow logger in-process: $MLFLOW_TRACKING_URI respected and left as the user set it, config values whole."""

from __future__ import annotations

import os

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ftaudit.config import CONFIG_DIR
from ftaudit.tracking.publish import publish_run

pytest.importorskip("mlflow", reason="the mlflow extra is not installed: pip install -e '.[mlflow]'")

from mlflow.tracking import MlflowClient  # noqa: E402

from ftaudit.tracking.mlflow_run import MLflowRunLogger  # noqa: E402

pytestmark = pytest.mark.slow  # real runs logging to MLflow


def test_tracking_uri_from_the_environment_gets_the_run_and_its_values(tmp_path, monkeypatch, capsys):
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", shared)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "audit")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        node = compose("train", overrides=["logger=mlflow"]).logger.mlflow
    assert (node.tracking_uri, node.experiment_name) == (shared, "audit")

    run_dir = tmp_path / "run"
    logger = MLflowRunLogger(
        save_dir=str(run_dir), tracking_uri=node.tracking_uri, experiment_name=node.experiment_name
    )
    long_path = "/data/" + "x" * 300  # Lightning's own MLFlowLogger would keep only the first 250 characters
    logger.log_hyperparams({"data.dir": long_path, "optimizer.lr": 3e-3})
    publish_run([logger], run_dir, {"task/test_f1": 0.5, "degradation/stsb/drop": 12.25})

    client = MlflowClient(shared)
    (run,) = client.search_runs([client.get_experiment_by_name("audit").experiment_id])
    assert run.data.params == {"data.dir": long_path, "optimizer.lr": "0.003"}
    assert run.data.metrics == {"task/test_f1": 0.5, "degradation/stsb/drop": 12.25}
    assert run.info.status == "FINISHED"
    assert not (run_dir / "mlflow.db").exists()
    assert os.environ["MLFLOW_TRACKING_URI"] == shared
    assert f"MLflow run: audit/{run.info.run_id} (tracking URI {shared})" in capsys.readouterr().out


def test_the_runs_store_does_not_become_the_next_runs(tmp_path, monkeypatch):
    """MLflow exports the URI it is given to $MLFLOW_TRACKING_URI; the next job of a multirun must not see it."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    logger = MLflowRunLogger(save_dir=str(tmp_path))
    assert logger.experiment.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert "MLFLOW_TRACKING_URI" not in os.environ
