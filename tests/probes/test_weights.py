"""The weights probe: relative L2 distance from the base, overall and per layer."""

from __future__ import annotations

import math

import torch

from ftaudit.probes.base import run_probes
from ftaudit.probes.degradation import build_degradation_probes
from ftaudit.probes.weights import parameter_group, relative_distances
from tests.conftest import compose_config
from tests.probes.test_degradation import degradation_overrides, perturb_encoder, tiny_context


def test_parameters_group_into_embeddings_and_blocks_counted_from_one():
    assert parameter_group("embeddings.word_embeddings.weight") == "embeddings"
    assert parameter_group("encoder.layer.0.attention.self.query.weight") == "layer_1"
    assert parameter_group("encoder.layer.11.output.dense.bias") == "layer_12"
    assert parameter_group("h.3.mlp.c_fc.weight") == "layer_4"
    assert parameter_group("pooler.dense.weight") is None


def test_relative_distance_is_the_norm_of_the_change_over_the_norm_of_the_base():
    base = {"embeddings.w": torch.tensor([3.0, 4.0]), "encoder.layer.0.w": torch.tensor([0.0, 5.0])}
    finetuned = {"embeddings.w": torch.tensor([3.0, 4.5]), "encoder.layer.0.w": torch.tensor([0.0, 5.0])}
    distances = relative_distances(base, finetuned)
    assert distances["embeddings"] == 0.1
    assert distances["layer_1"] == 0.0
    assert distances["overall"] == math.sqrt(0.25 / 50)


def test_untrained_model_has_zero_drop_and_a_perturbed_one_a_positive_drop_per_layer(tmp_path):
    cfg = compose_config("model=tiny", *degradation_overrides(tmp_path, "weights"))
    context = tiny_context(cfg, tmp_path)
    untrained, _ = run_probes(build_degradation_probes(cfg), context)
    assert untrained["degradation/weights/drop"] == 0.0 == untrained["degradation/weights/base"]
    perturb_encoder(context.model)
    moved, _ = run_probes(build_degradation_probes(cfg), context)
    assert moved["degradation/weights/drop"] == moved["degradation/weights/finetuned"] > 0
    assert all(moved[f"degradation/weights/{group}"] > 0 for group in ("embeddings", "layer_1", "layer_2"))
    assert "degradation/weights/layer_3" not in moved
