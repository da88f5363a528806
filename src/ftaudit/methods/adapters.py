"""Parameter-efficient fine-tuning with peft (LoRA, AdaLoRA, IA3, ...): only the adapters and the head train.

``method.adapter`` is any peft config, built with its own ``_target_`` (e.g. ``peft.LoraConfig``), so every
field peft offers can be set from the command line. For evaluation and the probes the adapter is merged into a
copy of the model, which gives back a plain token classifier with the base model's weight names.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from ftaudit.errors import ConfigError
from ftaudit.methods.base import FineTuningMethod
from ftaudit.quiet import peft_quiet


class RankBudget(L.Callback):
    """AdaLoRA re-allocates ranks from the gradients after each optimiser step; Lightning clears them only
    right before the next backward pass, so they are still there at the end of the batch. Its importance estimates
    and rank pattern are part of the training state an epoch checkpoint keeps for a resume."""

    ESTIMATES = ("ipt", "exp_avg_ipt", "exp_avg_unc")

    def __init__(self, model: torch.nn.Module):
        self.adalora = model.base_model  # peft's AdaLoraModel, which holds the rank allocator
        self.config = self.adalora.peft_config[self.adalora.trainable_adapter_name]

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index) -> None:
        self.adalora.update_and_allocate(trainer.global_step)

    def state_dict(self) -> dict:
        allocator = self.adalora.rankallocator
        return {
            **{name: dict(getattr(allocator, name)) for name in self.ESTIMATES},
            "rank_pattern": self.config.rank_pattern,
        }

    def load_state_dict(self, state: dict) -> None:
        for name in self.ESTIMATES:
            getattr(self.adalora.rankallocator, name).update(state[name])
        self.config.rank_pattern = state["rank_pattern"]


class PeftAdapter(FineTuningMethod):
    def __init__(self, name: str, adapter: DictConfig):
        super().__init__(name)
        self.adapter = adapter
        self.rank_budget: RankBudget | None = None

    def prepare(self, model: torch.nn.Module, total_steps: int) -> torch.nn.Module:
        from peft import AdaLoraConfig, get_peft_model

        settings = OmegaConf.to_container(self.adapter, resolve=True)
        if "total_step" in settings and settings["total_step"] is None:
            settings["total_step"] = total_steps  # AdaLoRA's rank schedule spans the whole run
        try:
            config = hydra.utils.instantiate(settings, _convert_="all")
            with peft_quiet():
                wrapped = get_peft_model(model, config)
        except (InstantiationException, ValueError, TypeError) as err:
            detail = str(err.__cause__ or err).replace("\n", " ")
            raise ConfigError(f"method={self.name}: peft rejected method.adapter for this model: {detail}") from None
        self.rank_budget = RankBudget(wrapped) if isinstance(config, AdaLoraConfig) else None
        return wrapped

    def callbacks(self) -> list[L.Callback]:
        return [self.rank_budget] if self.rank_budget else []

    def merged(self, model: torch.nn.Module) -> torch.nn.Module:
        return copy.deepcopy(model).merge_and_unload()

    def saved_bytes(self, model: torch.nn.Module) -> int:
        """The adapter as peft saves it (adapter weights plus the trained head), weights file and config together."""
        with tempfile.TemporaryDirectory() as directory:
            model.save_pretrained(directory)
            return sum(path.stat().st_size for path in Path(directory).rglob("*") if path.is_file())
