"""L2-SP (Li et al. 2018, "Explicit inductive bias for transfer learning"): keep the encoder near its pretrained weights.

The training loss gets alpha/2 * ||w - w0||^2 over the pretrained encoder's weights w (w0: their values before
fine-tuning) plus, optionally, beta/2 * ||w||^2 over the new head, which has no pretrained value to return to.
"""

from __future__ import annotations

import torch

from ftaudit.errors import ConfigError
from ftaudit.methods.base import FineTuningMethod


class L2SPPenalty(torch.nn.Module):
    """Holds the anchors w0 as non-persistent buffers: they follow the model to its device but stay out of checkpoints."""

    def __init__(self, model: torch.nn.Module, alpha: float, beta: float):
        super().__init__()
        self.alpha, self.beta = alpha, beta
        encoder_ids = {id(p) for p in model.base_model.parameters()}
        # Plain lists, not registered: the model owns these parameters and the optimiser already has them.
        self.encoder_weights = [p for p in model.base_model.parameters() if p.requires_grad]
        self.head_weights = [p for p in model.parameters() if p.requires_grad and id(p) not in encoder_ids]
        for index, weight in enumerate(self.encoder_weights):
            self.register_buffer(f"anchor_{index}", weight.detach().clone(), persistent=False)

    def forward(self) -> torch.Tensor:
        anchors = (getattr(self, f"anchor_{i}") for i in range(len(self.encoder_weights)))
        loss = 0.5 * self.alpha * sum(torch.sum((w - w0) ** 2) for w, w0 in zip(self.encoder_weights, anchors))
        if self.beta:
            loss = loss + 0.5 * self.beta * sum(torch.sum(w**2) for w in self.head_weights)
        return loss


class L2SP(FineTuningMethod):
    def __init__(self, name: str = "l2sp", alpha: float = 0.1, beta: float = 0.0):
        super().__init__(name)
        if alpha < 0 or beta < 0:
            raise ConfigError(f"method.alpha={alpha} and method.beta={beta} must be >= 0 (penalty strengths)")
        self.alpha, self.beta = alpha, beta

    def penalty(self, model: torch.nn.Module) -> torch.nn.Module:
        return L2SPPenalty(model, self.alpha, self.beta)
