"""A run, top to bottom, as one function each. Training: data -> model -> fit -> test -> evaluate and record.
Auditing a fine-tuned model against its base: data -> the model and its base -> test -> evaluate and record. Both
start (``start``) and end (``evaluate_and_record``: probes, resources, the saved model, the record) the same way."""

from __future__ import annotations

import logging
import math
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import hydra
import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel

from ftaudit.config import FTAUDIT_TRAINER_KEYS, AuditSettings, RunSettings, check_config
from ftaudit.errors import ConfigError, Interrupted
from ftaudit.hardware import (
    attention_implementation,
    check_worker_launch,
    compile_model,
    configure_hardware,
    inference_autocast,
    is_main_process,
    peak_tflops,
    process_count,
)
from ftaudit.hub import HubSplit
from ftaudit.methods import FineTuningMethod, build_method
from ftaudit.metrics import MetricSpec, check_finite, declarations
from ftaudit.models.loading import load_tokenizer
from ftaudit.models.saving import save_pretrained
from ftaudit.probes.base import Probe, ProbeContext, build_probes, probe_metric_specs, run_probes
from ftaudit.probes.cache import file_sha256
from ftaudit.progress import stage
from ftaudit.quiet import quiet_libraries
from ftaudit.resources import ResourceMeter
from ftaudit.resources.meter import RESOURCE_SPECS
from ftaudit.resume import CHECKPOINT_FOLDER, EpochCheckpoint, last_checkpoint, resume_checkpoint
from ftaudit.tasks import build_task
from ftaudit.tasks.base import Task
from ftaudit.tasks.data import SplitDataModule
from ftaudit.tasks.module import TaskModule
from ftaudit.tracking.loggers import build_loggers, tracking_callbacks
from ftaudit.tracking.model_card import base_model_of, model_card
from ftaudit.tracking.publish import publish_run
from ftaudit.tracking.record import environment, write_record
from ftaudit.tracking.wandb_run import wandb_run_closed

log = logging.getLogger(__name__)
SUMMARY_RESOURCES = ("resource/train_seconds", "resource/train_tokens_per_second")  # printed after the task's


def train(cfg: DictConfig, run_dir: Path, callbacks: list[L.Callback] = ()) -> dict[str, float]:
    """Fine-tune, evaluate and record one run; return its flat metrics. ``callbacks`` join the Trainer's (e.g. pruning)."""
    with wandb_run_closed():  # also when the run fails, so the next run in this process gets its own W&B run
        return _train(cfg, run_dir, callbacks)


