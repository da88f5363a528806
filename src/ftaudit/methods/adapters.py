"""Parameter-efficient fine-tuning with peft (LoRA, AdaLoRA, IA3, ...): only the adapters and the head train.

``method.adapter`` is any peft config, built with its own ``_target_`` (e.g. ``peft.LoraConfig``), so every
field peft offers can be set from the command line. For evaluation and the probes the adapter is merged into a
copy of the model, which gives back a plain token classifier with the base model's weight names.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from ftaudit.errors import ConfigError
from ftaudit.methods.base import FineTuningMethod


class RankBudget(L.Callback):
    """AdaLoRA re-allocates ranks from the gradients after each optimiser step; Lightning clears them only
    right before the next backward pass, so they are still there at the end of the batch."""

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index) -> None:
        module.model.base_model.update_and_allocate(trainer.global_step)


class PeftAdapter(FineTuningMethod):
    def __init__(self, name: str, adapter: DictConfig):
        super().__init__(name)
        self.adapter = adapter
        self.reallocates_ranks = False

    def prepare(self, model: torch.nn.Module, total_steps: int) -> torch.nn.Module:
        from peft import AdaLoraConfig, get_peft_model

        settings = OmegaConf.to_container(self.adapter, resolve=True)
        if "total_step" in settings and settings["total_step"] is None:
            settings["total_step"] = total_steps  # AdaLoRA's rank schedule spans the whole run
        try:
            config = hydra.utils.instantiate(settings, _convert_="all")
            with warnings.catch_warnings():  # peft reads a transformers attribute deprecated in transformers 5
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                wrapped = get_peft_model(model, config)
        except (InstantiationException, ValueError, TypeError) as err:
            detail = str(err.__cause__ or err).replace("\n", " ")
            raise ConfigError(f"method={self.name}: peft rejected method.adapter for this model: {detail}") from None
        self.reallocates_ranks = isinstance(config, AdaLoraConfig)
        return wrapped

    def callbacks(self) -> list[L.Callback]:
        return [RankBudget()] if self.reallocates_ranks else []

    def merged(self, model: torch.nn.Module) -> torch.nn.Module:
        return copy.deepcopy(model).merge_and_unload()

    def saved_bytes(self, model: torch.nn.Module) -> int:
        """The adapter as peft saves it (adapter weights plus the trained head), weights file and config together."""
        with tempfile.TemporaryDirectory() as directory:
            model.save_pretrained(directory)
            return sum(path.stat().st_size for path in Path(directory).rglob("*") if path.is_file())
