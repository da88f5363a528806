"""The task interface: everything that differs between tasks, and nothing else.

A task says how its splits are read and batched (its data module and the ``data.format`` values it reads), which
Hugging Face head it loads, how it is trained and scored (its LightningModule), which metrics it records (with
their split and direction), its predictions file, and its fairness probe. The run, the methods, the probes,
resources, tracking, sweeps and reports only talk to this interface.
"""

from __future__ import annotations

from omegaconf import DictConfig

from ftaudit.errors import ConfigError
from ftaudit.metrics import MetricSpec
from ftaudit.tasks.data import SplitDataModule
from ftaudit.tasks.module import TaskModule


class Task:
    name: str
    headline: str  # the score that chooses checkpoints and that sweeps maximise, on validation: task/val_<headline>
    head: str  # the transformers auto class of the model, e.g. "AutoModelForTokenClassification"
    formats: dict[str, type[SplitDataModule]]  # data.format -> the data module reading it
    module_class: type[TaskModule]
    scores: dict[str, str | None]  # score name (or ``prefix_*`` pattern) -> "max" | "min" | None: what it records

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
        return self.formats[data_cfg.format](data_cfg, tokenizer, seed, pad_to_multiple_of)

    def module(self, model, optimizer_cfg, data: SplitDataModule, **clipping) -> TaskModule:
        return self.module_class(model, optimizer_cfg, data, **clipping)

    @property
    def monitor(self) -> str:
        """What the module logs each validation epoch for the headline score (checkpointing, pruning)."""
        return f"val/{self.headline}"

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

    def fairness_probe(self, settings: DictConfig, groups, split: str, names_file, missing: str | None = None):
        """This task's counterfactual fairness probe (``ftaudit.probes.fairness.FairnessProbe``) over the name
        ``groups`` read from ``names_file``, on the ``split`` sentences; ``missing``: why there are no groups."""
        raise NotImplementedError
