"""Which base an audited model is compared against, and who named it."""

from __future__ import annotations

import pytest
from huggingface_hub import ModelCardData
from omegaconf import OmegaConf

from ftaudit.errors import ConfigError
from ftaudit.models.finetuned import base_source

NO_BASE_GIVEN = OmegaConf.create({"name_or_path": None})


def test_the_card_s_recorded_source_wins_over_its_hub_id():
    card = ModelCardData(base_model="sentence-transformers/all-MiniLM-L6-v2", base_model_source="package:x/model")
    assert base_source(NO_BASE_GIVEN, card, None, "run/model") == (
        "package:x/model",
        "its model card (base_model_source)",
    )
    hub_only = ModelCardData(base_model="bert-base-cased")
    assert base_source(NO_BASE_GIVEN, hub_only, None, "m") == ("bert-base-cased", "its model card (base_model)")


def test_the_given_base_wins_and_none_at_all_is_refused():
    card = ModelCardData(base_model="a", base_model_source="b")
    given = OmegaConf.create({"name_or_path": "/models/base"})
    assert base_source(given, card, "c", "m") == ("/models/base", "base.name_or_path")
    with pytest.raises(ConfigError, match="records no base model"):
        base_source(NO_BASE_GIVEN, ModelCardData(), None, "m")
