"""The fine-tuned models a run keeps in its record, each with its tokenizer and model card."""

from __future__ import annotations

import logging
import shlex
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig

from ftaudit.models.saving import save_pretrained
from ftaudit.tracking.model_card import model_card

if TYPE_CHECKING:
    from ftaudit.session import Session

log = logging.getLogger(__name__)


def models_to_save(
    record_cfg: DictConfig, trained: torch.nn.Module, plain: torch.nn.Module
) -> dict[str, torch.nn.Module]:
    """Folder name -> model: the trained model (a peft model saves its adapter) in ``model/``, and a peft run's merged
    plain model in ``merged_model/`` when asked."""
    if not record_cfg.save_model:
        return {}
    if record_cfg.save_merged and plain is not trained:
        return {"model": trained, "merged_model": plain}
    return {"model": trained}


def save_models(
    models: dict[str, torch.nn.Module],
    session: Session,
    metrics: dict[str, float],
    skipped: dict[str, str],
    device: str,
) -> dict[str, dict]:
    """Each model in its folder of the run directory, with its tokenizer and model card; what was written, and its size."""
    written = {}
    for folder, model in models.items():
        adapter = hasattr(model, "peft_config")  # a peft model saves its adapter
        card = model_card(
            session.cfg,
            session.task,
            metrics,
            session.probes,
            skipped,
            session.datamodule.labels,
            adapter,
            session.run_dir.name,
            reproducing_command(),
            device,
        )
        size = save_pretrained(session.run_dir / folder, model, session.tokenizer, card)
        written[folder] = {"form": "peft adapter" if adapter else "transformers", "bytes": size}
        log.info("saved the fine-tuned model in %s (%.1f MB)", session.run_dir / folder, size / 1e6)
    return written


def reproducing_command() -> str | None:
    """``python train.py <overrides>`` of this run, without a resume's own override; None outside a Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    overrides = [item for item in HydraConfig.get().overrides.task if not item.startswith("trainer.resume=")]
    return shlex.join(["python", "train.py", *overrides])
