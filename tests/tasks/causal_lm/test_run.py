"""task=causal_lm end to end on the tiny Llama: a LoRA run on labelled prompts records the response loss (the headline,
minimised), label ranking and free answers, the decoder probes and a reloadable model; its audit reproduces its
scores; a full fine-tune on free-text pairs records exact match and saves a plain model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from transformers import AutoModelForCausalLM, AutoTokenizer

from ftaudit.config import CONFIG_DIR
from ftaudit.errors import Interrupted
from ftaudit.models.causal import load_causal_lm, load_causal_tokenizer
from ftaudit.run import train
from tests.conftest import FIXTURE_PHRASEBANK, compose_config, run_script
from tests.test_resume import CtrlCAtEpoch

pytestmark = pytest.mark.slow

SMALL_PROBES = [
    "probes=llm",
    "probes.degradation=[wikitext2,arc_easy,crows_pairs]",
    "probes.degradation_settings.wikitext2.max_tokens=256",
    "probes.degradation_settings.wikitext2.context=64",
    "probes.degradation_settings.wikitext2.stride=32",
    "probes.degradation_settings.wikitext2.resamples=50",
    "probes.degradation_settings.arc_easy.sample_size=8",
    "probes.degradation_settings.arc_easy.resamples=50",
    "probes.degradation_settings.crows_pairs.sample_size=12",
    "probes.degradation_settings.crows_pairs.resamples=50",
    "probes.fairness.sentences=4",
    "probes.fairness.resamples=50",
]
RUN = [
    "task=causal_lm",
    "model=tiny-llama",
    "model.random_init=null",
    "data=phrasebank",
    f"data.dir={FIXTURE_PHRASEBANK}",
    "data.batch_size=8",
    "trainer.max_epochs=2",
    "trainer.progress_bar=false",
    "hardware.num_threads=1",
    "task.max_new_tokens=4",
    "logger=none",
]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """The tiny Llama's random weights saved as a pretrained model, so that there is a base to compare with."""
    folder = tmp_path_factory.mktemp("tiny-llama-base")
    cfg = OmegaConf.load(CONFIG_DIR / "model" / "tiny-llama.yaml")
    torch.manual_seed(0)
    load_causal_lm(cfg).save_pretrained(folder)
    load_causal_tokenizer(cfg).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def lora_run(base, tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("causal-lora")
    result = run_script(
        *RUN, f"model.name_or_path={base}", "method=lora", "record.save_merged=true", *SMALL_PROBES, cwd=cwd
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (cwd / "outputs" / "runs").iterdir()
    return run_dir


def read(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / name).read_text(encoding="utf-8"))


def test_the_run_records_the_response_loss_as_a_minimised_headline_and_label_scores(lora_run):
    metrics, declared = read(lora_run, "metrics.json"), read(lora_run, "metrics_info.json")
    assert declared.keys() == metrics.keys()
    assert declared["task/val_loss"] == {"split": "validation", "higher_is_better": False}
    assert declared["task/test_perplexity"] == {"split": "test", "higher_is_better": False}
    assert declared["task/test_accuracy"] == {"split": "test", "higher_is_better": True}
    assert declared["task/test_generation_accuracy"] == {"split": "test", "higher_is_better": True}
    assert metrics["task/test_perplexity"] == pytest.approx(2.718281828 ** metrics["task/test_loss"], rel=1e-4)
    assert 0 <= metrics["task/test_ece"] <= 1 and 0 <= metrics["task/test_accuracy"] <= 1
    env = read(lora_run, "env.json")
    assert env["data"]["label_responses"] == ["negative", "neutral", "positive"]
    assert env["data"]["chat_template"] is True and env["data"]["train_on_prompt"] is False
    assert {"truncated", "prompt_tokens", "response_tokens"} <= env["data"]["splits"]["train"].keys()


def test_the_run_records_the_decoder_probes_base_against_fine_tuned(lora_run):
    metrics, declared = read(lora_run, "metrics.json"), read(lora_run, "metrics_info.json")
    for key in (
        "degradation/wikitext2/drop",
        "degradation/wikitext2/drop_ci_low",
        "degradation/arc_easy/drop",
        "degradation/arc_easy/acc_norm/drop",
        "fairness/crows_pairs/change",
        "fairness/names/answer_changed",
        "fairness/names/response_logprob_gap_p_value",
    ):
        assert key in metrics and declared[key]["split"] in ("test", "validation"), key


def test_the_saved_model_reloads_and_its_card_runs(lora_run, base):
    merged = lora_run / "merged_model"
    assert {"model.safetensors", "generation_config.json", "chat_template.jinja"} <= {p.name for p in merged.iterdir()}
    reloaded = AutoModelForCausalLM.from_pretrained(merged)
    tokenizer = AutoTokenizer.from_pretrained(lora_run / "model")
    assert tokenizer.chat_template and reloaded.config.num_hidden_layers == 2
    card = (lora_run / "model" / "README.md").read_text(encoding="utf-8")
    assert f"base_model: {base}" in card and "library_name: peft" in card
    (snippet,) = re.findall(r"```python\n(.*?)```", card, flags=re.DOTALL)
    exec(snippet.replace("path/to/this/folder", str(lora_run / "model")), {})  # the card's own loading code


def test_the_audit_of_the_adapter_reproduces_the_run(lora_run, tmp_path):
    result = run_script(
        *(o for o in RUN if not o.startswith("trainer.")),  # an audit trains nothing
        f"model.name_or_path={lora_run / 'model'}",
        *SMALL_PROBES,
        cwd=tmp_path,
        script="audit.py",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (audit_dir,) = (tmp_path / "outputs" / "audits").iterdir()
    trained, audited = read(lora_run, "metrics.json"), read(audit_dir, "metrics.json")
    for key in ("task/test_loss", "task/test_accuracy", "degradation/wikitext2/drop", "fairness/crows_pairs/change"):
        assert audited[key] == pytest.approx(trained[key], abs=1e-4), key
    assert read(audit_dir, "env.json")["audit"]["form"] == "peft adapter"


def test_a_full_fine_tune_on_free_text_records_exact_match(base, tmp_path):
    for split in ("train", "validation", "test"):
        pairs = [{"prompt": f"Repeat: {word}", "response": word} for word in ("alpha", "beta", "gamma", "delta") * 4]
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    overrides = [o for o in RUN if not o.startswith("data")] + ["data=jsonl", f"data.dir={tmp_path}"]
    result = run_script(
        *overrides,
        f"model.name_or_path={base}",
        "method=full",
        "probes.degradation=[]",
        "probes.fairness.enabled=false",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    metrics = read(run_dir, "metrics.json")
    assert 0 <= metrics["task/test_exact_match"] <= 1 and "task/test_accuracy" not in metrics
    AutoModelForCausalLM.from_pretrained(run_dir / "model")
    assert (run_dir / "model" / "generation_config.json").is_file()


def test_a_decoder_run_stopped_after_an_epoch_resumes_to_the_uninterrupted_scores(base, tmp_path):
    overrides = [
        *(o for o in RUN if o != "logger=none"),  # compose_config sets it
        f"model.name_or_path={base}",
        "method=lora",
        "probes.degradation=[]",
        "probes.fairness.enabled=false",
        "record.save_model=false",
    ]
    expected = train(compose_config(*overrides), tmp_path / "whole")
    run_dir = tmp_path / "interrupted"
    with pytest.raises(Interrupted, match=f"trainer.resume={run_dir}"):
        train(compose_config(*overrides), run_dir, callbacks=[CtrlCAtEpoch(1)])
    metrics = train(compose_config(*overrides, f"trainer.resume={run_dir}"), run_dir)
    scores = {key: value for key, value in metrics.items() if key.startswith("task/")}
    assert scores == {key: value for key, value in expected.items() if key.startswith("task/")}
