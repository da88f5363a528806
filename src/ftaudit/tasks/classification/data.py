"""Sentence classification data: one label per sentence (or sentence pair), truncated at the model's limit.

Two sources: Financial PhraseBank (``data=phrasebank``), which has no official split, and any CSV/TSV/JSONL table
(``data=text_csv``), one file per split or one file. A single file is split here, stratified by label and seeded by
``data.split_seed`` (apart from the run's seed), so every run, sweep trial and method is tested on the same sentences.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ftaudit.errors import ConfigError, DataError
from ftaudit.paths import data_location
from ftaudit.tasks.classification.reading import Columns, Example, label_keys, label_order, read_phrasebank, read_table
from ftaudit.tasks.data import SPLIT_NAMES, SplitDataModule, carve, data_file, subset

# The authors' release (Malo et al. 2014), as the takala/financial_phrasebank hub repo keeps it: its loading
# script is refused by current `datasets`, the zip is not.
PHRASEBANK_ZIP = (
    "https://huggingface.co/datasets/takala/financial_phrasebank/resolve/main/data/FinancialPhraseBank-v1.0.zip"
)


@dataclass
class EncodedSentences:
    """One example per sentence (or pair): token ids, the label id, and whether the text was cut at ``max_length``."""

    examples: list[Example]
    input_ids: list[torch.Tensor] = field(default_factory=list)
    labels: list[torch.Tensor] = field(default_factory=list)
    extra_inputs: dict = field(default_factory=dict)  # token_type_ids, for sentence pairs
    truncated: int = 0
    label_pad = -100  # unused: a sentence's label is a scalar, never padded

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(ids) for ids in self.input_ids])


def encode(tokenizer, examples: list[Example], label2id: dict[str, int], max_length: int) -> EncodedSentences:
    """Tokenise each text (with its pair, if any) as the model's pre-training did; cut what exceeds ``max_length``
    (a pair loses tokens from its longer text first) and count the examples that were cut."""
    pairs = [e.text_pair for e in examples] if examples and examples[0].text_pair is not None else None
    batch = tokenizer([e.text for e in examples], pairs, truncation="longest_first", max_length=max_length)
    encoded = EncodedSentences(examples)
    encoded.input_ids = [torch.tensor(ids) for ids in batch["input_ids"]]
    encoded.labels = [torch.tensor(label2id[e.label]) for e in examples]
    if pairs is not None and "token_type_ids" in batch:  # which text each token came from; single texts: all 0
        encoded.extra_inputs["token_type_ids"] = [torch.tensor(ids) for ids in batch["token_type_ids"]]
    encoded.truncated = sum(bool(encoding.overflowing) for encoding in batch.encodings)  # what the cut dropped
    return encoded


def stratified_split(
    examples: list[Example], validation: float, test: float, seed: int, where: str
) -> dict[str, list[Example]]:
    """Train/validation/test with each label in the same proportions (scikit-learn's stratified shuffle split);
    the validation and test sizes are fractions of the whole file, rounded up as scikit-learn rounds the test size."""
    from sklearn.model_selection import train_test_split

    if not (0 < validation < 1 and 0 < test < 1 and validation + test < 1):
        raise ConfigError(
            f"data.validation_fraction={validation} and data.test_fraction={test} must be in (0, 1) "
            "with room left for training"
        )
    labels = [e.label for e in examples]
    try:
        rest, test_part = train_test_split(examples, test_size=test, stratify=labels, random_state=seed)
        train, validation_part = train_test_split(
            rest, test_size=math.ceil(validation * len(examples)), stratify=[e.label for e in rest], random_state=seed
        )
    except ValueError as err:  # e.g. a label with a single example cannot be stratified
        raise DataError(
            f"{where}: cannot split {len(examples)} examples stratified by label ({err}); "
            f"labels: {dict(sorted(Counter(labels).items()))}"
        ) from None
    return {"train": train, "validation": validation_part, "test": test_part}


def ids_sha256(examples: list[Example]) -> str:
    """The identity of a split: SHA-256 of its sorted example ids, one per line."""
    return hashlib.sha256("\n".join(sorted(e.id for e in examples)).encode("utf-8")).hexdigest()


class SentenceDataModule(SplitDataModule):
    """Labelled sentences from ``read_splits``, tokenised and described in ``data_info`` (for the run's env.json):
    the label set, how the splits were made, and per split its size, label counts, id hash and truncated examples."""

    def read_splits(self) -> tuple[dict[str, list[Example]], dict]:
        """Each split's examples, and how the splits were made (recorded); sets ``data_files``."""
        raise NotImplementedError

    def split_one_file(self, examples: list[Example], where: Path) -> tuple[dict[str, list[Example]], dict]:
        """One file's examples split stratified by ``data.split_seed``, and the split's settings (recorded)."""
        cfg = self.cfg
        splits = stratified_split(examples, cfg.validation_fraction, cfg.test_fraction, cfg.split_seed, str(where))
        return splits, {
            "split_seed": cfg.split_seed,
            "validation_fraction": cfg.validation_fraction,
            "test_fraction": cfg.test_fraction,
        }

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        raw, origin = self.read_splits()
        self.labels = label_order(e.label for split in raw.values() for e in split)
        if len(self.labels) < 2:
            raise DataError(
                f"{self.data_files[0]}: only the label {self.labels} in the data; a classifier needs 2 or more"
            )
        self.label_keys = label_keys(self.labels)
        limits = {
            "train": self.cfg.max_train_samples,
            "validation": self.cfg.max_eval_samples,
            "test": self.cfg.max_eval_samples,
        }
        seed = self.cfg.get("subset_seed")
        raw = {split: subset(examples, limits[split], seed) for split, examples in raw.items()}
        label2id = {label: i for i, label in enumerate(self.labels)}
        self.splits = {
            split: encode(self.tokenizer, examples, label2id, self.max_length) for split, examples in raw.items()
        }
        self.data_info = {
            "labels": self.labels,
            **origin,
            "max_length": self.max_length,
            "splits": {
                split: {
                    "examples": len(encoded.examples),
                    "labels": dict(sorted(Counter(e.label for e in encoded.examples).items())),
                    "ids_sha256": ids_sha256(encoded.examples),
                    "truncated": encoded.truncated,
                }
                for split, encoded in self.splits.items()
            },
        }
        self.warn_truncated(f"examples longer than {self.max_length} tokens were truncated")


class PhraseBankDataModule(SentenceDataModule):
    """Financial PhraseBank (Malo et al. 2014; CC BY-NC-SA 3.0): ``data.file`` in ``data.dir``, else
    ``$PHRASEBANK_DIR``, else ``<repo>/data/financial_phrasebank``; split stratified by ``data.split_seed``."""

    def read_splits(self) -> tuple[dict[str, list[Example]], dict]:
        directory, given_by = data_location(self.cfg.dir, self.cfg.env_var, self.cfg.default_dir, "data.dir")
        path = directory / self.cfg.file
        if not path.is_file():
            where = f"{given_by}={directory}" if given_by else f"{directory} (set data.dir=PATH or ${self.cfg.env_var})"
            raise DataError(
                f"Financial PhraseBank not found: no {self.cfg.file} in {where}; it has no hub copy that "
                f"current `datasets` loads: put the Sentences_*.txt files of {PHRASEBANK_ZIP} there (licence "
                "CC BY-NC-SA 3.0: non-commercial use only)"
            )
        examples, encoding = read_phrasebank(path, self.cfg.encoding)
        self.data_files = [path.resolve()]
        splits, split = self.split_one_file(examples, path)
        return splits, {"source": str(path.resolve()), "encoding": encoding, "split": split}


class TextFilesDataModule(SentenceDataModule):
    """A text column and a label column (and optionally a second text and an id) of CSV, TSV or JSONL files: one per
    split (``data.files``), or one (``data.file``) split stratified by ``data.split_seed``. Names are relative to
    ``data.dir`` (else the working directory); a file named must exist."""

    def read_splits(self) -> tuple[dict[str, list[Example]], dict]:
        columns = Columns(self.cfg.text_column, self.cfg.label_column, self.cfg.text_pair_column, self.cfg.id_column)
        if self.cfg.file:
            path = self.locate(self.cfg.file, "data.file")
            self.data_files = [path]
            splits, split = self.split_one_file(read_table(path, columns, self.cfg.file_format), path)
            return splits, {"source": str(path), "split": split}
        given = {split: name for split, name in self.cfg.files.items() if name}
        unknown = set(given) - set(SPLIT_NAMES)
        if unknown or set(given) not in ({*SPLIT_NAMES}, {"train", "test"}):
            raise ConfigError(
                f"data.files must name exactly {', '.join(SPLIT_NAMES)}, or train and test (validation is then "
                f"carved out of train), got {', '.join(given)}; or give one file as data.file=..."
            )
        paths = {split: self.locate(name, f"data.files.{split}") for split, name in given.items()}
        self.data_files = list(paths.values())
        splits = {split: read_table(path, columns, self.cfg.file_format) for split, path in paths.items()}
        origin = {"source": {split: str(path) for split, path in paths.items()}, "split": "one file per split"}
        if "validation" not in splits:  # e.g. Banking77: no validation split; never carved out of test
            splits["train"], splits["validation"] = carve(
                splits["train"], self.cfg.validation_fraction, self.cfg.split_seed, str(paths["train"]), stratify=True
            )
            origin["split"] = {
                "validation": "carved out of train, stratified by label",
                "split_seed": self.cfg.split_seed,
                "validation_fraction": self.cfg.validation_fraction,
            }
        return {split: splits[split] for split in SPLIT_NAMES}, origin

    def locate(self, name: str, key: str) -> Path:
        return data_file(self.cfg, name, key)
