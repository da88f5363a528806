"""Fixtures of the decoder probes' tests: the tiny tokenizer and decoder, and a probe context around them."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from ftaudit.probes.base import ProbeContext
from tests.probes.tiny_decoder import tiny_decoder, tiny_tokenizer


@pytest.fixture(scope="session")
def lm_tokenizer():
    return tiny_tokenizer()


@pytest.fixture
def lm_model(lm_tokenizer):
    return tiny_decoder(lm_tokenizer)


def lm_context(model, tokenizer, run_dir: Path, finetuned=None) -> ProbeContext:
    """``model`` as the untouched base and ``finetuned`` (default: the model itself) as the fine-tuned one."""
    base_state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    cfg = OmegaConf.create({"trainer": {"progress_bar": False}, "data": {"eval_batch_size": 4}})
    return ProbeContext(cfg, finetuned or model, base_state, tokenizer, None, run_dir, torch.device("cpu"))


def perturbed(model, scale: float = 0.2, seed: int = 1):
    """A copy of ``model`` with every weight moved a little, deterministically: a stand-in for fine-tuning."""
    moved = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in moved.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    return moved.eval()
