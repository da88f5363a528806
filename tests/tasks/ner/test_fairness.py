"""Name substitution, recall gaps and their CIs, checked with stub taggers that need no model."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ftaudit.errors import ConfigError, DataError
from ftaudit.metrics import declarations
from ftaudit.probes.fairness import build_fairness_probes
from ftaudit.probes.names import load_name_groups
from ftaudit.probes.resampling import bootstrap_recalls, gap_and_ratio, p_value, permuted_recalls, pooled_recalls
from ftaudit.tasks.ner import NERTask
from ftaudit.tasks.ner.conll import Sentence
from ftaudit.tasks.ner.fairness import GROUP_TABLE, RECALL_CHART, NameSubstitutionProbe, audit_names, write_recall_chart
from ftaudit.tasks.ner.substitution import entity_spans, make_variants, sample_sentences, substitute
from tests.conftest import REPO, compose_config

NAMES = """# Group keys: <origin>_<gender>.
north_female: [Astrid, Ingrid, Mary Ann]
north_male: [Bjorn, Erik, Jan Willem]
south_female: [Lucia, Rosa]
south_male: [Mateo, Pablo, Juan Carlos]
"""

# Person spans sit between lowercase words, so a tagger that marks runs of capitalised words finds them exactly.
SENTENCES = [
    Sentence(
        "yesterday Peter Smith told the UN in Geneva that he was ready .".split(),
        ["O", "B-PER", "I-PER", "O", "O", "B-ORG", "O", "B-LOC", "O", "O", "O", "O", "O"],
    ),
    Sentence(
        "the coach said Hussain would play , and Wasim Akram would not .".split(),
        ["O", "O", "O", "B-PER", "O", "O", "O", "O", "B-PER", "I-PER", "O", "O", "O"],
    ),
    Sentence("shares in IBM rose 2 percent .".split(), ["O", "O", "B-ORG", "O", "O", "O", "O"]),
    Sentence("police said Ana was released .".split(), ["O", "O", "B-PER", "O", "O", "O"]),
    Sentence(
        "on monday , minister van der Berg resigned .".split(),
        ["O", "O", "O", "O", "B-PER", "I-PER", "I-PER", "O", "O"],
    ),
]


def capitalised_runs(sentence: list[str], missed: set[str] = frozenset()) -> list[str]:
    """Each maximal run of capitalised words (minus ``missed`` words) tagged as one PER span."""
    tags = []
    for word in sentence:
        if word[:1].isupper() and word not in missed:
            tags.append("I-PER" if tags and tags[-1] != "O" else "B-PER")
        else:
            tags.append("O")
    return tags


def capitalised_tagger(missed: set[str] = frozenset()):
    return lambda sentences: [capitalised_runs(s.tokens, missed) for s in sentences]


@pytest.fixture
def groups(tmp_path):
    path = tmp_path / "names.yaml"
    path.write_text(NAMES)
    return load_name_groups(path)


def test_names_file_and_key_pattern(groups):
    assert list(groups.names) == ["north_female", "north_male", "south_female", "south_male"]
    assert groups.names["north_female"] == ["Astrid", "Ingrid", "Mary Ann"]
    assert groups.attributes["gender"] == {
        "north_female": "female",
        "north_male": "male",
        "south_female": "female",
        "south_male": "male",
    }
    assert groups.members("origin") == {
        "north": ["north_female", "north_male"],
        "south": ["south_female", "south_male"],
    }


def test_attribute_names_from_config_override_the_file(tmp_path):
    path = tmp_path / "names.yaml"
    path.write_text(NAMES)
    assert list(load_name_groups(path, ["region", "sex"]).attributes) == ["region", "sex"]
    with pytest.raises(DataError, match="does not match the key pattern <a>_<b>_<c>"):
        load_name_groups(path, ["a", "b", "c"])
    path.write_text("alpha: [Ann]\nbeta: [Bob]\n")
    assert load_name_groups(path).attributes == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ("only: [Ann]\n", "at least 2 groups"),
        ("a: [Ann]\nb: Bob\n", "group 'b' must be a non-empty list"),
        ("a: [Ann]\nb: [Bob, no]\n", r"not names: \[False\]; quote them"),
        ("a: [Ann\nb: [Bob]\n", "not valid YAML"),
    ],
)
def test_malformed_names_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "names.yaml"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        load_name_groups(path)


def test_entity_spans_iob2_and_stray_inside():
    assert entity_spans(["B-PER", "I-PER", "O", "B-PER", "B-PER", "I-LOC"], "PER") == [(0, 2), (3, 4), (4, 5)]
    assert entity_spans(["O", "I-PER", "I-PER", "B-LOC"], "PER") == [(1, 3)]
    assert entity_spans(["O", "B-LOC"], "PER") == []


def test_substitution_keeps_every_other_token_and_tag():
    for sentence in SENTENCES:
        spans = entity_spans(sentence.tags, "PER")
        variant, new_spans = substitute(sentence, spans, ["Mary Ann"] * len(spans), "PER")

        def outside(s: Sentence, person_spans):
            inside = {i for start, end in person_spans for i in range(start, end)}
            return [(t, g) for i, (t, g) in enumerate(zip(s.tokens, s.tags)) if i not in inside]

        assert outside(variant, new_spans) == outside(sentence, spans)
        assert entity_spans(variant.tags, "PER") == new_spans
        assert all(variant.tokens[start:end] == ["Mary", "Ann"] for start, end in new_spans)


def test_multi_token_spans_are_replaced_and_realigned():
    sentence = SENTENCES[1]  # "Hussain" (one word) and "Wasim Akram" (two words)
    variant, spans = substitute(sentence, entity_spans(sentence.tags, "PER"), ["Juan Carlos Ortega", "Ana"], "PER")
    assert variant.tokens == "the coach said Juan Carlos Ortega would play , and Ana would not .".split()
    assert variant.tags == ["O", "O", "O", "B-PER", "I-PER", "I-PER", "O", "O", "O", "O", "B-PER", "O", "O", "O"]
    assert spans == [(3, 6), (10, 11)]
    three_words = SENTENCES[4]  # "van der Berg" -> one word
    variant, spans = substitute(three_words, entity_spans(three_words.tags, "PER"), ["Rosa"], "PER")
    assert variant.tokens == "on monday , minister Rosa resigned .".split() and spans == [(4, 5)]
    assert variant.tags == ["O", "O", "O", "O", "B-PER", "O", "O"]


def test_names_in_a_headline_are_written_in_capitals():
    headline = Sentence("SOCCER - BOWYER FINED .".split(), ["O", "O", "B-PER", "O", "O"])
    variant, _ = substitute(headline, [(2, 3)], ["Mary Ann"], "PER")
    assert variant.tokens == ["SOCCER", "-", "MARY", "ANN", "FINED", "."]


def test_sampling_keeps_only_person_sentences_in_order():
    assert sample_sentences(SENTENCES, None, 0, "PER") == [SENTENCES[i] for i in (0, 1, 3, 4)]
    sample = sample_sentences(SENTENCES, 2, 0, "PER")
    assert len(sample) == 2 and all(entity_spans(s.tags, "PER") for s in sample)
    assert sample == sorted(sample, key=SENTENCES.index)


def test_variants_are_seeded_and_groups_draw_independently(groups):
    people = sample_sentences(SENTENCES, None, 0, "PER")
    first = make_variants(people, groups, 3, seed=7, entity_type="PER")
    assert [v.sentence for v in first] == [v.sentence for v in make_variants(people, groups, 3, 7, "PER")]
    assert [v.sentence for v in first] != [v.sentence for v in make_variants(people, groups, 3, 8, "PER")]
    assert len(first) == 4 * 3 * 4  # groups x names per sentence x sentences with a person
    only_south = type(groups)({g: groups.names[g] for g in ("south_male", "south_female")}, {})
    reordered = make_variants(people, only_south, 3, 7, "PER")
    assert [v.sentence for v in first if v.group == "south_female"] == [
        v.sentence for v in reordered if v.group == "south_female"
    ]


def test_tagging_every_capitalised_word_gives_gap_zero(groups):
    audit = audit_names(SENTENCES, groups, capitalised_tagger(), names_per_sentence=3, resamples=200, seed=1)
    metrics = audit.metrics("fairness/names")
    assert all(metrics[f"fairness/names/group/{g}/recall"] == 1.0 for g in groups.names)
    for prefix in ("fairness/names", "fairness/names/by_gender", "fairness/names/by_origin"):
        assert metrics[f"{prefix}/recall_gap"] == 0.0 and metrics[f"{prefix}/recall_ratio"] == 1.0
        assert metrics[f"{prefix}/recall_gap_ci_low"] == metrics[f"{prefix}/recall_gap_ci_high"] == 0.0
        assert metrics[f"{prefix}/recall_gap_p_value"] == 1.0
    # the stub also tags "UN" and "Geneva" as PER: F1 is below 1 but alike for all groups
    f1 = {metrics[f"fairness/names/group/{g}/f1"] for g in groups.names}
    assert len(f1) == 1 and 0 < f1.pop() < 1
    assert metrics["fairness/names/sentences"] == 4
    assert metrics["fairness/names/substitutions_per_group"] == 5 * 3  # 5 person spans, 3 names each
    assert metrics["fairness/names/substitutions"] == 5 * 3 * 4


def test_missing_one_groups_names_gives_that_group_zero_and_gap_one(groups):
    missed = {word for name in groups.names["north_female"] for word in name.split()}
    audit = audit_names(SENTENCES, groups, capitalised_tagger(missed), names_per_sentence=2, resamples=200)
    metrics = audit.metrics("fairness/names")
    assert metrics["fairness/names/group/north_female/recall"] == 0.0
    assert all(metrics[f"fairness/names/group/{g}/recall"] == 1.0 for g in ("north_male", "south_female", "south_male"))
    assert metrics["fairness/names/recall_gap"] == 1.0 and metrics["fairness/names/recall_ratio"] == 0.0
    assert metrics["fairness/names/recall_gap_ci_low"] == metrics["fairness/names/recall_gap_ci_high"] == 1.0
    # per attribute: a value's recall pools its groups, so female = (0 + 1) / 2 against male = 1
    assert metrics["fairness/names/by_gender/female/recall"] == 0.5
    assert metrics["fairness/names/by_gender/male/recall"] == 1.0
    assert metrics["fairness/names/by_gender/recall_gap"] == 0.5
    assert metrics["fairness/names/by_origin/recall_gap"] == 0.5
    assert metrics["fairness/names/by_origin/recall_ratio"] == 0.5
    # 4 sentences: chance alone puts every miss on one group with probability 4 x (1/4)^4 = 1/64
    assert 0.005 < metrics["fairness/names/recall_gap_p_value"] < 0.05
    many = audit_names(SENTENCES * 4, groups, capitalised_tagger(missed), resamples=200).metrics("m")
    assert many["m/recall_gap_p_value"] == 1 / 201  # no permutation of 16 sentences reaches a gap of 1


def test_permutations_shuffle_only_within_strata():
    found = np.array([[1, 0, 2, 1], [0, 0, 1, 1], [1, 1, 1, 0], [0, 1, 0, 0]], dtype=float)
    spans = np.full(4, 2.0)
    null = permuted_recalls(found, spans, [[0, 1], [2, 3]], 300, seed=0)
    recalls = found.sum(axis=1) / spans.sum()
    assert np.allclose(null[:, 0] + null[:, 1], recalls[0] + recalls[1])
    assert np.allclose(null[:, 2] + null[:, 3], recalls[2] + recalls[3])
    assert len({tuple(row) for row in null}) > 1
    assert np.array_equal(null, permuted_recalls(found, spans, [[0, 1], [2, 3]], 300, seed=0))
    assert p_value(0.5, np.array([0.0, 0.5, 0.7])) == 3 / 4


def test_same_seed_same_numbers(groups):
    rng = np.random.default_rng(0)
    flaky = {word for name in sum(groups.names.values(), []) for word in name.split() if rng.random() < 0.5}

    def run(seed):
        return audit_names(
            SENTENCES, groups, capitalised_tagger(flaky), names_per_sentence=2, resamples=300, seed=seed
        ).metrics("m")

    assert run(3) == run(3)
    assert run(3) != run(4)
    assert 0 < run(3)["m/recall_gap_ci_low"] < run(3)["m/recall_gap_ci_high"]


def test_each_groups_recall_has_the_bootstrap_interval_of_its_table_row(groups, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    flaky = {word for name in sum(groups.names.values(), []) for word in name.split() if rng.random() < 0.5}
    audit = audit_names(SENTENCES, groups, capitalised_tagger(flaky), names_per_sentence=2, resamples=300)
    metrics = audit.metrics("fairness/names")
    rows = {line.split(",")[0]: line.split(",") for line in audit.table().splitlines()[1:]}
    for group, row in rows.items():
        low, recall, high = (
            metrics[f"fairness/names/group/{group}/recall{end}"] for end in ("_ci_low", "", "_ci_high")
        )
        assert low <= recall <= high
        assert (f"{recall:.6f}", f"{low:.6f}", f"{high:.6f}") == (row[3], row[4], row[5])
    assert any(metrics[f"fairness/names/group/{group}/recall_ci_low"] < float(row[5]) for group, row in rows.items())
    assert metrics["fairness/names/by_gender/female/recall_ci_low"] <= metrics["fairness/names/by_gender/female/recall"]
    (tmp_path / "names.yaml").write_text(NAMES)
    monkeypatch.setenv("FAIRNESS_NAMES_FILE", str(tmp_path / "names.yaml"))
    (probe,) = build("probes.fairness.enabled=true")
    declared = declarations(metrics, probe.metric_specs())
    assert declared["fairness/names/group/north_male/recall_ci_low"] == {"split": "test", "higher_is_better": None}
    assert declared["fairness/names/group/north_male/recall"] == {"split": "test", "higher_is_better": True}


def test_bootstrap_intervals_follow_the_data():
    found = np.array([[1, 1, 0, 1], [0, 1, 0, 0]], dtype=float)
    spans = np.ones(4)
    replicates = bootstrap_recalls(found, spans, 500, seed=0)
    assert replicates.shape == (500, 2)
    assert np.isclose(replicates.mean(axis=0), [0.75, 0.25], atol=0.05).all()
    assert np.array_equal(replicates, bootstrap_recalls(found, spans, 500, seed=0))
    gap, ratio = gap_and_ratio(np.array([[0.0, 0.0], [0.2, 0.8]]))
    assert np.allclose(gap, [0, 0.6]) and np.allclose(ratio, [1, 0.25])
    assert np.allclose(pooled_recalls(np.array([0.2, 0.4, 1.0]), [[0, 1], [2]]), [0.3, 1.0])


def test_group_table_and_chart(groups, tmp_path):
    audit = audit_names(SENTENCES, groups, capitalised_tagger({"Rosa"}), names_per_sentence=2, resamples=100)
    lines = audit.table().splitlines()
    assert lines[0] == "group,origin,gender,recall,recall_ci_low,recall_ci_high,f1,found,substitutions"
    assert [line.split(",")[:3] for line in lines[1:]] == [
        ["north_female", "north", "female"],
        ["north_male", "north", "male"],
        ["south_female", "south", "female"],
        ["south_male", "south", "male"],
    ]
    write_recall_chart(tmp_path / RECALL_CHART, audit, "PER")
    assert (tmp_path / RECALL_CHART).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir() if p.name != "names.yaml"] == [RECALL_CHART]  # no temporary left
    assert GROUP_TABLE.endswith(".csv")


def build(*overrides: str):
    return build_fairness_probes(compose_config(*overrides), NERTask("TOKEN_CLS"))


def test_probe_is_built_from_config(tmp_path, monkeypatch):
    assert build("probes.fairness.enabled=false") == []
    names = tmp_path / "names.yaml"
    names.write_text(NAMES)
    monkeypatch.setenv("FAIRNESS_NAMES_FILE", str(names))
    (probe,) = build("probes.fairness.enabled=true")
    assert probe.kind == "fairness" and list(probe.groups.attributes) == ["origin", "gender"]
    assert probe.data_files == [names]
    test, validation = build("probes.fairness.enabled=true", "probes.fairness.splits=[test,validation]")
    assert (test.name, validation.name, validation.split) == ("names", "names_val", "validation")
    monkeypatch.delenv("FAIRNESS_NAMES_FILE", raising=False)
    monkeypatch.setattr("ftaudit.paths.DATA_ROOT", tmp_path)  # nothing given, nothing in the default place: skipped
    (missing,) = build("probes.fairness.enabled=true")
    assert re.match(r"fairness names file not found: set probes.fairness.groups_file", missing.skip_reason(ctx=None))
    names.write_text("only: [Ann]\n")  # found but malformed: an error, not a skip
    with pytest.raises(DataError, match="at least 2 groups"):
        build("probes.fairness.enabled=true", f"probes.fairness.groups_file={names}")
    with pytest.raises(ConfigError, match=r"probes.fairness.sentences=0 must be >= 1.*names_per_sentence=0"):
        build("probes.fairness.enabled=true", "probes.fairness.sentences=0", "probes.fairness.names_per_sentence=0")


@pytest.mark.parametrize("source", ["config", "environment"])
def test_a_names_file_the_user_gave_must_exist(tmp_path, monkeypatch, source):
    """Given and missing is an error (exit 2 at the entry point), never a silent fall back to another file."""
    names = tmp_path / "names.yaml"
    names.write_text(NAMES)
    monkeypatch.setenv("FAIRNESS_NAMES_FILE", str(names if source == "config" else tmp_path / "nowhere.yaml"))
    given = [f"probes.fairness.groups_file={tmp_path}/nowhere.yaml"] if source == "config" else []
    with pytest.raises(DataError, match="nowhere.yaml does not exist"):
        build("probes.fairness.enabled=true", *given)


@pytest.mark.parametrize(
    "content, message", [(b"\xff\xfeb\x00l\x00u\x00e\x00:\x00", "not UTF-8 text"), (None, "is a folder")]
)
def test_a_names_file_in_utf16_or_a_folder_is_one_clear_error(tmp_path, content, message):
    names = tmp_path / "names.yaml"
    names.mkdir() if content is None else names.write_bytes(content)
    with pytest.raises(DataError, match=message):
        build("probes.fairness.enabled=true", f"probes.fairness.groups_file={names}")


def test_skipped_without_a_person_type_or_person_sentences(groups):
    probe = NameSubstitutionProbe(compose_config().probes.fairness, groups, "test", None)

    def context(labels, sentences):
        return SimpleNamespace(
            datamodule=SimpleNamespace(labels=labels, splits={"test": SimpleNamespace(sentences=sentences)})
        )

    assert "no PER type" in probe.skip_reason(context(["O", "B-LOC", "I-LOC"], SENTENCES))
    assert "no test sentence has a PER" in probe.skip_reason(context(["O", "B-PER", "I-PER"], SENTENCES[2:3]))
    assert probe.skip_reason(context(["O", "B-PER", "I-PER"], SENTENCES)) is None


def test_shipped_mishra_groups():
    path = Path(os.environ.get("FAIRNESS_NAMES_FILE", REPO.parent / "shared/data/fairness_names/mishra2020.yaml"))
    if not path.is_file():
        pytest.skip("Mishra et al. 2020 names not available: set FAIRNESS_NAMES_FILE to mishra2020.yaml")
    groups = load_name_groups(path)
    assert len(groups.names) == 8 and all(len(names) >= 15 for names in groups.names.values())
    assert list(groups.members("ethnicity")) == ["black", "hispanic", "muslim", "white"]
    assert list(groups.members("gender")) == ["female", "male"]
