"""Loading tokenizers and classifiers from local paths, installed packages or the hub."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ftaudit.errors import ConfigError

PACKAGE_PREFIX = "package:"
# Where a run directory keeps its fine-tuned model (record.save_model): the plain merged model of a peft run first.
SAVED_MODEL_FOLDERS = ("merged_model", "model")


def is_run_directory(path: Path) -> bool:
    """A finished ftaudit run: its record (``metrics.json``, ``config.yaml``) is in the folder."""
    return (path / "metrics.json").is_file() and (path / "config.yaml").is_file()


def resolve_source(spec: str) -> str:
    """``package:NAME/sub/dir`` -> that folder inside an installed Python package; an ftaudit run directory -> the
    model it saved; anything else (a model folder, a hub id) as-is."""
    if not spec.startswith(PACKAGE_PREFIX):
        return saved_model(Path(spec).expanduser()) if is_run_directory(Path(spec).expanduser()) else spec
    package, _, subdir = spec[len(PACKAGE_PREFIX) :].partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ConfigError(
            f"model source {spec!r} needs the Python package {package!r}: pip install {package.replace('_', '-')}"
        )
    return str(Path(list(found.submodule_search_locations)[0]) / subdir)


def saved_model(run_dir: Path) -> str:
    for name in SAVED_MODEL_FOLDERS:
        if (run_dir / name).is_dir():
            return str(run_dir / name)
    raise ConfigError(
        f"{run_dir} is an ftaudit run directory without a saved model (it ran with "
        "record.save_model=false); run it again with record.save_model=true"
    )


def unreachable(what: str, source: str, err: Exception) -> ConfigError:
    return ConfigError(
        f"cannot load {what} from {source!r} ({type(err).__name__}): it is neither a local model folder nor "
        "reachable on the hub; set model.name_or_path=/path/to/local/model"
    )


def load_tokenizer(model_cfg):
    from transformers import AutoTokenizer

    source = resolve_source(model_cfg.tokenizer or model_cfg.name_or_path)
    kwargs = dict(model_cfg.tokenizer_kwargs or {})
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as err:
        raise unreachable("tokenizer", source, err) from None
    if not tokenizer.is_fast:
        raise ConfigError(
            f"tokenizer of {source!r} is not a fast tokenizer; word alignment needs one (pick another model)"
        )
    return tokenizer


def load_classifier(model_cfg, head: str, labels: list[str], attn_implementation: str | None = None):
    """A pretrained encoder with a fresh classification head (``head``: a transformers auto class, e.g.
    ``AutoModelForTokenClassification``), or (``random_init``) a model built from a config; in eval mode.
    ``attn_implementation``: transformers' (``sdpa``, ``eager``; None: its default)."""
    import transformers
    from transformers import AutoConfig

    auto_class = getattr(transformers, head)
    source = resolve_source(model_cfg.name_or_path)
    label_maps = {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }
    try:
        if model_cfg.random_init:
            overrides = OmegaConf.to_container(model_cfg.random_init, resolve=True)
            config = AutoConfig.from_pretrained(source, **overrides, **label_maps)
            model = auto_class.from_config(config, attn_implementation=attn_implementation)
        else:
            model = auto_class.from_pretrained(source, **label_maps, attn_implementation=attn_implementation)
    except OSError as err:
        raise unreachable("model", source, err) from None
    if model_cfg.dropout is not None:
        set_dropout(model, model_cfg.dropout)
    return model.eval()  # as from_pretrained returns it, whichever way it was built: training switches modes itself


def set_dropout(model: torch.nn.Module, probability: float) -> None:
    """Every dropout of the model (embeddings, attention, hidden states, head) at ``probability``: architectures name
    it differently in their configs, but all apply ``nn.Dropout`` modules, whose ``p`` the attention reads too."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = probability
