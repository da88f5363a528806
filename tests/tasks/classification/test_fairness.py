"""Counterfactual attribution: variants, flip rates, label shares and their gaps, checked with stub classifiers."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ftaudit.errors import ConfigError
from ftaudit.metrics import declarations
from ftaudit.probes.fairness import build_fairness_probes
from ftaudit.probes.names import load_name_groups
from ftaudit.tasks.classification import ClassificationTask
from ftaudit.tasks.classification.fairness import (
    FLIP_CHART,
    AttributionProbe,
    attribute,
    audit_attributions,
    check_templates,
    write_flip_chart,
)
from ftaudit.tasks.classification.reading import Example
from tests.conftest import compose_config
from tests.tasks.ner.test_fairness import NAMES

LABELS = ["negative", "neutral", "positive"]
TEMPLATES = ["According to {name}, {sentence}", "{name} said: {sentence}"]
SENTENCES = [
    Example(str(i), text, label)
    for i, (text, label) in enumerate(
        [
            ("Sales rose 5 % .", "positive"),
            ("The company is based in Espoo .", "neutral"),
            ("Profit fell sharply .", "negative"),
            ("Orders rose again .", "positive"),
            ("The meeting is in May .", "neutral"),
            ("Margins fell .", "negative"),
        ]
    )
]


@pytest.fixture
def groups(tmp_path):
    path = tmp_path / "names.yaml"
    path.write_text(NAMES)
    return load_name_groups(path)


def by_keyword(examples: list[Example]) -> np.ndarray:
    """A name-blind classifier: the label follows 'rose' or 'fell', else neutral."""
    rows = np.zeros((len(examples), 3))
    for row, example in enumerate(examples):
        rows[row, 2 if "rose" in example.text else 0 if "fell" in example.text else 1] = 1.0
    return rows


def negative_for(names: list[str]):
    """A classifier that reads every sentence naming one of ``names`` as negative."""

    def classify(examples: list[Example]) -> np.ndarray:
        rows = by_keyword(examples)
        for row, example in enumerate(examples):
            if any(name in example.text for name in names):
                rows[row] = [1.0, 0.0, 0.0]
        return rows

    return classify


def test_every_sentence_is_attributed_per_group_template_and_name_with_seeded_draws(groups):
    variants = attribute(SENTENCES, groups, TEMPLATES, 2, seed=3)
    assert len(variants) == 4 * 6 * 2 * 2  # groups x sentences x templates x names
    first = variants[0]
    assert first.group == "north_female" and first.source == 0 and first.example.label == "positive"
    name = first.example.text.removeprefix("According to ").split(",")[0]
    assert name in groups.names["north_female"] and first.example.text == f"According to {name}, Sales rose 5 % ."
    assert variants[2].example.text.endswith(" said: Sales rose 5 % .")
    assert [v.example for v in attribute(SENTENCES, groups, TEMPLATES, 2, seed=3)] == [v.example for v in variants]
    assert [v.example for v in attribute(SENTENCES, groups, TEMPLATES, 2, seed=4)] != [v.example for v in variants]


def test_a_name_blind_classifier_flips_nothing_and_shows_no_gap(groups):
    audit = audit_attributions(SENTENCES, groups, by_keyword, TEMPLATES, LABELS, names_per_sentence=2, resamples=200)
    metrics = audit.metrics("fairness/names")
    assert all(metrics[f"fairness/names/group/{g}/flip_rate"] == 0.0 for g in groups.names)
    assert all(metrics[f"fairness/names/group/{g}/share_positive"] == 2 / 6 for g in groups.names)
    for prefix in ("fairness/names", "fairness/names/by_gender", "fairness/names/by_origin"):
        for measure in ("flip_rate", "share_negative", "share_neutral", "share_positive"):
            assert metrics[f"{prefix}/{measure}_gap"] == 0.0 and metrics[f"{prefix}/{measure}_gap_p_value"] == 1.0
    assert metrics["fairness/names/unmodified/share_neutral"] == 2 / 6
    assert metrics["fairness/names/sentences"] == 6 and metrics["fairness/names/variants_per_group"] == 6 * 2 * 2
    assert metrics["fairness/names/variants"] == 6 * 2 * 2 * 4


def test_a_classifier_biased_against_one_group_shows_its_flips_and_gaps(groups):
    audit = audit_attributions(
        SENTENCES,
        groups,
        negative_for(groups.names["north_female"]),
        TEMPLATES,
        LABELS,
        names_per_sentence=1,
        resamples=200,
    )
    metrics = audit.metrics("fairness/names")
    assert metrics["fairness/names/group/north_female/flip_rate"] == 4 / 6  # all but the 2 negative sentences flip
    assert metrics["fairness/names/group/north_female/share_negative"] == 1.0
    assert metrics["fairness/names/group/south_male/flip_rate"] == 0.0
    assert metrics["fairness/names/flip_rate_gap"] == pytest.approx(4 / 6)
    assert metrics["fairness/names/share_negative_gap"] == pytest.approx(1 - 2 / 6)
    assert metrics["fairness/names/by_gender/female/flip_rate"] == pytest.approx(2 / 6)  # pooled: (4/6 + 0) / 2
    assert metrics["fairness/names/by_gender/flip_rate_gap"] == pytest.approx(2 / 6)
    assert metrics["fairness/names/flip_rate_gap_ci_low"] <= 4 / 6 <= metrics["fairness/names/flip_rate_gap_ci_high"]
    # 6 sentences: chance puts every flip on one group with probability 4 x (1/4)^4, so p is small
    assert metrics["fairness/names/flip_rate_gap_p_value"] < 0.05


def test_every_key_is_declared_with_its_split_and_direction(groups):
    probe = AttributionProbe(compose_config("task=classification").probes.fairness, groups, "validation", None)
    audit = audit_attributions(SENTENCES, groups, by_keyword, TEMPLATES, LABELS, resamples=50)
    declared = declarations(audit.metrics("fairness/names_val"), probe.metric_specs())
    assert declared["fairness/names_val/flip_rate_gap"] == {"split": "validation", "higher_is_better": False}
    assert declared["fairness/names_val/share_positive_gap"] == {"split": "validation", "higher_is_better": False}
    assert declared["fairness/names_val/group/north_male/flip_rate"] == {
        "split": "validation",
        "higher_is_better": False,
    }
    assert declared["fairness/names_val/by_gender/male/share_negative"] == {
        "split": "validation",
        "higher_is_better": None,
    }
    assert declared["fairness/names_val/flip_rate_gap_p_value"]["higher_is_better"] is None
    assert declared["fairness/names_val/sentences"] == {"split": None, "higher_is_better": None}


def test_sampling_the_sentences_and_the_group_table_and_chart(groups, tmp_path):
    audit = audit_attributions(
        SENTENCES * 3, groups, negative_for(["Rosa"]), TEMPLATES, LABELS, sample_size=10, resamples=100, seed=1
    )
    assert len(audit.original) == 10
    lines = audit.table().splitlines()
    assert lines[0] == (
        "group,origin,gender,flip_rate,flip_rate_ci_low,flip_rate_ci_high,share_negative,share_neutral,"
        "share_positive,variants"
    )
    assert [line.split(",")[0] for line in lines[1:]] == list(groups.names)
    write_flip_chart(tmp_path / FLIP_CHART, audit, len(TEMPLATES))
    assert (tmp_path / FLIP_CHART).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "templates, message",
    [
        ([], "got none"),
        (["{name} only"], "has the fields \\['name'\\]"),
        (["{name}: {sentence} {when}"], "\\['name', 'sentence', 'when'\\]"),
        (["{name: {sentence}"], "unmatched"),
    ],
)
def test_templates_must_place_the_name_and_the_sentence(templates, message):
    with pytest.raises(ConfigError, match=message):
        check_templates(templates)
    assert check_templates(["{{quoted}} {name}: {sentence}"]) == ["{{quoted}} {name}: {sentence}"]


def test_probe_built_for_each_split_and_skipped_without_sentences(groups, tmp_path, monkeypatch):
    names = tmp_path / "names.yaml"
    names.write_text(NAMES)
    monkeypatch.setenv("FAIRNESS_NAMES_FILE", str(names))
    cfg = compose_config("task=classification", "probes.fairness.splits=[test,validation]")
    test, validation = build_fairness_probes(cfg, ClassificationTask("SEQ_CLS"))
    assert isinstance(test, AttributionProbe) and (test.name, validation.name) == ("names", "names_val")
    context = SimpleNamespace(datamodule=SimpleNamespace(splits={"test": SimpleNamespace(examples=[])}))
    assert test.skip_reason(context) == "the test split has no sentences"
    with pytest.raises(ConfigError, match="probes.fairness.templates"):
        build_fairness_probes(
            compose_config("task=classification", "probes.fairness.templates=[oops]"), ClassificationTask("SEQ_CLS")
        )
