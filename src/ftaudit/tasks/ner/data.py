"""Token classification data: sub-word alignment, long-sentence windows, length-grouped batches."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ftaudit.errors import ConfigError
from ftaudit.tasks.data import SplitDataModule
from ftaudit.tasks.ner.conll import Sentence, load_conll_splits

IGNORE_INDEX = -100  # label of sub-tokens and special tokens: no loss, no prediction


def label_list(*splits: list[Sentence]) -> list[str]:
    """``O`` first, then per entity type ``B-`` before ``I-``: read from the data, never hard-coded."""
    types = sorted({tag[2:] for split in splits for s in split for tag in s.tags if tag != "O"})
    return ["O"] + [f"{prefix}-{t}" for t in types for prefix in ("B", "I")]


@dataclass
class EncodedSplit:
    """One example per window; most sentences are one window, long ones several."""

    sentences: list[Sentence]
    input_ids: list[torch.Tensor] = field(default_factory=list)
    labels: list[torch.Tensor] = field(default_factory=list)
    sentence_index: list[int] = field(default_factory=list)
    word_offset: list[int] = field(default_factory=list)
    extra_inputs: dict = field(default_factory=dict)  # token classification feeds only input_ids and the mask
    label_pad = IGNORE_INDEX

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(ids) for ids in self.input_ids])

    def decode(self, example_index: list[int], predictions: list[list[str]]) -> list[list[str | None]]:
        """Re-join window predictions (one tag per word) into one tag sequence per sentence; None for the words of
        windows not evaluated (a try-out)."""
        tags: list[list[str | None]] = [[None] * len(s.tokens) for s in self.sentences]
        for example, predicted in zip(example_index, predictions):
            offset = self.word_offset[example]
            tags[self.sentence_index[example]][offset : offset + len(predicted)] = predicted
        return tags


def special_token_frame(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a single sequence (e.g. [CLS] and [SEP])."""
    encoding = tokenizer(["x"], is_split_into_words=True)
    ids, word_ids = encoding["input_ids"], encoding.word_ids()
    first = word_ids.index(0)
    last = len(word_ids) - 1 - word_ids[::-1].index(0)
    return ids[:first], ids[last + 1 :]


def word_windows(subtoken_counts: list[int], budget: int) -> list[tuple[int, int]]:
    """Split a sentence's words into consecutive [start, end) windows of at most ``budget`` sub-tokens."""
    windows, start, used = [], 0, 0
    for index, count in enumerate(subtoken_counts):
        count = min(count, budget)  # a single over-long word keeps its first sub-tokens
        if used + count > budget:
            windows.append((start, index))
            start, used = index, 0
        used += count
    windows.append((start, len(subtoken_counts)))
    return windows


def encode(tokenizer, sentences: list[Sentence], label2id: dict[str, int], max_length: int) -> EncodedSplit:
    """Label the first sub-token of each word; split sentences longer than ``max_length`` into windows."""
    prefix, suffix = special_token_frame(tokenizer)
    budget = max_length - len(prefix) - len(suffix)
    if budget < 1:
        raise ConfigError(
            f"data.max_length={max_length} leaves no room for tokens; use at least {len(prefix) + len(suffix) + 1}"
        )
    encoded = EncodedSplit(sentences)
    batch = tokenizer([s.tokens for s in sentences], is_split_into_words=True, add_special_tokens=False)
    for index, sentence in enumerate(sentences):
        ids, word_ids = batch["input_ids"][index], batch.word_ids(index)
        if len(set(word_ids)) < len(sentence.tokens):
            ids, word_ids = encode_with_unknown_words(tokenizer, sentence.tokens, set(word_ids))
        counts = np.bincount(word_ids, minlength=len(sentence.tokens)).tolist()
        word_starts = np.concatenate([[0], np.cumsum(counts)]).tolist()
        for start, end in word_windows(counts, budget):
            window_ids, window_labels = [], []
            for word in range(start, end):
                pieces = ids[word_starts[word] : word_starts[word] + min(counts[word], budget)]
                window_ids += pieces
                window_labels += [label2id[sentence.tags[word]]] + [IGNORE_INDEX] * (len(pieces) - 1)
            encoded.input_ids.append(torch.tensor(prefix + window_ids + suffix))
            encoded.labels.append(
                torch.tensor([IGNORE_INDEX] * len(prefix) + window_labels + [IGNORE_INDEX] * len(suffix))
            )
            encoded.sentence_index.append(index)
            encoded.word_offset.append(start)
    return encoded


def encode_with_unknown_words(tokenizer, words: list[str], seen: set[int]) -> tuple[list[int], list[int]]:
    """Words the tokenizer maps to nothing (e.g. lone control characters) become the unknown token."""
    words = [word if index in seen else tokenizer.unk_token for index, word in enumerate(words)]
    encoding = tokenizer(words, is_split_into_words=True, add_special_tokens=False)
    return encoding["input_ids"], encoding.word_ids()


class NERDataModule(SplitDataModule):
    """CoNLL-style NER splits: every word labelled on its first sub-token, long sentences windowed."""

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        raw, self.data_files = load_conll_splits(self.cfg)
        limits = {
            "train": self.cfg.max_train_samples,
            "validation": self.cfg.max_eval_samples,
            "test": self.cfg.max_eval_samples,
        }
        raw = {split: sentences[: limits[split]] if limits[split] else sentences for split, sentences in raw.items()}
        self.labels = label_list(*raw.values())
        label2id = {label: i for i, label in enumerate(self.labels)}
        self.splits = {
            split: encode(self.tokenizer, sentences, label2id, self.max_length) for split, sentences in raw.items()
        }
