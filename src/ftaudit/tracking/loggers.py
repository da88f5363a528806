"""What every experiment logger receives besides the module's own ``self.log`` calls: the config and the lr."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import OmegaConf


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
