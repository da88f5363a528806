"""The CKA probe: linear CKA's properties, token states, and per-layer keys on the tiny model."""

from __future__ import annotations

import torch

from ftaudit.models.loading import load_tokenizer
from ftaudit.probes.base import run_probes
from ftaudit.probes.cka import linear_cka, token_states
from ftaudit.probes.degradation import build_degradation_probes
from tests.conftest import compose_config
from tests.probes.test_degradation import degradation_overrides, perturb_encoder, tiny_context


def test_cka_of_a_representation_with_itself_is_exactly_one():
    generator = torch.Generator().manual_seed(0)
    for shape in ((50, 8), (300, 32), (7, 40)):
        x = torch.randn(shape, generator=generator) * 30 + 5
        assert linear_cka(x, x) == 1.0


def test_cka_ignores_rotation_scale_and_shift_but_not_unrelated_features():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(400, 16, generator=generator)
    rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=generator))
    assert abs(linear_cka(x, 3 * x @ rotation + 7) - 1) < 1e-6
    assert linear_cka(x, torch.randn(400, 16, generator=generator)) < 0.2


def test_token_states_keep_every_non_pad_token_of_every_layer():
    cfg = compose_config("model=tiny")
    context = tiny_context(cfg, None)
    texts = ["One.", "A rather longer sentence than the first one.", "Middle length sentence here."]
    states = token_states(context.model.base_model, context.tokenizer, texts, batch_size=2, max_length=64)
    tokens = sum(len(ids) for ids in load_tokenizer(cfg.model)(texts)["input_ids"])
    assert list(states) == ["embeddings", "layer_1", "layer_2"]
    assert {tuple(value.shape) for value in states.values()} == {(tokens, 32)}


def test_fine_tuned_layers_score_below_one_and_the_mean_is_over_blocks(tmp_path):
    cfg = compose_config("model=tiny", *degradation_overrides(tmp_path, "cka"))
    context = tiny_context(cfg, tmp_path)
    perturb_encoder(context.model)
    metrics, _ = run_probes(build_degradation_probes(cfg), context)
    blocks = [metrics["degradation/cka/layer_1"], metrics["degradation/cka/layer_2"]]
    assert all(0 < value < 1 for value in blocks) and 0 < metrics["degradation/cka/embeddings"] < 1
    assert metrics["degradation/cka/base"] == 1.0
    assert metrics["degradation/cka/finetuned"] == sum(blocks) / 2
    assert metrics["degradation/cka/drop"] == 1.0 - sum(blocks) / 2
