"""The task interface: everything that differs between tasks, and nothing else.

A task says how its splits are read and batched (its data module and the ``data.format`` values it reads), how it
loads the model it trains and the model it audits, how it is trained and scored (its LightningModule), which metrics
it records (with their split and direction, its headline's deciding which checkpoint is kept and what sweeps
optimise), what the run prints and the model card says, its predictions file, and its fairness probe. The run, the
methods, the probes, resources, tracking, sweeps and reports only talk to this interface.
"""

from __future__ import annotations

import json
from fnmatch import fnmatch
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig

from ftaudit.errors import ConfigError
from ftaudit.metrics import RELIABILITY_FILE, MetricSpec
from ftaudit.models.loading import load_tokenizer
from ftaudit.tasks.data import SplitDataModule
from ftaudit.tasks.module import TaskModule

if TYPE_CHECKING:
    from ftaudit.models.finetuned import FineTunedModel


class Task:
    name: str
    headline: str  # the score that chooses checkpoints and that sweeps optimise, on validation: task/val_<headline>
    head: str  # the transformers auto class of the model, e.g. "AutoModelForTokenClassification"
    pipeline_tag: str  # the Hub's pipeline tag of the saved model, e.g. "token-classification"
    formats: dict[str, type[SplitDataModule]]  # data.format -> the data module reading it
    module_class: type[TaskModule]
    scores: dict[str, str | None]  # score name (or ``prefix_*`` pattern) -> "max" | "min" | None: what it records
    summary: tuple[str, ...]  # the test scores the run prints first, in this order

    def __init__(self, peft_task_type: str, name: str | None = None):
        self.peft_task_type = peft_task_type  # what peft's adapter configs call this task (TOKEN_CLS, SEQ_CLS)
        if name is not None and name != self.name:  # the config's task.name is what records and reports group by
            raise ConfigError(f"task.name={name} but task._target_ builds the {self.name} task; make them agree")

    def datamodule(self, data_cfg: DictConfig, tokenizer, seed: int, pad_to_multiple_of: int = 1) -> SplitDataModule:
        if data_cfg.format not in self.formats:
            raise ConfigError(
                f"data={data_cfg.name} (format {data_cfg.format}) is not data for task={self.name}, which "
                f"reads {', '.join(self.formats)}; pick a matching task= or data="
            )
        return self.formats[data_cfg.format](data_cfg, tokenizer, seed, pad_to_multiple_of, **self.data_options())

    def data_options(self) -> dict:
        """What this task's data modules take besides the data config (e.g. how a causal LM is prompted)."""
        return {}

    def load_tokenizer(self, model_cfg: DictConfig):
        """The tokenizer of ``model_cfg``'s model (the one to fine-tune, or the audited one)."""
        return load_tokenizer(model_cfg)

    def load_model(self, model_cfg: DictConfig, data: SplitDataModule, attention: str | None) -> torch.nn.Module:
        """The model to fine-tune, for ``data`` (set up), with transformers' ``attention`` implementation; eval mode."""
        raise NotImplementedError

    def load_audited(self, model_cfg: DictConfig, base_cfg: DictConfig, data: SplitDataModule) -> FineTunedModel:
        """The fine-tuned model to audit (``model.name_or_path``) and its base, with ``data`` adapted to it."""
        raise NotImplementedError

    def loading_snippet(self, labels: list[str], adapter: bool, base: str | None) -> str:
        """The model card's code that loads the saved model (``adapter``: a peft adapter on ``base``)."""
        raise NotImplementedError

    def module(self, model, optimizer_cfg, data: SplitDataModule, **clipping) -> TaskModule:
        return self.module_class(model, optimizer_cfg, data, **clipping)

    @property
    def monitor(self) -> str:
        """What the module logs each validation epoch for the headline score (checkpointing, pruning)."""
        return f"val/{self.headline}"

    @property
    def better(self) -> str:
        """``"max"`` or ``"min"``: the direction of the headline score, which checkpointing and sweeps follow."""
        better = self.scores[self.headline]
        if better not in ("max", "min"):
            raise ConfigError(f"task {self.name}: its headline {self.headline} declares no direction")
        return better

    def summary_keys(self) -> list[str]:
        """The record's keys the run prints first: the summary's test scores, then the validation headline."""
        return [*(f"task/test_{score}" for score in self.summary), f"task/val_{self.headline}"]

    def is_detail(self, key: str) -> bool:
        """A per-item test score (a ``prefix_*`` pattern's, e.g. F1 per label) that the printed summary leaves out."""
        patterns = [score for score in self.scores if score.endswith("*")]
        return any(fnmatch(key, f"task/test_{pattern}") for pattern in patterns) and key not in self.summary_keys()

    def metric_specs(self) -> list[MetricSpec]:
        """Every ``task/`` key: each score on test (``task/test_<score>``) and on validation (``task/val_<score>``: the
        run records the headline of the tested weights; WiSE-FT more)."""
        return [
            MetricSpec(f"task/{prefix}_{score}", split, better)
            for prefix, split in (("test", "test"), ("val", "validation"))
            for score, better in self.scores.items()
        ]

    def prediction_files(self, data: SplitDataModule, module: TaskModule) -> dict[str, str]:
        """The test predictions as files of the run record (relative path -> text)."""
        raise NotImplementedError

    def record_files(self, data: SplitDataModule, module: TaskModule) -> dict[str, str]:
        """The test pass's files of the run record: its predictions, and its reliability bins where the task scores
        calibration (``calibration.json``: what the HTML report's reliability diagram draws, nothing recomputed)."""
        files = self.prediction_files(data, module)
        if module.test_reliability is not None:
            files[RELIABILITY_FILE] = json.dumps({"split": "test", **module.test_reliability}, indent=2) + "\n"
        return files

    def fairness_probe(self, settings: DictConfig, groups, split: str, names_file, missing: str | None = None):
        """This task's counterfactual fairness probe (``ftaudit.probes.fairness.FairnessProbe``) over the name
        ``groups`` read from ``names_file``, on the ``split`` sentences; ``missing``: why there are no groups."""
        raise NotImplementedError
