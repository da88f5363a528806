"""What every task's data has in common: tokenised splits, length-grouped training batches, dynamic padding."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from ftaudit.errors import ConfigError, DataError
from ftaudit.paths import data_location

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "validation", "test")


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Random batches of similar length: shuffle, sort within mega-batches, shuffle the batches.

    Cuts padding (and so wasted compute) while keeping the order random; each pass reshuffles
    from ``seed + epoch`` so runs are reproducible. The epoch counts passes, unless set (``set_epoch``) before a
    pass's first batch is drawn: training sets it each epoch, so a resumed run continues the original's sequence of
    orders. The longest batch goes first, so an
    out-of-memory error shows at step one rather than mid-run. With several processes (DDP) every
    process draws the same batches and keeps every ``num_replicas``-th one from ``rank`` on; the
    last few batches are repeated so that all processes take the same number of steps.
    """

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        seed: int,
        group_by_length: bool = True,
        megabatch_batches: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        self.lengths, self.batch_size, self.seed = lengths, batch_size, seed
        self.group_by_length, self.megabatch_size = group_by_length, batch_size * megabatch_batches
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(math.ceil(len(self.lengths) / self.batch_size) / self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        # A generator: the order is drawn when the first batch is, after the epoch was set (Lightning creates the
        # iterator of a run's first epoch before its epoch-start hooks).
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
        batches = [
            batches[i % len(batches)] for i in range(self.rank, len(self) * self.num_replicas, self.num_replicas)
        ]
        yield from (b.tolist() for b in batches)


def data_file(cfg, name: str, key: str) -> Path:
    """The file ``name`` (config key ``key``) of a data config: relative to ``data.dir``, else (where the config
    names one, e.g. ``BANKING77_DIR``) ``$<data.env_var>``, else the working directory; it must exist."""
    base, given_by = Path.cwd(), None
    if cfg.get("env_var"):
        base, given_by = data_location(cfg.dir, cfg.env_var, cfg.default_dir, "data.dir")
    elif cfg.dir:
        base, given_by = Path(cfg.dir).expanduser(), "data.dir"
        if not base.is_dir():
            raise DataError(f"data.dir={cfg.dir}: {base.resolve()} is not a folder; fix it or unset it")
    path = (base / Path(name).expanduser()).resolve()
    if not path.is_file():
        hint = (
            f"set data.dir=PATH or ${cfg.env_var}"
            if cfg.get("env_var") and not given_by
            else f"check data.dir and {key}"
        )
        raise DataError(f"{key}={name}: {path} is not a file; {hint}")
    return path


def carve(examples: list, fraction: float, seed: int, where: str, stratify: bool) -> tuple[list, list]:
    """``(rest, carved)``: a seeded share ``fraction`` of ``examples`` set apart (a validation split out of train),
    stratified by ``example.label`` where asked (scikit-learn's stratified shuffle split, its rounding)."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise ConfigError(f"data.validation_fraction={fraction} must be in (0, 1)")
    labels = [example.label for example in examples] if stratify else None
    try:
        rest, carved = train_test_split(examples, test_size=fraction, stratify=labels, random_state=seed)
    except ValueError as err:  # e.g. a label with a single example cannot be stratified
        raise DataError(f"{where}: cannot carve {fraction:g} of {len(examples)} examples out ({err})") from None
    return list(rest), list(carved)


def subset(examples: list, limit: int | None, seed: int | None) -> list:
    """The first ``limit`` examples (all with None): in file order, or with a ``seed`` (``data.subset_seed``) of a
    seeded shuffle, for files sorted by label (Banking77's are) whose first N would hold a few labels only."""
    if not limit:
        return examples
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(examples))
        examples = [examples[i] for i in order]
    return examples[:limit]


def eval_batches(lengths: np.ndarray, batch_size: int) -> list[list[int]]:
    """Evaluation order: longest first, so each batch pads little; predictions are re-ordered by index."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def pad(rows: list[torch.Tensor], width: int, value: int) -> torch.Tensor:
    padded = torch.full((len(rows), width), value, dtype=torch.long)
    for row, values in enumerate(rows):
        padded[row, : len(values)] = values
    return padded


class Collator:
    """Dynamic padding of ``split``'s examples to the longest in the batch (rounded up to a multiple, e.g. 8 on GPU).

    ``split.features[name]`` holds one tensor per example for each model input; ``split.labels`` one label tensor
    (a sequence of tag ids for token classification, a scalar for sentence classification) per example.
    """

    def __init__(self, split, pad_id: int, multiple: int = 1):
        self.split, self.pad_id, self.multiple = split, pad_id, multiple

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        ids = [self.split.input_ids[i] for i in indices]
        lengths = torch.tensor([len(x) for x in ids])
        width = int(math.ceil(lengths.max().item() / self.multiple) * self.multiple)
        batch = {
            "input_ids": pad(ids, width, self.pad_id),
            "attention_mask": (torch.arange(width)[None, :] < lengths[:, None]).long(),
        }
        for name, values in self.split.extra_inputs.items():
            batch[name] = pad([values[i] for i in indices], width, 0)
        labels = [self.split.labels[i] for i in indices]
        batch["labels"] = pad(labels, width, self.split.label_pad) if labels[0].ndim else torch.stack(labels)
        batch["example_index"] = torch.tensor(indices)
        return batch


class SplitDataModule(L.LightningDataModule):
    """Train/validation/test splits, tokenised once in ``setup`` (idempotent, so the run can read labels early).

    A task's data module fills ``splits`` (objects with ``input_ids``, ``labels``, ``extra_inputs``, ``label_pad``
    and ``lengths``), ``labels`` (the label names, read from the data) and ``data_files`` (every file it read), and
    may describe the data in ``data_info`` (e.g. how the splits were made), which the run records in env.json.
    """

    def __init__(self, cfg, tokenizer, seed: int, pad_to_multiple_of: int = 1):
        super().__init__()
        self.cfg, self.tokenizer, self.seed, self.multiple = cfg, tokenizer, seed, pad_to_multiple_of
        self.splits: dict = {}
        self.labels: list[str] = []
        self.data_files: list[Path] = []
        self.data_info: dict = {}

    @property
    def max_length(self) -> int:
        """Sub-tokens per example: ``data.max_length`` capped at the tokenizer's limit."""
        limit = self.tokenizer.model_max_length
        return min(self.cfg.max_length or limit, limit)

    def adopt_label_order(self, labels: list[str], model: str) -> None:
        """Number the labels as ``labels`` does (a fine-tuned ``model``'s id2label), re-numbering every split's label
        ids: a model is scored in its own ids. Its labels must be exactly the data's."""
        if sorted(labels) != sorted(self.labels):
            model_only, data_only = sorted(set(labels) - set(self.labels)), sorted(set(self.labels) - set(labels))
            raise DataError(
                f"the labels of {model} do not match data={self.cfg.name}: the model has {labels}, the data "
                f"{self.labels} (only in the model: {model_only}, only in the data: {data_only}); audit it "
                "on the data and task it was fine-tuned for (data=..., task=...)"
            )
        new_ids = torch.tensor([labels.index(label) for label in self.labels])
        for split in self.splits.values():
            for ids in split.labels:
                is_label = ids != split.label_pad
                ids[is_label] = new_ids[ids[is_label]]
        self.labels = list(labels)

    def warn_truncated(self, what: str) -> None:
        """One warning line for the examples each split cut at ``max_length`` (``what`` says how), none if none."""
        cut = {split: encoded.truncated for split, encoded in self.splits.items() if encoded.truncated}
        if cut:
            log.warning("%s: %s", what, ", ".join(f"{count} of {split}" for split, count in cut.items()))

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
        sampler = LengthGroupedBatchSampler(
            split.lengths, self.cfg.batch_size, self.seed, self.cfg.group_by_length, **processes
        )
        return self._loader("train", sampler)

    def eval_dataloader(self, split: str, shard: bool = False) -> DataLoader:
        """Every example of ``split`` once; with ``shard``, under DDP, this process's every world_size-th batch (the
        module gathers the outputs of all processes). Every process takes the same number of batches, the last
        one repeated where needed: a forward under DDP (its buffer broadcast) or FSDP is a collective step."""
        batches = eval_batches(self.splits[split].lengths, self.cfg.eval_batch_size)
        if shard and self.trainer and self.trainer.world_size > 1:
            processes, rank = self.trainer.world_size, self.trainer.global_rank
            own = batches[rank::processes] or batches[-1:]
            batches = own + own[-1:] * (math.ceil(len(batches) / processes) - len(own))
        return self._loader(split, batches)

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader("validation", shard=True)

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test", shard=True)
