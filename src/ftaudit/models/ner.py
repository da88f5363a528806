"""The NER LightningModule: a Hugging Face token classifier, its optimiser and its entity-level evaluation."""

from __future__ import annotations

import hydra
import lightning as L
import torch
from omegaconf import OmegaConf
from transformers import get_linear_schedule_with_warmup

from ftaudit.evaluation import entity_scores

MODEL_INPUTS = ("input_ids", "attention_mask", "labels")


def decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only: biases and normalisation weights are left alone (as BERT did)."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class NERTagger(L.LightningModule):
    def __init__(self, model: torch.nn.Module, optimizer_cfg, labels: list[str]):
        super().__init__()
        self.model, self.optimizer_cfg, self.labels = model, optimizer_cfg, labels
        self._eval_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.test_tags: list[list[str]] = []
        self.test_scores: dict[str, float] = {}

    def on_fit_start(self) -> None:
        # from_pretrained returns the model in eval mode, and Lightning keeps each module's mode as it finds it:
        # without this, full fine-tuning would silently run with every dropout off.
        self.model.train()

    def forward(self, batch: dict[str, torch.Tensor]):
        return self.model(**{key: batch[key] for key in MODEL_INPUTS})

    def training_step(self, batch, batch_index):
        loss = self(batch).loss
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _eval_step(self, batch) -> torch.Tensor:
        output = self(batch)
        is_word = batch["labels"] != -100
        predicted = output.logits.argmax(-1)[is_word]
        self._eval_outputs.append((batch["example_index"].cpu(), predicted.cpu(), is_word.sum(1).cpu()))
        return output.loss

    def _predicted_tags(self, split: str) -> list[list[str]]:
        example_index = torch.cat([o[0] for o in self._eval_outputs]).tolist()
        predicted = torch.cat([o[1] for o in self._eval_outputs]).tolist()
        words_per_example = torch.cat([o[2] for o in self._eval_outputs]).tolist()
        self._eval_outputs.clear()
        per_example, start = [], 0
        for count in words_per_example:
            per_example.append([self.labels[i] for i in predicted[start : start + count]])
            start += count
        return self.trainer.datamodule.splits[split].decode(example_index, per_example)

    def _gold_tags(self, split: str) -> list[list[str]]:
        return [s.tags for s in self.trainer.datamodule.splits[split].sentences]

    def validation_step(self, batch, batch_index):
        self.log("val/loss", self._eval_step(batch), batch_size=len(batch["input_ids"]))

    def on_validation_epoch_end(self) -> None:
        scores = entity_scores(self._gold_tags("validation"), self._predicted_tags("validation"))
        self.log_dict({f"val/{k}": scores[k] for k in ("f1", "precision", "recall")}, prog_bar=False)

    def test_step(self, batch, batch_index):
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self.test_tags = self._predicted_tags("test")
        self.test_scores = entity_scores(self._gold_tags("test"), self.test_tags)
        self.log_dict({f"test/{k}": v for k, v in self.test_scores.items()})

    def configure_optimizers(self):
        settings = OmegaConf.to_container(self.optimizer_cfg, resolve=True)
        warmup_ratio = settings.pop("warmup_ratio")
        groups = decay_groups(self.model, settings.pop("weight_decay"))
        if settings.get("fused") and self.trainer.gradient_clip_val and "mixed" in str(self.trainer.precision):
            # Lightning refuses to clip the gradients of a fused optimiser under mixed precision (bf16 on GPU)
            settings["fused"] = False
        optimizer = hydra.utils.instantiate(settings)(groups)
        total_steps = self.trainer.estimated_stepping_batches
        scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
