"""What a run cost: a Lightning callback that times training and counts the tokens it saw."""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.trainer.states import TrainerFn


class ResourceMeter(L.Callback):
    """Training time excludes the validation passes that Lightning runs inside ``fit``."""

    def __init__(self, train_tokens_per_epoch: int):
        self.train_tokens_per_epoch = train_tokens_per_epoch
        self.train_seconds = 0.0
        self.epochs = 0
        self._started = 0.0

    def on_train_epoch_start(self, trainer, module) -> None:
        self._started = time.perf_counter()

    def on_validation_start(self, trainer, module) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            self.train_seconds += time.perf_counter() - self._started

    def on_validation_end(self, trainer, module) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer, module) -> None:
        self.train_seconds += time.perf_counter() - self._started
        self._started = time.perf_counter()
        self.epochs += 1

    def metrics(self) -> dict[str, float]:
        tokens = self.epochs * self.train_tokens_per_epoch
        return {"resource/train_seconds": self.train_seconds, "resource/train_tokens": float(tokens),
                "resource/train_tokens_per_second": tokens / self.train_seconds if self.train_seconds else 0.0}
