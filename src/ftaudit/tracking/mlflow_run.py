"""MLflow for one run: a SQLite store beside the run record unless ``$MLFLOW_TRACKING_URI`` names another, the
experiment and run named as W&B groups and names them, and the run's final values as its metrics."""

from __future__ import annotations

import os
from pathlib import Path

from lightning.pytorch.loggers import MLFlowLogger

from ftaudit.tracking.loggers import default_group, default_name


class MLflowRunLogger(MLFlowLogger):
    """Lightning's ``MLFlowLogger`` (built by ``conf/logger/mlflow.yaml``) with ftaudit's store and names.

    The default store is ``<save_dir>/mlflow.db``: MLflow 3.17 (the release tested) refuses a ``./mlruns`` file store
    unless told to (``MLFLOW_ALLOW_FILE_STORE``), as that backend only gets maintenance now. Config values are kept whole:
    Lightning cuts them at 250 characters, MLflow stores up to 6,000 and refuses longer ones."""

    def __init__(
        self,
        save_dir: str,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        run_name: str | None = None,
        tags: dict | None = None,
    ):
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # no database set-up chatter in the run's output
        # The run never talks to the network unasked (W&B runs offline too): MLflow's usage telemetry is opt-in.
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        local_store = not tracking_uri
        super().__init__(
            experiment_name=experiment_name or default_group() or "ftaudit",
            run_name=run_name or default_name(),
            tracking_uri=f"sqlite:///{Path(save_dir) / 'mlflow.db'}" if local_store else tracking_uri,
            artifact_location=str(Path(save_dir) / "mlartifacts") if local_store else None,
            tags=dict(tags or {}),
        )

    @property
    def experiment(self):
        """The MLflow client. Making it, MLflow exports this run's URI as ``$MLFLOW_TRACKING_URI``, where the next
        run in this process (multirun job, sweep trial) would take it for the user's: put the user's back."""
        user_uri = os.environ.get("MLFLOW_TRACKING_URI")
        client = super().experiment
        if user_uri is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = user_uri
        return client

    def log_hyperparams(self, params: dict) -> None:
        from mlflow.entities import Param

        params = [Param(key, str(value)) for key, value in params.items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 parameters a call
            self.experiment.log_batch(run_id=self.run_id, params=params[start : start + 100])


def publish_mlflow(logger: MLFlowLogger, run_dir: Path, metrics: dict[str, float]) -> None:
    """Every ``metrics.json`` key as a metric of the run (step 0); then end the run again, after the probes."""
    logger.log_metrics(metrics)
    logger.finalize("success")
    client = logger.experiment
    experiment = client.get_experiment(logger.experiment_id).name
    print(f"MLflow run: {experiment}/{logger.run_id} (tracking URI {client.tracking_uri})", flush=True)
