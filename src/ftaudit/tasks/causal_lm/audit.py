"""The fine-tuned causal LM to audit and its base: a model folder (or run directory, or hub id), or a peft adapter
merged into its base. Unlike a classifier, a causal LM has no fresh head: every weight of the base is compared."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ftaudit.errors import ConfigError
from ftaudit.models.causal import load_causal_lm
from ftaudit.models.finetuned import ADAPTER_CONFIG, FineTunedModel, base_source, model_card
from ftaudit.models.loading import resolve_source
from ftaudit.quiet import peft_quiet


def plain_model_cfg(source: str) -> DictConfig:
    return OmegaConf.create({"name_or_path": source, "gguf_file": None, "random_init": None, "dropout": None})


def load_audited_lm(model_cfg: DictConfig, base_cfg: DictConfig) -> FineTunedModel:
    """``model.name_or_path`` (its adapter merged) in eval mode, and its base's weights under the same names."""
    from peft import PeftConfig, PeftModel

    source = resolve_source(model_cfg.name_or_path)
    card = model_card(source)
    adapter = (Path(source) / ADAPTER_CONFIG).is_file()
    adapter_base = PeftConfig.from_pretrained(source).base_model_name_or_path if adapter else None
    base, named_by = base_source(base_cfg, card, adapter_base, source)
    base_model = load_causal_lm(plain_model_cfg(base))
    base_state = {key: value.detach().clone() for key, value in base_model.state_dict().items()}
    if adapter:
        with peft_quiet():
            model = PeftModel.from_pretrained(base_model, source).merge_and_unload()
    else:
        model = load_causal_lm(plain_model_cfg(source))
    mismatched = [
        key
        for key, value in model.state_dict().items()
        if key not in base_state or base_state[key].shape != value.shape
    ]
    if mismatched:
        raise ConfigError(
            f"base {base} is not the base of {source}: its weights lack or differ in shape at {mismatched[0]} "
            f"({len(mismatched)} in all); give the right one with base.name_or_path=..."
        )
    form = "peft adapter" if adapter else "transformers"
    return FineTunedModel(model.eval(), [], source, form, base, named_by, base_state)