def audit(cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    """Evaluate and record a fine-tuned model (``model.name_or_path``) against its base, without training."""
    with wandb_run_closed():
        return _audit(cfg, run_dir)


@dataclass
class Session:
    """What every run sets up before it has a model: its task, data, probes, hardware, meter and loggers."""

    cfg: DictConfig
    run_dir: Path
    task: Task
    probes: list[Probe]
    hardware: dict
    attention: str  # the attention implementation models are loaded with
    peak_source: str
    meter: ResourceMeter
    tokenizer: object
    datamodule: SplitDataModule
    loggers: list


def start(cfg: DictConfig, run_dir: Path, schema: type[BaseModel]) -> Session:
    """Check the config against ``schema``, seed, set up the hardware and the meter (timing ``setup``), and build what
    does not depend on the model. Everything that can be refused is built here: a bad setting fails now, not after an
    hour of training."""
    check_config(cfg, schema)
    if (run_dir / "metrics.json").exists():
        raise ConfigError(f"{run_dir} already holds a finished run; runs never mix into another's folder")
    quiet_libraries()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    hardware = configure_hardware(cfg)
    attention = attention_implementation(cfg.hardware.attention, hardware["accelerator"], hardware["precision"])
    check_worker_launch(cfg.trainer)
    main_process = is_main_process()  # DDP/FSDP workers train and test, only the main process records
    peak, peak_source = (
        peak_tflops(cfg.hardware, hardware["accelerator"], hardware["precision"]) if main_process else (None, "")
    )
    meter = ResourceMeter(peak, cfg.hardware.track_energy and main_process, cfg.hardware.country_iso_code)
    meter.start("setup")
    task = build_task(cfg.task)
    probes = build_probes(cfg, task)
    tokenizer = load_tokenizer(cfg.model)
    datamodule = task.datamodule(
        cfg.data, tokenizer, cfg.seed, pad_to_multiple_of=8 if hardware["accelerator"] == "gpu" else 1
    )
    datamodule.setup()
    return Session(
        cfg,
        run_dir,
        task,
        probes,
        hardware,
        attention,
        peak_source,
        meter,
        tokenizer,
        datamodule,
        build_loggers(cfg.logger),
    )


def _train(cfg: DictConfig, run_dir: Path, callbacks: list[L.Callback]) -> dict[str, float]:
    session = start(cfg, run_dir, RunSettings)
    resume_from = resume_checkpoint(cfg, run_dir)  # None for a fresh run
    task, datamodule, method = session.task, session.datamodule, build_method(cfg.method)
    specs = metric_specs(task, session.probes, method)

    model = task.load_model(cfg.model, datamodule, session.attention)
    base_state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    train_batches = len(datamodule.train_dataloader())
    model = method.prepare(model, total_steps=optimizer_steps(train_batches, cfg.trainer, process_count(cfg.trainer)))
    compile_model(model, cfg.hardware)
    module = task.module(
        model,
        cfg.optimizer,
        datamodule,
        gradient_clip_val=cfg.trainer.gradient_clip_val,
        gradient_clip_algorithm=cfg.trainer.gradient_clip_algorithm or "norm",
    )
    log.info(
        "task %s, model %s: %.1fM parameters, %d labels; train %d examples (%d tokens)",
        task.name,
        cfg.model.name,
        sum(p.numel() for p in model.parameters()) / 1e6,
        len(datamodule.labels),
        len(datamodule.splits["train"].input_ids),
        datamodule.train_token_count,
    )

    checkpoint = ModelCheckpoint(
        dirpath=run_dir / CHECKPOINT_FOLDER,
        filename="best",
        monitor=task.monitor,
        mode=task.better,
        save_top_k=1,
        save_weights_only=True,
        enable_version_counter=False,
    )
    trainer = build_trainer(
        cfg.trainer,
        session.hardware,
        [
            checkpoint,
            EpochCheckpoint(cfg, run_dir),
            session.meter,
            *tracking_callbacks(cfg, session.loggers),
            *method.callbacks(),
            *callbacks,
        ],
        session.loggers,
        run_dir,
    )
    session.meter.stop("setup")
    use_best = cfg.trainer.checkpoint == "best"
    with checkpoints_removed(run_dir, cfg.trainer.keep_checkpoint, is_main_process()), interruptible(trainer, run_dir):
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)
        last_val = trainer.callback_metrics.get(task.monitor)  # the test pass below clears callback_metrics
        trainer.test(module, datamodule=datamodule, ckpt_path="best" if use_best else None, verbose=False)

    metrics = {f"task/test_{key}": value for key, value in module.test_scores.items()}
    metrics[f"task/val_{task.headline}"] = float(checkpoint.best_model_score if use_best else last_val)
    if not trainer.is_global_zero:
        return metrics

    metrics.update(method.metrics(module.model))
    env = {
        "tested_checkpoint": f"{cfg.trainer.checkpoint} ({Path(checkpoint.best_model_path).name if use_best else 'final weights'})",
    }
    if resume_from:
        env["resumed"] = f"from {resume_from} (the state after its last finished epoch)"
    plain = method.merged(module.model).eval()  # adapters merged: weight names as base_state's, what probes read
    return evaluate_and_record(
        session,
        plain,
        base_state,
        base_model_of(cfg.model),
        metrics,
        specs,
        env,
        module,
        method.evaluate,
        models_to_save(cfg.record, module.model, plain),
    )


