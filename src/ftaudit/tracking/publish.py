"""The run's final values (every ``metrics.json`` key) into each configured logger, the way its dashboard shows them;
curves and config already reached every logger while the run trained."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger

from ftaudit.tracking.mlflow_run import publish_mlflow
from ftaudit.tracking.tensorboard_run import publish_tensorboard
from ftaudit.tracking.wandb_run import publish_wandb

# Logger class -> publisher(logger, run_dir, metrics). A logger without one (CSV: metrics.json sits beside
# csv/metrics.csv already) gets nothing more.
PUBLISHERS = ((WandbLogger, publish_wandb), (TensorBoardLogger, publish_tensorboard), (MLFlowLogger, publish_mlflow))


def publish_run(loggers: list, run_dir: Path, metrics: dict[str, float]) -> None:
    for logger in loggers:
        for logger_class, publish in PUBLISHERS:
            if isinstance(logger, logger_class):
                publish(logger, run_dir, metrics)
