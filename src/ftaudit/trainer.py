"""Lightning's Trainer as a run uses it: built from the ``trainer`` node, the optimiser steps it will take, the
checkpoint that keeps the best validation headline, and what happens to checkpoints and Ctrl-C around a fit."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import hydra
import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from ftaudit.config import FTAUDIT_TRAINER_KEYS
from ftaudit.errors import ConfigError, Interrupted
from ftaudit.resume import CHECKPOINT_FOLDER, last_checkpoint
from ftaudit.tasks.base import Task


def best_checkpoint(run_dir: Path, task: Task) -> ModelCheckpoint:
    """Keeps the weights of the best validation headline, in the task's direction (a loss is minimised)."""
    return ModelCheckpoint(
        dirpath=run_dir / CHECKPOINT_FOLDER,
        filename="best",
        monitor=task.monitor,
        mode=task.better,
        save_top_k=1,
        save_weights_only=True,
        enable_version_counter=False,
    )


def optimizer_steps(train_batches: int, trainer_cfg: DictConfig, processes: int) -> int:
    """The optimiser steps the run will take: its batches per process, gradient accumulation, epochs and step cap
    (AdaLoRA's rank schedule spans exactly these). Each of ``processes`` DDP workers takes every processes-th batch."""
    per_process = math.ceil(train_batches / processes)
    limit = trainer_cfg.limit_train_batches
    if limit is not None:
        per_process = min(per_process, int(limit)) if isinstance(limit, int) else int(per_process * limit)
    steps = math.ceil(per_process / trainer_cfg.accumulate_grad_batches) * trainer_cfg.max_epochs
    return min(steps, trainer_cfg.max_steps) if trainer_cfg.max_steps > 0 else steps


def build_trainer(trainer_cfg: DictConfig, hardware: dict, callbacks: list, loggers: list, run_dir: Path) -> L.Trainer:
    """Lightning's Trainer from the ``trainer`` node, with the devices resolved and what ftaudit sets itself: its
    callbacks and loggers, the run folder, its own batch samplers, and gradient clipping (done by the module)."""
    arguments = {
        key: value
        for key, value in OmegaConf.to_container(trainer_cfg, resolve=True).items()
        if key not in FTAUDIT_TRAINER_KEYS and key not in ("gradient_clip_val", "gradient_clip_algorithm")
    }
    arguments.update(
        hardware,
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=run_dir,
        enable_progress_bar=trainer_cfg.progress_bar,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )  # the length-grouped sampler shards batches across processes itself
    try:
        return hydra.utils.get_class(trainer_cfg._target_)(**arguments)
    except (TypeError, ValueError, MisconfigurationException) as err:
        raise ConfigError(
            f"trainer: {trainer_cfg._target_} rejected the settings: {' '.join(str(err).split())}"
        ) from None


class checkpoints_removed:
    """The run's checkpoints go when the block ends (by the main process, which owns the folder). After success the
    best one stays when asked (``trainer.keep_checkpoint``), never the last epoch's; a failed or pruned run leaves
    none, an interrupted one (Ctrl-C) its last epoch's, to resume from (``trainer.resume``)."""

    def __init__(self, run_dir: Path, keep: bool, main_process: bool):
        self.run_dir, self.keep, self.main_process = run_dir, keep, main_process

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if not self.main_process:
            return
        if error is None and self.keep:
            last_checkpoint(self.run_dir).unlink(missing_ok=True)
        elif not (isinstance(error, KeyboardInterrupt) and last_checkpoint(self.run_dir).is_file()):
            shutil.rmtree(self.run_dir / CHECKPOINT_FOLDER, ignore_errors=True)


class interruptible:
    """Ctrl-C during fit or test ends the run with one line saying where its partial folder is.

    Lightning catches the ``KeyboardInterrupt`` itself, shuts down and exits the process; this turns that exit into
    ``Interrupted``, which entry points print as one line and sweeps record on the trial.
    """

    def __init__(self, trainer: L.Trainer, run_dir: Path):
        self.trainer, self.run_dir = trainer, run_dir

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if isinstance(error, KeyboardInterrupt) or (isinstance(error, SystemExit) and self.trainer.interrupted):
            resume = (
                f"; continue it with the same overrides and trainer.resume={self.run_dir}"
                if last_checkpoint(self.run_dir).is_file()
                else ""
            )
            raise Interrupted(
                f"interrupted (Ctrl-C); the partial run is in {self.run_dir} (no metrics.json: not a record){resume}"
            ) from None
