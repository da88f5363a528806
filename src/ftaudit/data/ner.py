"""Token classification data: sub-word alignment, long-sentence windows, length-grouped batches."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from ftaudit.data.conll import Sentence, load_conll_splits
from ftaudit.errors import ConfigError

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

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(ids) for ids in self.input_ids])

    def decode(self, example_index: list[int], predictions: list[list[str]]) -> list[list[str]]:
        """Re-join window predictions (one tag per word) into one tag sequence per sentence."""
        tags: list[list[str | None]] = [[None] * len(s.tokens) for s in self.sentences]
        for example, predicted in zip(example_index, predictions):
            offset = self.word_offset[example]
            tags[self.sentence_index[example]][offset : offset + len(predicted)] = predicted
        missing = sum(tag is None for sentence in tags for tag in sentence)
        if missing:
            raise RuntimeError(f"{missing} words got no prediction: every example must be evaluated exactly once")
        return tags  # type: ignore[return-value]


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
        raise ConfigError(f"data.max_length={max_length} leaves no room for tokens; use at least {len(prefix) + len(suffix) + 1}")
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
            encoded.labels.append(torch.tensor([IGNORE_INDEX] * len(prefix) + window_labels + [IGNORE_INDEX] * len(suffix)))
            encoded.sentence_index.append(index)
            encoded.word_offset.append(start)
    return encoded


def encode_with_unknown_words(tokenizer, words: list[str], seen: set[int]) -> tuple[list[int], list[int]]:
    """Words the tokenizer maps to nothing (e.g. lone control characters) become the unknown token."""
    words = [word if index in seen else tokenizer.unk_token for index, word in enumerate(words)]
    encoding = tokenizer(words, is_split_into_words=True, add_special_tokens=False)
    return encoding["input_ids"], encoding.word_ids()


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Random batches of similar length: shuffle, sort within mega-batches, shuffle the batches.

    Cuts padding (and so wasted compute) while keeping the order random; each pass reshuffles
    from ``seed + epoch`` so runs are reproducible. The longest batch goes first, so an
    out-of-memory error shows at step one rather than mid-run. With several processes (DDP) every
    process draws the same batches and keeps every ``num_replicas``-th one from ``rank`` on; the
    last few batches are repeated so that all processes take the same number of steps.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, group_by_length: bool = True, megabatch_batches: int = 50,
                 num_replicas: int = 1, rank: int = 0):
        self.lengths, self.batch_size, self.seed = lengths, batch_size, seed
        self.group_by_length, self.megabatch_size = group_by_length, batch_size * megabatch_batches
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(math.ceil(len(self.lengths) / self.batch_size) / self.num_replicas)

    def __iter__(self):
        rng = np.random.default_rng(self.seed + self.epoch)
        self.epoch += 1
        order = rng.permutation(len(self.lengths))
        if self.group_by_length:
            megabatches = [order[i : i + self.megabatch_size] for i in range(0, len(order), self.megabatch_size)]
            order = np.concatenate([m[np.argsort(-self.lengths[m], kind="stable")] for m in megabatches])
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.group_by_length:
            longest = max(range(len(batches)), key=lambda i: self.lengths[batches[i]].max())
            batches[0], batches[longest] = batches[longest], batches[0]
        batches = [batches[i % len(batches)] for i in range(self.rank, len(self) * self.num_replicas, self.num_replicas)]
        return iter([b.tolist() for b in batches])


def eval_batches(lengths: np.ndarray, batch_size: int) -> list[list[int]]:
    """Evaluation order: longest first, so each batch pads little; predictions are re-ordered by index."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


class Collator:
    """Dynamic padding to the longest example in the batch (rounded up to a multiple, e.g. 8 on GPU)."""

    def __init__(self, split: EncodedSplit, pad_id: int, multiple: int = 1):
        self.split, self.pad_id, self.multiple = split, pad_id, multiple

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        ids = [self.split.input_ids[i] for i in indices]
        lengths = torch.tensor([len(x) for x in ids])
        width = int(math.ceil(lengths.max().item() / self.multiple) * self.multiple)
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(ids), width), IGNORE_INDEX, dtype=torch.long)
        for row, i in enumerate(indices):
            input_ids[row, : len(ids[row])] = ids[row]
            labels[row, : len(ids[row])] = self.split.labels[i]
        attention_mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels,
                "example_index": torch.tensor(indices)}


class NERDataModule(L.LightningDataModule):
    """CoNLL-style NER splits, tokenised once; ``setup`` is idempotent so the run can read labels early."""

    def __init__(self, cfg, tokenizer, seed: int, pad_to_multiple_of: int = 1):
        super().__init__()
        self.cfg, self.tokenizer, self.seed, self.multiple = cfg, tokenizer, seed, pad_to_multiple_of
        self.splits: dict[str, EncodedSplit] = {}
        self.labels: list[str] = []

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        raw = load_conll_splits(self.cfg)
        limits = {"train": self.cfg.max_train_samples, "validation": self.cfg.max_eval_samples, "test": self.cfg.max_eval_samples}
        raw = {split: sentences[: limits[split]] if limits[split] else sentences for split, sentences in raw.items()}
        self.labels = label_list(*raw.values())
        label2id = {label: i for i, label in enumerate(self.labels)}
        max_length = min(self.cfg.max_length or self.tokenizer.model_max_length, self.tokenizer.model_max_length)
        self.splits = {split: encode(self.tokenizer, sentences, label2id, max_length) for split, sentences in raw.items()}

    @property
    def train_token_count(self) -> int:
        """Non-pad tokens in one pass over the training split."""
        return int(self.splits["train"].lengths.sum())

    def _loader(self, split: str, batch_sampler) -> DataLoader:
        collate = Collator(self.splits[split], self.tokenizer.pad_token_id, self.multiple)
        return DataLoader(range(len(self.splits[split].input_ids)), batch_sampler=batch_sampler, collate_fn=collate)

    def train_dataloader(self) -> DataLoader:
        split = self.splits["train"]
        processes = {"num_replicas": self.trainer.world_size, "rank": self.trainer.global_rank} if self.trainer else {}
        sampler = LengthGroupedBatchSampler(split.lengths, self.cfg.batch_size, self.seed, self.cfg.group_by_length, **processes)
        return self._loader("train", sampler)

    def eval_dataloader(self, split: str) -> DataLoader:
        return self._loader(split, eval_batches(self.splits[split].lengths, self.cfg.eval_batch_size))

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader("validation")

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test")
