"""What every task's LightningModule shares: the optimiser and its schedule, gradient clipping, train mode, and a
training loss that must stay finite. A task adds its evaluation (``TaskModule`` subclasses)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import hydra
import lightning as L
import torch
from omegaconf import OmegaConf
from transformers import get_linear_schedule_with_warmup

from ftaudit.errors import UserError


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite: the run stops, nothing is recorded."""


def decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only: biases and normalisation weights are left alone (as BERT did)."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class TaskModule(L.LightningModule):
    """``model`` is a Hugging Face classifier of ``data``'s labels (``data.labels``, in id order).

    Gradients are clipped here, right before the optimiser step (after every callback's
    ``on_before_optimizer_step``, e.g. L2-SP's gradient term), instead of by the Trainer: Lightning refuses to clip a
    fused optimiser's gradients under mixed precision, and bf16 needs no unscaling, so the fused optimiser stays on.
    """

    model_inputs = ("input_ids", "attention_mask", "labels")

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer_cfg,
        data,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str = "norm",
    ):
        super().__init__()
        self.model, self.optimizer_cfg, self.data, self.labels = model, optimizer_cfg, data, data.labels
        self.gradient_clip_val, self.gradient_clip_algorithm = gradient_clip_val, gradient_clip_algorithm
        self.test_scores: dict[str, float] = {}
        # split -> the reliability bins of its last evaluation (``calibration.reliability_bins``), where the task
        # scores calibration; ``test_reliability``: the test pass's, kept when WiSE-FT or an audit evaluates again
        self.reliability: dict[str, dict] = {}
        self.test_reliability: dict | None = None
        self._eval_outputs: list[tuple[torch.Tensor, ...]] = []  # what ``_eval_step`` kept of each batch
        # split -> (examples scored, examples in the split); a try-out (debug=..., limit_*_batches) scores a part
        self.evaluated: dict[str, tuple[int, int]] = {}

    def on_fit_start(self) -> None:
        # from_pretrained returns the model in eval mode, and Lightning keeps each module's mode as it finds it:
        # without this, full fine-tuning would silently run with every dropout off.
        self.model.train()

    def on_train_epoch_start(self) -> None:
        # The batches of epoch e are shuffled from seed + e, told before its first batch is drawn: a resumed run
        # (whose sampler is new) goes on with the order the original would have had. Overfitting a few batches
        # (trainer.overfit_batches) takes the same ones every epoch: the first epoch's order.
        epoch = 0 if self.trainer.overfit_batches else self.current_epoch
        self.trainer.train_dataloader.batch_sampler.set_epoch(epoch)

    def forward(self, batch: dict[str, torch.Tensor]):
        return self.model(**{key: batch[key] for key in self.model_inputs if key in batch})

    def training_step(self, batch, batch_index):
        loss = self(batch).loss
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"training loss is {loss.item()} at step {self.global_step} (epoch "
                f"{self.current_epoch}): the run diverged; lower optimizer.lr (now {self.optimizer_cfg.lr:g})"
            )
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _eval_step(self, batch) -> torch.Tensor:
        """Forward one evaluation batch, keep what scoring needs (a tuple in ``_eval_outputs`` whose first item is
        the batch's ``example_index``), return the loss."""
        raise NotImplementedError

    def _scores(self, split: str, outputs: list[tuple[torch.Tensor, ...]]) -> tuple[dict[str, float], object]:
        """The scores of the examples of ``split`` whose outputs ``_eval_step`` kept (all of them, but in a try-out),
        and the predictions; sets ``evaluated[split]``."""
        raise NotImplementedError

    def partial_evaluation(self) -> dict[str, str]:
        """The splits whose last evaluation scored only part of them, e.g. ``{"test": "4 of 80"}`` (sentences for
        NER, examples for classification): such scores are not the split's, and the run records no metrics."""
        return {split: f"{scored} of {total}" for split, (scored, total) in self.evaluated.items() if scored < total}

    def _take_outputs(self) -> list[tuple[torch.Tensor, ...]]:
        """The kept outputs of the split just evaluated by the Trainer, of every process: under DDP each process
        evaluated every world_size-th batch (``SplitDataModule.eval_dataloader``), so each scores the whole split;
        a batch repeated to even out the processes' batch counts is kept once."""
        outputs, self._eval_outputs = self._eval_outputs, []
        if self.trainer.world_size > 1:
            gathered: list = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(gathered, outputs)
            by_first_example = {int(output[0][0]): output for process in gathered for output in process}
            outputs = list(by_first_example.values())  # batches are disjoint: their first example tells them apart
        return outputs

    def validation_step(self, batch, batch_index):
        self.log("val/loss", self._eval_step(batch), batch_size=len(batch["input_ids"]), sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        scores, _ = self._scores("validation", self._take_outputs())
        self.log_dict({f"val/{key}": value for key, value in scores.items()})

    def test_step(self, batch, batch_index):
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self.test_scores, self.test_predictions = self._scores("test", self._take_outputs())
        self.test_reliability = self.reliability.get("test")
        self.log_dict({f"test/{key}": value for key, value in self.test_scores.items()})

    @torch.inference_mode()
    def evaluate(
        self,
        split: str,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> dict[str, float]:
        """The scores of ``split`` outside the Trainer (WiSE-FT, audits), computed as the test pass computes them."""
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        for batch in self.data.eval_dataloader(split):
            with autocast():
                self._eval_step({key: value.to(device) for key, value in batch.items()})
        self.model.train(was_training)
        outputs, self._eval_outputs = self._eval_outputs, []
        return self._scores(split, outputs)[0]

    def on_before_optimizer_step(self, optimizer) -> None:
        if not self.gradient_clip_val:
            return
        parameters = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if self.gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(parameters, self.gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(parameters, self.gradient_clip_val)

    def configure_optimizers(self):
        settings = OmegaConf.to_container(self.optimizer_cfg, resolve=True)
        warmup_ratio = settings.pop("warmup_ratio")
        groups = decay_groups(self.model, settings.pop("weight_decay"))
        optimizer = hydra.utils.instantiate(settings)(groups)
        total_steps = self.trainer.estimated_stepping_batches
        scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
