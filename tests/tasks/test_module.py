"""The shared LightningModule: clipping before the fused optimiser step equals Lightning's own clipping."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from ftaudit.models.loading import load_classifier, load_tokenizer
from ftaudit.tasks.ner import NERTask
from tests.conftest import TINY_RUN, compose_config

pytestmark = pytest.mark.slow  # each test trains the tiny model several times

STEPS, CLIP = 6, 0.05  # the tiny model's gradient norms are well above 0.05 at lr 1e-3


def trained_weights(cfg, clip_by: str, fused: bool, precision: str = "32-true") -> tuple[dict, L.Trainer]:
    """The tiny model after STEPS optimiser steps, clipped at CLIP by the module (``clip_by="module"``, what ftaudit
    does) or by Lightning (``"lightning"``), or not at all (``"none"``)."""
    task = NERTask("TOKEN_CLS")
    data = task.datamodule(cfg.data, load_tokenizer(cfg.model), cfg.seed)
    data.setup()
    torch.manual_seed(0)
    model = load_classifier(cfg.model, task.head, data.labels)
    cfg.optimizer.fused = fused
    module = task.module(model, cfg.optimizer, data, gradient_clip_val=CLIP if clip_by == "module" else None)
    trainer = L.Trainer(
        max_steps=STEPS,
        accelerator="cpu",
        devices=1,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        gradient_clip_val=CLIP if clip_by == "lightning" else None,
        use_distributed_sampler=False,
        deterministic=True,
    )
    trainer.fit(module, datamodule=data)
    return {name: value.detach().clone() for name, value in model.state_dict().items()}, trainer


def test_clipping_before_the_fused_step_is_lightnings_clipping():
    """The same total norm at the same place in the step: bit for bit on the same (unfused) optimiser, and within the
    rounding of the fused kernel (which orders its arithmetic differently) on the fused one that ftaudit keeps."""
    cfg = compose_config(*TINY_RUN, "optimizer.lr=1e-3")
    lightnings, _ = trained_weights(cfg, "lightning", fused=False)
    ours_unfused, _ = trained_weights(cfg, "module", fused=False)
    ours, _ = trained_weights(cfg, "module", fused=True)
    unclipped, _ = trained_weights(cfg, "none", fused=True)
    for name in ours:
        assert torch.equal(ours_unfused[name], lightnings[name]), name
        torch.testing.assert_close(ours[name], lightnings[name], rtol=1e-4, atol=1e-5, msg=name)
    assert any(not torch.allclose(ours[name], unclipped[name], rtol=1e-3, atol=1e-4) for name in ours)  # clipping acted


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_the_fused_optimiser_stays_on_under_every_precision(precision):
    _, trainer = trained_weights(compose_config(*TINY_RUN), "module", fused=True, precision=precision)
    assert trainer.optimizers[0].defaults["fused"] is True
