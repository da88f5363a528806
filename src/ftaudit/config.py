"""The run config's types and ranges, checked before anything runs: every problem in one line that names the key,
the value given and what is allowed.

Hydra composes the YAML tree (top-level ``conf/``, shipped in the wheel as ``ftaudit.conf``); these schemas say what
each value may be. The ``trainer`` node is Lightning's Trainer (``_target_``): every argument of
``lightning.pytorch.Trainer`` may be set there, and a key that is none of them is an error, as is overriding one of
the few that ftaudit sets itself.
"""

from __future__ import annotations

import inspect
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Literal

from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ftaudit.errors import ConfigError

# The Hydra config tree: the checkout's conf/ in an editable install, the wheel's copy otherwise.
CONFIG_DIR = Path(str(files("ftaudit.conf")))

PositiveInt = Annotated[int, Field(ge=1)]
Probability = Annotated[float, Field(ge=0, lt=1)]


class Settings(BaseModel):
    """Known keys are typed and ranged; others (e.g. an optimiser's own arguments) pass."""

    model_config = ConfigDict(extra="allow", strict=False)


class Closed(Settings):
    model_config = ConfigDict(extra="forbid", strict=False)


class EvaluationTrainerSettings(Settings):
    """The ``trainer`` node of an audit: Lightning's Trainer for the test pass only."""

    deterministic: bool | Literal["warn"] | None
    progress_bar: bool


class TrainerSettings(EvaluationTrainerSettings):
    max_epochs: PositiveInt
    gradient_clip_val: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None
    gradient_clip_algorithm: Literal["norm", "value"] | None = None
    log_every_n_steps: PositiveInt
    accumulate_grad_batches: PositiveInt = 1
    # ftaudit's own, not Lightning's:
    checkpoint: Literal["best", "last"]
    keep_checkpoint: bool
    resume: str | None


class OptimizerSettings(Settings):
    lr: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    weight_decay: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    warmup_ratio: Probability


class ModelSettings(Settings):
    name_or_path: str
    dropout: Probability | None


class DataSettings(Settings):
    batch_size: PositiveInt
    eval_batch_size: PositiveInt
    max_train_samples: PositiveInt | None
    max_eval_samples: PositiveInt | None
    max_length: Annotated[int, Field(ge=2)] | None
    group_by_length: bool


class HardwareSettings(Settings):
    num_threads: PositiveInt | None
    compile: bool
    peak_tflops: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None
    track_energy: bool


class RecordSettings(Closed):
    save_model: bool
    save_merged: bool


class BaseModelSettings(Closed):
    name_or_path: str | None


class RunSettings(Settings):
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)]
    trainer: TrainerSettings
    optimizer: OptimizerSettings
    model: ModelSettings
    data: DataSettings
    hardware: HardwareSettings
    record: RecordSettings


class AuditSettings(Settings):
    """``audit.py``: a fine-tuned model (``model``) measured against its ``base``, without training."""

    seed: Annotated[int, Field(ge=0, le=2**32 - 1)]
    trainer: EvaluationTrainerSettings
    model: ModelSettings
    base: BaseModelSettings
    data: DataSettings
    hardware: HardwareSettings


# Trainer arguments ftaudit sets itself: the run's callbacks, loggers and folder, and its own batch samplers.
SET_BY_FTAUDIT = {
    "callbacks": "the run's callbacks",
    "logger": "logger=...",
    "default_root_dir": "hydra.run.dir",
    "enable_checkpointing": "trainer.checkpoint",
    "enable_progress_bar": "trainer.progress_bar",
    "use_distributed_sampler": "the length-grouped sampler, which shards batches itself",
    "enable_model_summary": "quiet logs",
}
FTAUDIT_TRAINER_KEYS = {"_target_", "checkpoint", "keep_checkpoint", "progress_bar", "resume"}


def describe_error(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"])
    given = error.get("input")
    shown = f"={given!r}" if not isinstance(given, dict) else ""
    return f"{key}{shown}: {error['msg'].replace('Input should be', 'must be')}"


def validate(values: dict, schema: type[BaseModel], prefix: str = "") -> list[str]:
    """The problems of ``values`` against ``schema``, one phrase each (``key=value: what is allowed``)."""
    try:
        schema.model_validate(values)
    except ValidationError as err:
        return [prefix + describe_error(error) for error in err.errors(include_url=False)]
    return []


def trainer_problems(trainer: DictConfig) -> list[str]:
    """Keys of the ``trainer`` node that are not Lightning Trainer arguments, or that ftaudit sets itself."""
    from lightning.pytorch import Trainer

    arguments = set(inspect.signature(Trainer.__init__).parameters) - {"self"}
    problems = []
    for key in trainer:
        if key in SET_BY_FTAUDIT:
            problems.append(f"trainer.{key} is set by ftaudit ({SET_BY_FTAUDIT[key]}); remove it")
        elif key not in arguments and key not in FTAUDIT_TRAINER_KEYS:
            problems.append(
                f"trainer.{key} is not an argument of lightning.pytorch.Trainer (nor one of ftaudit's: "
                f"{', '.join(sorted(FTAUDIT_TRAINER_KEYS - {'_target_'}))})"
            )
    return problems


def check_config(cfg: DictConfig, schema: type[BaseModel] = RunSettings) -> None:
    """Every type and range problem of the run config (an audit's: ``AuditSettings``), in one ``ConfigError``."""
    sections = ("seed", *schema.model_fields.keys() - {"seed"})
    try:
        values = {
            key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
            for key in sections
        }
    except Exception as err:  # an interpolation that does not resolve, e.g. ${model.lr} after model.lr was removed
        raise ConfigError(f"the config does not resolve: {str(err).splitlines()[0]}") from None
    problems = validate(values, schema) + trainer_problems(cfg.trainer)
    if problems:
        raise ConfigError("; ".join(problems))
