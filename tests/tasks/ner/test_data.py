import numpy as np
import pytest
import torch

from ftaudit.models.loading import load_tokenizer
from ftaudit.tasks.data import Collator, LengthGroupedBatchSampler
from ftaudit.tasks.ner.conll import Sentence
from ftaudit.tasks.ner.data import IGNORE_INDEX, encode, label_list, word_windows
from tests.conftest import compose_config

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
LABEL2ID = {label: i for i, label in enumerate(LABELS)}


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(compose_config("model=tiny").model)


def test_label_list_read_from_data():
    sentences = [Sentence(["a"], ["B-PER"]), Sentence(["b", "c"], ["B-LOC", "I-LOC"])]
    assert label_list(sentences) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def test_first_subtoken_carries_the_label(tokenizer):
    sentence = Sentence(["Johannesburg", "is", "unbelievably", "big"], ["B-LOC", "O", "O", "O"])
    split = encode(tokenizer, [sentence], LABEL2ID, max_length=512)
    ids, labels = split.input_ids[0].tolist(), split.labels[0].tolist()
    words = tokenizer([sentence.tokens], is_split_into_words=True).word_ids(0)
    first = [i for i, w in enumerate(words) if w is not None and (i == 0 or words[i - 1] != w)]
    assert [labels[i] for i in first] == [LABEL2ID[t] for t in sentence.tags]
    assert all(label == IGNORE_INDEX for i, label in enumerate(labels) if i not in first)
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert len(ids) > len(sentence.tokens) + 2  # some words really were split


def test_word_windows_respect_budget_and_cover_every_word():
    counts = [1, 3, 2, 2, 1, 5, 1]
    windows = word_windows(counts, budget=4)
    assert windows[0][0] == 0 and windows[-1][1] == len(counts)
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:]))
    assert all(sum(min(c, 4) for c in counts[s:e]) <= 4 for s, e in windows)


def test_long_sentences_are_windowed_and_rejoined(tokenizer):
    tokens = [f"word{i}" for i in range(60)]
    tags = ["B-PER" if i % 7 == 0 else "O" for i in range(60)]
    split = encode(tokenizer, [Sentence(tokens, tags), Sentence(["short"], ["O"])], LABEL2ID, max_length=16)
    assert len(split.input_ids) > 3
    assert max(len(ids) for ids in split.input_ids) <= 16
    words_per_window = [int((labels != IGNORE_INDEX).sum()) for labels in split.labels]
    assert sum(words_per_window) == 61  # every word labelled exactly once
    gold = [[LABELS[int(label)] for label in labels if label != IGNORE_INDEX] for labels in split.labels]
    order = list(reversed(range(len(gold))))  # decode must not depend on the order examples come back in
    rejoined = split.decode(order, [gold[i] for i in order])
    assert rejoined == [tags, ["O"]]


def test_words_without_subtokens_still_get_a_prediction_slot(tokenizer):
    sentence = Sentence(["a", "\u200b", "b"], ["O", "B-PER", "O"])
    split = encode(tokenizer, [sentence], LABEL2ID, max_length=512)
    assert int((split.labels[0] != IGNORE_INDEX).sum()) == 3


def test_decode_leaves_the_words_of_windows_not_evaluated_empty(tokenizer):
    """A try-out evaluates part of a split: the sentences with a window missing are told apart, not scored."""
    split = encode(
        tokenizer, [Sentence([f"w{i}" for i in range(30)], ["O"] * 30), Sentence(["b"], ["O"])], LABEL2ID, max_length=16
    )
    windows = [int((labels != IGNORE_INDEX).sum()) for labels in split.labels]
    assert len(windows) > 2
    tags = split.decode(list(range(1, len(windows))), [["O"] * count for count in windows[1:]])
    assert None in tags[0] and tags[1] == ["O"]


def test_length_grouped_sampler_is_a_reproducible_permutation():
    lengths = np.random.default_rng(0).integers(3, 80, size=1003)
    batches = list(LengthGroupedBatchSampler(lengths, 32, seed=1))
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(1003)) and len(batches) == 32
    assert batches == list(LengthGroupedBatchSampler(lengths, 32, seed=1))
    assert lengths[batches[0]].max() == lengths.max()  # longest batch first
    padded = sum(lengths[b].max() * len(b) for b in batches)
    assert padded / lengths.sum() < 1.15  # grouping keeps padding small
    sampler = LengthGroupedBatchSampler(lengths, 32, seed=1)
    assert list(sampler) != list(sampler)  # each epoch reshuffles


def test_collator_pads_dynamically(tokenizer):
    split = encode(tokenizer, [Sentence(["a"], ["O"]), Sentence(["a", "b", "c"], ["O", "O", "B-PER"])], LABEL2ID, 512)
    batch = Collator(split, tokenizer.pad_token_id, multiple=8)([0, 1])
    assert batch["input_ids"].shape == (2, 8)
    assert batch["attention_mask"].sum(1).tolist() == [3, 5]
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    assert batch["example_index"].tolist() == [0, 1]
    assert batch["input_ids"].dtype == torch.long