def _audit(cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    session = start(cfg, run_dir, AuditSettings)
    task, datamodule = session.task, session.datamodule
    specs = metric_specs(task, session.probes)

    with stage("loading the audited model and its base"):
        finetuned = task.load_audited(cfg.model, cfg.base, datamodule)
    module = task.module(finetuned.model, None, datamodule)  # no optimiser: it does not train
    log.info(
        "audit of %s (%s) against its base %s (named by %s): %d labels",
        finetuned.source,
        finetuned.form,
        finetuned.base,
        finetuned.base_named_by,
        len(finetuned.labels),
    )
    trainer = build_trainer(
        cfg.trainer,
        session.hardware,
        [session.meter, *tracking_callbacks(cfg, session.loggers)],
        session.loggers,
        run_dir,
    )
    session.meter.stop("setup")
    with interruptible(trainer, run_dir), stage("validation and test"):
        trainer.validate(module, datamodule=datamodule, verbose=False)
        val = float(trainer.callback_metrics[task.monitor])  # the test pass below clears callback_metrics
        trainer.test(module, datamodule=datamodule, verbose=False)

    metrics = {f"task/test_{key}": value for key, value in module.test_scores.items()}
    metrics[f"task/val_{task.headline}"] = val
    if not trainer.is_global_zero:
        return metrics
    env = {
        "tested_checkpoint": f"the audited model ({finetuned.source})",
        "audit": {
            "model": cfg.model.name_or_path,
            "loaded_from": finetuned.source,
            "form": finetuned.form,
            "base": finetuned.base,
            "base_named_by": finetuned.base_named_by,
            "labels": finetuned.labels,
        },
    }
    return evaluate_and_record(
        session,
        finetuned.model,
        finetuned.base_state,
        finetuned.base,
        metrics,
        specs,
        env,
        module,
    )


def evaluate_and_record(
    session: Session,
    model: torch.nn.Module,
    base_state: dict[str, torch.Tensor],
    base_source: str | None,
    metrics: dict[str, float],
    specs: list[MetricSpec],
    env: dict,
    module: TaskModule,
    measure_more: Callable[[ProbeContext], dict] | None = None,
    save: dict[str, torch.nn.Module] | None = None,
) -> dict[str, float]:
    """What every run does once its model is tested: the probes on ``model`` (a plain classifier) against the base
    (``base_state``: its weights under ``model``'s names; ``base_source``: its checkpoint), ``measure_more`` (a
    method's own measurements), the resources used, the models to ``save`` (folder name -> model), and the record
    (``metrics.json`` last, the test predictions of ``module``); returns the metrics. A try-out, whose ``module``
    evaluated only part of a split (``debug=...``, ``trainer.limit_val_batches``/``limit_test_batches``), records
    what it evaluated instead of its metrics."""
    cfg, task, meter, run_dir = session.cfg, session.task, session.meter, session.run_dir
    partial = module.partial_evaluation()  # before measure_more, which may evaluate the splits again (WiSE-FT)
    hardware = session.hardware
    context = ProbeContext(
        cfg,
        model,
        base_state,
        session.tokenizer,
        session.datamodule,
        run_dir,
        next(model.parameters()).device,
        hardware["precision"],
        inference_autocast(hardware["accelerator"], hardware["precision"]),
        task,
        base_source,
    )
    meter.start("probes")
    probe_metrics, skipped = run_probes(session.probes, context)
    metrics.update(probe_metrics)
    if measure_more:
        metrics.update(measure_more(context))
    meter.stop("probes")
    metrics.update(meter.metrics())
    check_finite(metrics, "the run")

    device = f"{hardware['accelerator']} ({hardware['precision']})"
    env = {
        **environment(cfg.seed, device),
        "task": task.name,
        **env,
        "skipped_probes": skipped,
        "data_files": data_file_hashes(session.datamodule, session.probes),
        "attention": session.attention,
        "data": session.datamodule.data_info,  # what the task's data module says of its splits
        "resources": {"energy_method": meter.energy_method, "peak_tflops_source": session.peak_source},
    }
    if partial:  # a try-out's scores are not its splits': printed, never recorded as metrics
        write_record(run_dir, cfg, None, {}, {**env, "partial_evaluation": partial}, {})
        print_summary(run_dir, metrics, env["tested_checkpoint"], task)
        print(f"a try-out: evaluated {partial}; no metrics.json or predictions written", flush=True)
        return metrics
    if save:
        env["saved_model"] = save_models(save, session, metrics, skipped, device)
    write_record(
        run_dir, cfg, metrics, declarations(metrics, specs), env, task.prediction_files(session.datamodule, module)
    )
    print_summary(run_dir, metrics, env["tested_checkpoint"], task)
    publish_run(session.loggers, run_dir, metrics)
    return metrics


def models_to_save(
    record_cfg: DictConfig, trained: torch.nn.Module, plain: torch.nn.Module
) -> dict[str, torch.nn.Module]:
    """Folder name -> model: the trained model (a peft model saves its adapter) in ``model/``, and a peft run's merged
    plain model in ``merged_model/`` when asked."""
    if not record_cfg.save_model:
        return {}
    if record_cfg.save_merged and plain is not trained:
        return {"model": trained, "merged_model": plain}
    return {"model": trained}


def save_models(
    models: dict[str, torch.nn.Module],
    session: Session,
    metrics: dict[str, float],
    skipped: dict[str, str],
    device: str,
) -> dict[str, dict]:
    """Each model in its folder of the run directory, with its tokenizer and model card; what was written, and its size."""
    written = {}
    for folder, model in models.items():
        adapter = hasattr(model, "peft_config")  # a peft model saves its adapter
        card = model_card(
            session.cfg,
            session.task,
            metrics,
            session.probes,
            skipped,
            session.datamodule.labels,
            adapter,
            session.run_dir.name,
            reproducing_command(),
            device,
        )
        size = save_pretrained(session.run_dir / folder, model, session.tokenizer, card)
        written[folder] = {"form": "peft adapter" if adapter else "transformers", "bytes": size}
        log.info("saved the fine-tuned model in %s (%.1f MB)", session.run_dir / folder, size / 1e6)
    return written


def reproducing_command() -> str | None:
    """``python train.py <overrides>`` of this run, without a resume's own override; None outside a Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    overrides = [item for item in HydraConfig.get().overrides.task if not item.startswith("trainer.resume=")]
    return shlex.join(["python", "train.py", *overrides])


def metric_specs(task: Task, probes: list[Probe], method: FineTuningMethod | None = None) -> list[MetricSpec]:
    """The declaration (split, direction) of every key a run with these parts (an audit: no method) can record."""
    run_specs = [*task.metric_specs(), *probe_metric_specs(probes), *RESOURCE_SPECS]
    return [*run_specs, *(method.metric_specs(run_specs) if method else [])]


def declared_metrics(cfg: DictConfig) -> list[MetricSpec]:
    """What a run of ``cfg`` would record, declared, without running it (sweeps check their objectives with it)."""
    task = build_task(cfg.task)
    return metric_specs(task, build_probes(cfg, task), build_method(cfg.method))


def optimizer_steps(train_batches: int, trainer_cfg: DictConfig, processes: int) -> int:
    """The optimiser steps the run will take: its batches per process, gradient accumulation, epochs and step cap
    (AdaLoRA's rank schedule spans exactly these). Each of ``processes`` DDP workers takes every processes-th batch."""
    per_process = math.ceil(train_batches / processes)
    limit = trainer_cfg.limit_train_batches
    if limit is not None:
        per_process = min(per_process, int(limit)) if isinstance(limit, int) else int(per_process * limit)
    steps = math.ceil(per_process / trainer_cfg.accumulate_grad_batches) * trainer_cfg.max_epochs
    return min(steps, trainer_cfg.max_steps) if trainer_cfg.max_steps > 0 else steps


def build_trainer(trainer_cfg: DictConfig, hardware: dict, callbacks: list, loggers: list, run_dir: Path) -> L.Trainer:
    """Lightning's Trainer from the ``trainer`` node, with the devices resolved and what ftaudit sets itself: its
    callbacks and loggers, the run folder, its own batch samplers, and gradient clipping (done by the module)."""
    arguments = {
        key: value
        for key, value in OmegaConf.to_container(trainer_cfg, resolve=True).items()
        if key not in FTAUDIT_TRAINER_KEYS and key not in ("gradient_clip_val", "gradient_clip_algorithm")
    }
    arguments.update(
        hardware,
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=run_dir,
        enable_progress_bar=trainer_cfg.progress_bar,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )  # the length-grouped sampler shards batches across processes itself
    try:
        return hydra.utils.get_class(trainer_cfg._target_)(**arguments)
    except (TypeError, ValueError, MisconfigurationException) as err:
        raise ConfigError(
            f"trainer: {trainer_cfg._target_} rejected the settings: {' '.join(str(err).split())}"
        ) from None


class checkpoints_removed:
    """The run's checkpoints go when the block ends (by the main process, which owns the folder). After success the
    best one stays when asked (``trainer.keep_checkpoint``), never the last epoch's; a failed or pruned run leaves
    none, an interrupted one (Ctrl-C) its last epoch's, to resume from (``trainer.resume``)."""

    def __init__(self, run_dir: Path, keep: bool, main_process: bool):
        self.run_dir, self.keep, self.main_process = run_dir, keep, main_process

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if not self.main_process:
            return
        if error is None and self.keep:
            last_checkpoint(self.run_dir).unlink(missing_ok=True)
        elif not (isinstance(error, KeyboardInterrupt) and last_checkpoint(self.run_dir).is_file()):
            shutil.rmtree(self.run_dir / CHECKPOINT_FOLDER, ignore_errors=True)


class interruptible:
    """Ctrl-C during fit or test ends the run with one line saying where its partial folder is.

    Lightning catches the ``KeyboardInterrupt`` itself, shuts down and exits the process; this turns that exit into
    ``Interrupted``, which entry points print as one line and sweeps record on the trial.
    """

    def __init__(self, trainer: L.Trainer, run_dir: Path):
        self.trainer, self.run_dir = trainer, run_dir

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if isinstance(error, KeyboardInterrupt) or (isinstance(error, SystemExit) and self.trainer.interrupted):
            resume = (
                f"; continue it with the same overrides and trainer.resume={self.run_dir}"
                if last_checkpoint(self.run_dir).is_file()
                else ""
            )
            raise Interrupted(
                f"interrupted (Ctrl-C); the partial run is in {self.run_dir} (no metrics.json: not a record){resume}"
            ) from None


def data_file_hashes(datamodule, probes: list[Probe]) -> list[dict]:
    """Every data file the run read, resolved, with its SHA-256; a hub split as its id, revision and fingerprint."""
    sources = dict.fromkeys(
        source if isinstance(source, HubSplit) else Path(source).resolve()
        for source in [*datamodule.data_files, *(f for p in probes for f in p.data_files)]
    )
    return [
        source.record() if isinstance(source, HubSplit) else {"path": str(source), "sha256": file_sha256(source)}
        for source in sources
    ]


def print_summary(run_dir: Path, metrics: dict[str, float], tested: str, task: Task) -> None:
    first = [*task.summary_keys(), *SUMMARY_RESOURCES]
    rows = [(key, metrics[key]) for key in first if key in metrics]
    rows += sorted((k, v) for k, v in metrics.items() if k not in first and not task.is_detail(k))
    width = max(len(key) for key, _ in rows)
    lines = [
        f"  {key:<{width}}  {value:.4f}" if abs(value) < 1000 else f"  {key:<{width}}  {value:.1f}"
        for key, value in rows
    ]
    print(f"\nrun directory: {run_dir}\ntested checkpoint: {tested}\n" + "\n".join(lines), flush=True)
