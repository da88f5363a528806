"""Partial fine-tuning: the embeddings and the lowest encoder layers keep their pretrained weights."""

from __future__ import annotations

import torch

from ftaudit.errors import ConfigError
from ftaudit.methods.base import FineTuningMethod


def encoder_parts(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.ModuleList]:
    """The embeddings and the stack of transformer layers of a BERT-style token classifier."""
    encoder = model.base_model
    try:
        return encoder.embeddings, encoder.encoder.layer
    except AttributeError:
        raise ConfigError(
            f"method=freeze needs a BERT-style encoder (embeddings + encoder.layer); {type(encoder).__name__} has none"
        ) from None


class FrozenLayers(FineTuningMethod):
    def __init__(self, name: str = "freeze", layers: int = 3):
        super().__init__(name)
        if layers < 0:
            raise ConfigError(f"method.layers={layers} must be >= 0 (how many of the lowest encoder layers to freeze)")
        self.layers = layers

    def prepare(self, model: torch.nn.Module, total_steps: int) -> torch.nn.Module:
        embeddings, layers = encoder_parts(model)
        if self.layers > len(layers):
            raise ConfigError(f"method.layers={self.layers} but the model has {len(layers)} encoder layers")
        for part in (embeddings, *layers[: self.layers]):
            part.requires_grad_(False)
        return model
