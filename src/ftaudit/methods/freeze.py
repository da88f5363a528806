"""Partial fine-tuning: the embeddings and the lowest transformer layers keep their pretrained weights."""

from __future__ import annotations

import torch

from ftaudit.errors import ConfigError
from ftaudit.methods.base import FineTuningMethod


def embeddings_and_layers(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.ModuleList]:
    """The embeddings and the stack of transformer layers: a BERT-style encoder's (embeddings, encoder.layer), a
    Llama-style decoder's (embed_tokens, layers) or GPT-2's (wte and wpe, h)."""
    body = model.base_model
    if hasattr(body, "embeddings") and hasattr(body, "encoder"):
        return body.embeddings, body.encoder.layer
    if hasattr(body, "embed_tokens") and hasattr(body, "layers"):
        return body.embed_tokens, body.layers
    if hasattr(body, "wte") and hasattr(body, "h"):
        return torch.nn.ModuleList([body.wte, body.wpe]), body.h
    raise ConfigError(
        f"method=freeze needs a BERT-, Llama- or GPT-2-style model (embeddings + a stack of layers); "
        f"{type(body).__name__} is none of them"
    )


class FrozenLayers(FineTuningMethod):
    def __init__(self, name: str = "freeze", layers: int = 3):
        super().__init__(name)
        if layers < 0:
            raise ConfigError(f"method.layers={layers} must be >= 0 (how many of the lowest encoder layers to freeze)")
        self.layers = layers

    def prepare(self, model: torch.nn.Module, total_steps: int) -> torch.nn.Module:
        embeddings, layers = embeddings_and_layers(model)
        if self.layers > len(layers):
            raise ConfigError(f"method.layers={self.layers} but the model has {len(layers)} layers")
        for part in (embeddings, *layers[: self.layers]):
            part.requires_grad_(False)
        return model
