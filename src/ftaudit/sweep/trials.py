"""One trial = one ordinary training run: the config ``train.py`` would compose, its own folder, its own record."""

from __future__ import annotations

import contextlib
import logging
import traceback
from pathlib import Path

import lightning as L
import optuna
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict

from ftaudit.errors import ConfigError, UserError
from ftaudit.files import atomic_write_text
from ftaudit.run import train
from ftaudit.sweep.space import sample, to_overrides, train_command

log = logging.getLogger(__name__)

# Trials keep no model (the sweep's overrides may still ask for one); the best trial's command in best.yaml saves it.
TRIAL_DEFAULTS = ["record.save_model=false"]


class TrialFailed(Exception):
    """A trial raised: Optuna records it as failed and the sweep goes on."""


class SweepStopped(UserError):
    """Too many trials failed: the sweep stops with one line."""


def compose_run_config(overrides: list[str]) -> DictConfig:
    """The config ``python train.py *overrides`` composes, with Hydra's own node (needs an initialised Hydra)."""
    try:
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)
    except HydraException as err:
        raise ConfigError(
            f"python train.py {' '.join(overrides)} does not compose: {str(err).splitlines()[0]}"
        ) from err


@contextlib.contextmanager
def as_hydra_job(cfg: DictConfig, run_dir: Path):
    """While the trial runs, ``${hydra:runtime.output_dir}`` is its folder and the log is also copied to its train.log
    (``<hydra.job.name>.log``), as for a ``train.py`` run; the sweep's own Hydra state comes back afterwards. Removes
    ``hydra`` from ``cfg``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    log_file = run_dir / f"{cfg.hydra.job.name}.log"
    holder = HydraConfig.instance()
    sweep_hydra = holder.cfg
    holder.set_config(cfg)  # keeps its own copy of the hydra node, which the run's config must not contain
    with open_dict(cfg):
        del cfg["hydra"]
    root = logging.getLogger()
    handler = logging.FileHandler(log_file, encoding="utf-8")
    if root.handlers:
        handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    try:
        yield cfg
    finally:
        root.removeHandler(handler)
        handler.close()
        holder.cfg = sweep_hydra


class EpochRecorder(L.Callback):
    """Keeps on the trial how many epochs it trained, so a pruned trial shows the epoch it stopped at."""

    def __init__(self, trial: optuna.Trial):
        self.trial = trial

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.trial.set_user_attr("epochs", trainer.current_epoch + 1)


def error_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:500]


class Objective:
    """Runs a trial and returns its objective values; pruning, failures and the failure budget are handled here."""

    def __init__(
        self,
        *,
        base_overrides: list[str],
        space: dict,
        objectives: list[tuple[str, str]],
        sweep_dir: Path,
        prune: bool,
        monitor: str,
        max_failures: int,
        group: str,
        worker: dict,
    ):
        self.base_overrides, self.space, self.objectives = base_overrides, space, objectives
        self.sweep_dir, self.prune, self.monitor = sweep_dir, prune, monitor  # monitor: the per-epoch score pruned on
        self.max_failures, self.group = max_failures, group
        self.worker = worker  # who runs the trial: a worker that dies leaves it running, to be failed on resume
        self.failures = 0

    def __call__(self, trial: optuna.Trial) -> list[float]:
        trial.set_user_attr("worker", self.worker)
        overrides = [*self.base_overrides, *to_overrides(sample(trial, self.space))]
        run_dir = self.sweep_dir / "trials" / str(trial.number)
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("command", train_command(overrides))
        callbacks = [EpochRecorder(trial)]
        if self.prune:
            from optuna_integration import PyTorchLightningPruningCallback

            callbacks.append(PyTorchLightningPruningCallback(trial, monitor=self.monitor))
        try:
            with as_hydra_job(compose_run_config([*TRIAL_DEFAULTS, *overrides]), run_dir) as cfg:
                self.join_wandb_group(cfg, trial.number)
                metrics = train(cfg, run_dir, callbacks)
        except optuna.TrialPruned:
            raise
        except Exception as err:
            self.record_failure(trial, run_dir, err)
        if not (run_dir / "metrics.json").is_file():  # a try-out: its scores are of part of a split
            raise ConfigError(
                f"trial {trial.number} evaluated only part of a split ({run_dir / 'env.json'}: partial_evaluation); "
                "a sweep selects on whole validation splits: drop debug= and trainer.limit_val_batches/"
                "limit_test_batches"
            )
        return [self.value(metrics, key) for key, _ in self.objectives]

    def join_wandb_group(self, cfg: DictConfig, number: int) -> None:
        """With the W&B logger on, every trial is a run in the sweep's group (unless the config names a group)."""
        wandb = OmegaConf.select(cfg, "logger.wandb")
        if wandb is not None and wandb.get("group") is None:
            wandb.group = f"sweep-{self.group}"
            if wandb.get("name") is None:
                wandb.name = f"trial-{number}"

    def record_failure(self, trial: optuna.Trial, run_dir: Path, err: Exception):
        """The error goes on the trial and its traceback into the trial folder; raises to end the trial."""
        message = error_line(err)
        trial.set_user_attr("error", message)
        atomic_write_text(run_dir / "error.txt", "".join(traceback.format_exception(err)))
        log.warning("trial %d failed: %s", trial.number, message)
        self.failures += 1
        if self.failures >= self.max_failures:
            raise SweepStopped(
                f"sweep stopped: {self.failures} trials failed (sweep.max_failures={self.max_failures}); "
                f"last, trial {trial.number}: {message} (traceback in {run_dir / 'error.txt'})"
            ) from err
        raise TrialFailed(message) from err

    def value(self, metrics: dict[str, float], key: str) -> float:
        if key not in metrics:
            raise ConfigError(
                f"sweep.objectives names {key}, which the run did not record (it has "
                f"{', '.join(sorted(metrics))}); fix the key or enable the probe that records it"
            )
        return metrics[key]
