"""The masked-LM probe: seeded masking, skip reasons, and the pretrained head on the fine-tuned encoder."""

from __future__ import annotations

from pathlib import Path

import torch

from ftaudit.models.loading import load_tokenizer, resolve_source
from ftaudit.probes.base import run_probes
from ftaudit.probes.degradation import build_degradation_probes
from ftaudit.probes.mlm import choose_masked, load_masked_lm, masked_token_scores
from ftaudit.probes.text import wikitext_sentences
from tests.conftest import compose_config
from tests.probes.test_degradation import degradation_overrides, perturb_encoder, tiny_context


def save_tiny_masked_lm(directory: Path) -> Path:
    """``model=tiny`` turned into a 'pretrained' checkpoint that has an MLM head, saved in ``directory``."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    tiny = compose_config("model=tiny").model
    config = AutoConfig.from_pretrained(resolve_source(tiny.name_or_path), **tiny.random_init)
    torch.manual_seed(0)
    AutoModelForMaskedLM.from_config(config).save_pretrained(directory)
    load_tokenizer(tiny).save_pretrained(directory)
    return directory


def tiny_masked_lm_config(tmp_path: Path, *overrides: str):
    directory = save_tiny_masked_lm(tmp_path / "tiny-mlm")
    return compose_config(
        "model=tiny",
        f"model.name_or_path={directory}",
        "model.random_init=null",
        *degradation_overrides(tmp_path, "mlm"),
        *overrides,
    )


def test_masking_picks_the_ratio_of_candidates_per_row_reproducibly():
    candidates = torch.zeros(3, 30, dtype=torch.bool)
    candidates[0, 1:21] = True  # 20 candidates -> 3 masked
    candidates[1, 1:4] = True  # 3 candidates -> at least 1 masked
    candidates[2, 5:25] = True
    masked = choose_masked(candidates, 0.15, torch.Generator().manual_seed(0))
    assert masked.sum(1).tolist() == [3, 1, 3]
    assert not (masked & ~candidates).any()
    assert torch.equal(masked, choose_masked(candidates, 0.15, torch.Generator().manual_seed(0)))
    assert not torch.equal(masked, choose_masked(candidates, 0.15, torch.Generator().manual_seed(1)))


def test_skipped_for_random_init_and_for_a_checkpoint_without_head(tmp_path):
    for model in ("tiny", "minilm"):
        cfg = compose_config(f"model={model}", *degradation_overrides(tmp_path, "mlm"))
        metrics, skipped = run_probes(build_degradation_probes(cfg), tiny_context(cfg, tmp_path))
        assert metrics == {}
        assert ("random-init" if model == "tiny" else "no pretrained masked-LM head") in skipped["degradation/mlm"]


def test_untrained_model_loses_nothing(tmp_path):
    cfg = tiny_masked_lm_config(tmp_path)
    metrics, skipped = run_probes(build_degradation_probes(cfg), tiny_context(cfg, tmp_path))
    assert skipped == {}
    assert 0 <= metrics["degradation/mlm/base"] <= 100
    assert metrics["degradation/mlm/pseudo_perplexity/base"] > 1
    assert metrics["degradation/mlm/drop"] == 0.0 == metrics["degradation/mlm/pseudo_perplexity/drop"]


def test_a_sentence_classifier_with_a_pooler_is_probed_too(tmp_path):
    """Its encoder holds a pooler that the masked LM's has not: the probe compares the weights they share."""
    cfg = tiny_masked_lm_config(tmp_path)
    context = tiny_context(cfg, tmp_path, head="AutoModelForSequenceClassification")
    assert any(".pooler." in key for key in context.base_state)
    metrics, skipped = run_probes(build_degradation_probes(cfg), context)
    assert skipped == {} and metrics["degradation/mlm/drop"] == 0.0


def test_fine_tuned_side_is_the_pretrained_head_on_the_fine_tuned_encoder(tmp_path):
    cfg = tiny_masked_lm_config(tmp_path)
    context = tiny_context(cfg, tmp_path)
    perturb_encoder(context.model, scale=0.5)
    metrics, _ = run_probes(build_degradation_probes(cfg), context)

    masked_lm, missing = load_masked_lm(cfg.model.name_or_path)
    assert missing == []
    settings = cfg.probes.degradation_settings
    texts = wikitext_sentences(Path(settings.mlm.dir) / "wiki.test.raw", settings.mlm.sentences, settings.mlm.seed)

    def scores():
        return masked_token_scores(
            masked_lm,
            context.tokenizer,
            texts,
            settings.batch_size,
            settings.mlm.max_length,
            settings.mlm.mask_ratio,
            settings.mlm.seed,
        )

    base = scores()
    masked_lm.base_model.load_state_dict(context.model.base_model.state_dict())
    finetuned = scores()
    assert metrics["degradation/mlm/base"] == base["accuracy"]
    assert metrics["degradation/mlm/finetuned"] == finetuned["accuracy"]
    assert metrics["degradation/mlm/pseudo_perplexity/finetuned"] == finetuned["pseudo_perplexity"]
    assert finetuned["pseudo_perplexity"] != base["pseudo_perplexity"]
