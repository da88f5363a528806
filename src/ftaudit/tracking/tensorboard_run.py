"""TensorBoard for one run: the run's final values beside its curves, and with its config in the HPARAMS tab."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.loggers import TensorBoardLogger


def publish_tensorboard(logger: TensorBoardLogger, run_dir: Path, metrics: dict[str, float]) -> None:
    """Every ``metrics.json`` key as a scalar (step 0) and as the HPARAMS tab's metrics of this run's config, the
    flattened config it received when fitting started, so runs compare by their settings."""
    logger.log_hyperparams(logger.hparams, metrics)
    logger.finalize("success")  # flushed to disk before the process moves on
    print(f"TensorBoard: {Path(logger.log_dir)}", flush=True)
