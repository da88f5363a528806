"""Loading a fine-tuned model to audit, and the base it was fine-tuned from.

The fine-tuned model is a transformers model (a folder or a hub id), a peft adapter folder, or an ftaudit run
directory (its saved model). Its base is the one given (``base.name_or_path``), else the one its model card records
(``base_model_source``, where an ftaudit run read it, else ``base_model``), else, for an adapter, the one peft
recorded. The probes compare the two with the base's encoder weights under the fine-tuned model's head, so that every
weight name matches (``base_state``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ftaudit.errors import ConfigError
from ftaudit.models.loading import load_classifier, resolve_source, unreachable
from ftaudit.quiet import peft_quiet

ADAPTER_CONFIG = "adapter_config.json"


@dataclass
class FineTunedModel:
    model: torch.nn.Module  # a plain classifier (an adapter merged into its base), in eval mode
    labels: list[str]  # in id order
    source: str  # the folder or hub id it was read from
    form: str  # "transformers" or "peft adapter"
    base: str  # the base checkpoint
    base_named_by: str  # who named the base
    base_state: dict[str, torch.Tensor]  # the base's encoder weights and the fine-tuned head, keys as model's


def model_card(source: str):
    """The model card's metadata (``huggingface_hub.ModelCardData``) of a folder or hub id; None if there is none."""
    from huggingface_hub import ModelCard

    card = Path(source) / "README.md"
    try:
        return ModelCard.load(card if card.is_file() else source).data
    except Exception:  # noqa: BLE001 - no card, no network, or a card that does not parse: nothing recorded
        return None


def with_base_encoder(
    finetuned: torch.nn.Module, base_weights: dict[str, torch.Tensor], base_source: str
) -> dict[str, torch.Tensor]:
    """``finetuned``'s weights with its encoder's replaced by the base's (CPU copies); the head stays the fine-tuned
    one."""
    prefix = finetuned.base_model_prefix + "."
    state = {}
    for key, value in finetuned.state_dict().items():
        if key.startswith(prefix):
            if key not in base_weights or base_weights[key].shape != value.shape:
                raise ConfigError(
                    f"base {base_source} is not the fine-tuned model's base: its encoder lacks {key} "
                    f"{tuple(value.shape)}; give the right one with base.name_or_path=..."
                )
            value = base_weights[key]
        state[key] = value.detach().to("cpu", copy=True)
    return state


def load_base(source: str, head: str, labels: list[str]) -> torch.nn.Module:
    return load_classifier(
        OmegaConf.create({"name_or_path": source, "random_init": None, "dropout": None}), head, labels
    )


def base_source(base_cfg: DictConfig, card, adapter_base: str | None, model: str) -> tuple[str, str]:
    if base_cfg.name_or_path:
        return str(base_cfg.name_or_path), "base.name_or_path"
    if card is not None and getattr(card, "base_model_source", None):  # where ftaudit's run read the base
        return str(card.base_model_source), "its model card (base_model_source)"
    if card is not None and card.base_model:
        return str(card.base_model), "its model card (base_model)"
    if adapter_base:
        return adapter_base, f"its {ADAPTER_CONFIG} (base_model_name_or_path)"
    raise ConfigError(
        f"{model} records no base model (it was trained from a random initialisation, or its card names "
        "none): give the checkpoint it was fine-tuned from with base.name_or_path=..."
    )


def load_finetuned(model_cfg: DictConfig, base_cfg: DictConfig, head: str) -> FineTunedModel:
    """The fine-tuned model ``model.name_or_path`` with a task's ``head`` (a transformers auto class), and its base."""
    import transformers

    source = resolve_source(model_cfg.name_or_path)
    card = model_card(source)
    if (Path(source) / ADAPTER_CONFIG).is_file():
        return load_adapter(source, card, base_cfg, head)
    try:
        model = getattr(transformers, head).from_pretrained(source)
    except OSError as err:
        raise unreachable("model", source, err) from None
    labels = [model.config.id2label[index] for index in range(model.config.num_labels)]
    base, named_by = base_source(base_cfg, card, None, source)
    base_state = with_base_encoder(model, load_base(base, head, labels).state_dict(), base)
    return FineTunedModel(model.eval(), labels, source, "transformers", base, named_by, base_state)


def load_adapter(source: str, card, base_cfg: DictConfig, head: str) -> FineTunedModel:
    """A peft adapter folder, on its base with the labels its model card records, merged into a plain model."""
    from peft import PeftConfig, PeftModel

    labels = getattr(card, "labels", None)
    if not labels:
        raise ConfigError(
            f"adapter {source} records no labels (its README.md front matter has no 'labels' list, as "
            "ftaudit writes it); add the model's label names in id order there"
        )
    base, named_by = base_source(base_cfg, card, PeftConfig.from_pretrained(source).base_model_name_or_path, source)
    model = load_base(base, head, labels)
    base_weights = {key: value.detach().clone() for key, value in model.state_dict().items()}  # merging changes them
    with peft_quiet():
        model = PeftModel.from_pretrained(model, source).merge_and_unload()
    base_state = with_base_encoder(model, base_weights, base)
    return FineTunedModel(model.eval(), list(labels), source, "peft adapter", base, named_by, base_state)
