"""The experiment loggers of a run (``logger=...``), how their runs are grouped and named, and what every one
receives besides the module's own ``self.log`` calls: the config and the lr."""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
from hydra.errors import InstantiationException
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf

from ftaudit.errors import ConfigError


def build_loggers(logger_cfg: DictConfig) -> list:
    """One Lightning logger per entry of ``cfg.logger``; one whose package is missing stops the run with one line."""
    loggers = []
    for name, node in logger_cfg.items():
        try:
            loggers.append(hydra.utils.instantiate(node))
        except InstantiationException as err:
            if not isinstance(err.__cause__, ModuleNotFoundError):
                raise
            missing = str(err.__cause__).splitlines()[0]
            raise ConfigError(
                f"logger={name} cannot start: {missing}; install it with pip install -e '.[{name}]'"
            ) from None
    return loggers


def default_group() -> str | None:
    """The experiment's name, else (multirun) the sweep folder's, so the jobs of one launch are grouped together."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    experiment = hydra_cfg.runtime.choices.get("experiment")
    if experiment:
        return str(experiment)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return f"multirun-{Path(hydra_cfg.sweep.dir).name}"
    return None


def default_name() -> str | None:
    """The job's command-line overrides (``optimizer.lr=0.0001,seed=2``): tells the runs of a group apart."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().job.override_dirname or None


def flat_config(cfg) -> dict:
    """The resolved config as one level of dotted keys (``optimizer.lr``), as dashboards filter and group by them."""
    flat = {}

    def visit(node, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                visit(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = node

    visit(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


class ConfigLogger(L.Callback):
    """Sends the flattened run config to every logger when fitting starts, so a live run shows its settings."""

    def __init__(self, cfg):
        self.config = flat_config(cfg)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            for logger in trainer.loggers:
                logger.log_hyperparams(self.config)


def tracking_callbacks(cfg, loggers: list) -> list[L.Callback]:
    """Config and per-step learning rate for the configured loggers; none without a logger (Lightning would refuse)."""
    if not loggers:
        return []
    return [ConfigLogger(cfg), LearningRateMonitor(logging_interval="step")]
