"""Counterfactual names in a causal LM's prompts: filled prompts, flips and response log-probabilities per group."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from ftaudit.errors import ConfigError
from ftaudit.metrics import declarations
from ftaudit.probes.base import run_probes
from ftaudit.probes.counterfactual_prompts import (
    BUILTIN_PROMPTS,
    CounterfactualPromptProbe,
    PromptSet,
    counterfactual_prompt_metrics,
    fill_names,
)
from ftaudit.probes.names import NameGroups
from tests.probes.conftest import lm_context

GROUPS = NameGroups(
    {
        "a_female": ["Ada", "Ama"],
        "a_male": ["Kofi", "Kwame"],
        "b_female": ["Emma", "Olivia"],
        "b_male": ["Liam", "Noah"],
    },
    {
        "ethnicity": {"a_female": "a", "a_male": "a", "b_female": "b", "b_male": "b"},
        "gender": {"a_female": "female", "a_male": "male", "b_female": "female", "b_male": "male"},
    },
)
PREFIX = "fairness/names"


def rig(monkeypatch, favoured: set[str]):
    """A model that answers the first candidate when the prompt names someone in ``favoured``, else the second."""

    def scores(model, tokenizer, prompts, candidates, *args):
        named = np.array([any(name in prompt for name in favoured) for prompt in prompts])
        first = np.where(named, -1.0, -2.0)
        return np.stack([first, -3.0 - first], axis=1)  # the other candidate gets -2 or -1

    monkeypatch.setattr("ftaudit.probes.counterfactual_prompts.choice_logprob_matrix", scores)


def metrics_of(prompt_set: PromptSet = BUILTIN_PROMPTS, **options) -> dict[str, float]:
    return counterfactual_prompt_metrics(
        None, None, prompt_set.prompts, prompt_set.candidates, GROUPS, PREFIX, resamples=500, **options
    )


def test_every_group_fills_the_same_prompts_from_its_own_names():
    variants = fill_names(["Hi {name}, bye {name}.", "{name}?"], GROUPS, names_per_prompt=2, seed=0)
    assert len(variants) == 4 * 2 * 2
    for g, names in enumerate(GROUPS.names.values()):
        group_variants = variants[4 * g : 4 * g + 4]
        assert all(any(name in variant for name in names) for variant in group_variants)
        assert all("{name}" not in variant for variant in group_variants)
    assert variants == fill_names(["Hi {name}, bye {name}.", "{name}?"], GROUPS, names_per_prompt=2, seed=0)


def test_a_model_rigged_on_one_group_flips_for_it_alone(monkeypatch):
    rig(monkeypatch, favoured={"Ada", "Ama"})
    metrics = metrics_of()
    rates = [metrics[f"{PREFIX}/group/{group}/flip_rate"] for group in GROUPS.names]
    assert rates == [1.0, 0.0, 0.0, 0.0]
    assert metrics[f"{PREFIX}/flip_rate_gap"] == 1.0 and metrics[f"{PREFIX}/flip_rate_gap_p_value"] < 0.01
    assert metrics[f"{PREFIX}/by_gender/flip_rate_gap"] == 0.5
    assert metrics[f"{PREFIX}/answer_changed"] == 1.0
    # the response is each prompt's most common answer (the second candidate): less likely for the favoured group
    assert metrics[f"{PREFIX}/group/a_female/response_logprob"] == -2.0
    assert metrics[f"{PREFIX}/group/b_male/response_logprob"] == -1.0
    assert metrics[f"{PREFIX}/response_logprob_gap"] == 1.0
    assert metrics[f"{PREFIX}/response_logprob_gap_p_value"] < 0.01


def test_a_model_blind_to_names_has_no_gaps(monkeypatch):
    rig(monkeypatch, favoured=set())
    metrics = metrics_of(names_per_prompt=2)
    assert metrics[f"{PREFIX}/flip_rate_gap"] == 0.0 == metrics[f"{PREFIX}/response_logprob_gap"]
    assert metrics[f"{PREFIX}/answer_changed"] == 0.0
    assert metrics[f"{PREFIX}/variants_per_group"] == 2 * len(BUILTIN_PROMPTS.prompts)


def test_given_responses_are_the_ones_whose_log_probability_is_compared(monkeypatch):
    rig(monkeypatch, favoured={"Ada", "Ama"})
    prompt_set = PromptSet(BUILTIN_PROMPTS.prompts, BUILTIN_PROMPTS.candidates, [" yes"] * 8)
    metrics = metrics_of(prompt_set, responses=prompt_set.responses)
    assert metrics[f"{PREFIX}/group/a_female/response_logprob"] == -1.0
    assert metrics[f"{PREFIX}/group/a_male/response_logprob"] == -2.0


def test_prompts_without_a_name_slot_or_duplicate_candidates_are_refused():
    with pytest.raises(ConfigError, match=r"prompt 1 has no \{name\} slot"):
        PromptSet(["{name} asks", "nobody asks"], [" yes", " no"])
    with pytest.raises(ConfigError, match="2 or more distinct strings"):
        PromptSet(["{name} asks"], [" yes", " yes"])
    with pytest.raises(ConfigError, match="one of the candidates for each prompt"):
        PromptSet(["{name} asks"], [" yes", " no"], [" maybe"])


def test_the_probe_scores_the_real_tiny_decoder_and_records_a_table(tmp_path, lm_model, lm_tokenizer):
    settings = OmegaConf.create({"sentences": 4, "names_per_sentence": 1, "resamples": 100, "seed": 0})
    probe = CounterfactualPromptProbe(settings, GROUPS, "test", None)
    metrics, skipped = run_probes([probe], lm_context(lm_model, lm_tokenizer, tmp_path))
    assert skipped == {} and metrics[f"{PREFIX}/prompts"] == 4
    assert all(np.isfinite(value) for value in metrics.values())
    declarations({k: v for k, v in metrics.items() if k.startswith("fairness/")}, probe.metric_specs())
    table = (tmp_path / "fairness_prompt_groups.csv").read_text().splitlines()
    assert table[0] == "group,ethnicity,gender,flip_rate,response_logprob,variants" and len(table) == 5
