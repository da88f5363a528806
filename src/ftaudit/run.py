"""A run, top to bottom, as one function each. Training: data -> model -> fit -> test -> evaluate and record.
Auditing a fine-tuned model against its base: data -> the model and its base -> test -> evaluate and record. Both
start (``start``) and end (``evaluate_and_record``: probes, resources, the saved model, the record) the same way."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig

from ftaudit.config import AuditSettings, RunSettings
from ftaudit.hardware import compile_model, is_main_process, process_count
from ftaudit.methods import FineTuningMethod, build_method
from ftaudit.metrics import MetricSpec, check_finite, declarations
from ftaudit.probes.base import Probe, ProbeContext, probe_metric_specs, run_probes
from ftaudit.probes.build import build_probes
from ftaudit.progress import stage
from ftaudit.resources.meter import RESOURCE_SPECS
from ftaudit.resume import EpochCheckpoint, resume_checkpoint
from ftaudit.session import Session, probe_context, run_environment, start
from ftaudit.tasks import build_task
from ftaudit.tasks.base import Task
from ftaudit.tasks.data import SplitDataModule
from ftaudit.tasks.module import TaskModule
from ftaudit.tracking.loggers import tracking_callbacks
from ftaudit.tracking.model_card import base_model_of
from ftaudit.tracking.publish import publish_run
from ftaudit.tracking.record import write_record
from ftaudit.tracking.saved_models import models_to_save, save_models
from ftaudit.tracking.summary import print_summary
from ftaudit.tracking.wandb_run import wandb_run_closed
from ftaudit.trainer import best_checkpoint, build_trainer, checkpoints_removed, interruptible, optimizer_steps

log = logging.getLogger(__name__)


def train(cfg: DictConfig, run_dir: Path, callbacks: list[L.Callback] = ()) -> dict[str, float]:
    """Fine-tune, evaluate and record one run; return its flat metrics. ``callbacks`` join the Trainer's (e.g. pruning)."""
    with wandb_run_closed():  # also when the run fails, so the next run in this process gets its own W&B run
        return _train(cfg, run_dir, callbacks)


def audit(cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    """Evaluate and record a fine-tuned model (``model.name_or_path``) against its base, without training."""
    with wandb_run_closed():
        return _audit(cfg, run_dir)


def _train(cfg: DictConfig, run_dir: Path, callbacks: list[L.Callback]) -> dict[str, float]:
    session = start(cfg, run_dir, RunSettings)
    resume_from = resume_checkpoint(cfg, run_dir)  # None for a fresh run
    task, datamodule, method = session.task, session.datamodule, build_method(cfg.method)
    specs = metric_specs(task, session.probes, method)

    model = task.load_model(cfg.model, datamodule, session.attention)
    base_state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    model = method.prepare(model, total_steps=planned_steps(cfg, datamodule))
    compile_model(model, cfg.hardware)
    module = task.module(
        model,
        cfg.optimizer,
        datamodule,
        gradient_clip_val=cfg.trainer.gradient_clip_val,
        gradient_clip_algorithm=cfg.trainer.gradient_clip_algorithm or "norm",
    )
    log_start(task, cfg.model.name, model, datamodule)

    checkpoint = best_checkpoint(run_dir, task)
    run_callbacks = [checkpoint, EpochCheckpoint(cfg, run_dir), session.meter, *method.callbacks(), *callbacks]
    trainer = build_trainer(
        cfg.trainer,
        session.hardware,
        [*run_callbacks, *tracking_callbacks(cfg, session.loggers)],
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
    tested = Path(checkpoint.best_model_path).name if use_best else "final weights"
    env = {"tested_checkpoint": f"{cfg.trainer.checkpoint} ({tested})"}
    if resume_from:
        env["resumed"] = f"from {resume_from} (the state after its last finished epoch)"
    plain = method.merged(module.model).eval()  # adapters merged: weight names as base_state's, what probes read
    saved = models_to_save(cfg.record, module.model, plain)
    return evaluate_and_record(
        session, plain, base_state, base_model_of(cfg.model), metrics, specs, env, module, method.evaluate, saved
    )


def planned_steps(cfg: DictConfig, datamodule: SplitDataModule) -> int:
    """The optimiser steps the fit will take (AdaLoRA's rank schedule spans them)."""
    return optimizer_steps(len(datamodule.train_dataloader()), cfg.trainer, process_count(cfg.trainer))


def log_start(task: Task, model_name: str, model: torch.nn.Module, datamodule: SplitDataModule) -> None:
    log.info(
        "task %s, model %s: %.1fM parameters, %d labels; train %d examples (%d tokens)",
        task.name,
        model_name,
        sum(p.numel() for p in model.parameters()) / 1e6,
        len(datamodule.labels),
        len(datamodule.splits["train"].input_ids),
        datamodule.train_token_count,
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
    context = probe_context(session, model, base_state, base_source)
    meter.start("probes")
    probe_metrics, skipped = run_probes(session.probes, context)
    metrics.update(probe_metrics)
    if measure_more:
        metrics.update(measure_more(context))
    meter.stop("probes")
    metrics.update(meter.metrics())
    check_finite(metrics, "the run")

    device = f"{session.hardware['accelerator']} ({session.hardware['precision']})"
    env = run_environment(session, device, env, skipped)
    if partial:  # a try-out's scores are not its splits': printed, never recorded as metrics
        write_record(run_dir, cfg, None, {}, {**env, "partial_evaluation": partial}, {})
        print_summary(run_dir, metrics, env["tested_checkpoint"], task)
        print(f"a try-out: evaluated {partial}; no metrics.json or predictions written", flush=True)
        return metrics
    if save:
        env["saved_model"] = save_models(save, session, metrics, skipped, device)
    write_record(
        run_dir, cfg, metrics, declarations(metrics, specs), env, task.record_files(session.datamodule, module)
    )
    print_summary(run_dir, metrics, env["tested_checkpoint"], task)
    publish_run(session.loggers, run_dir, metrics)
    return metrics


def metric_specs(task: Task, probes: list[Probe], method: FineTuningMethod | None = None) -> list[MetricSpec]:
    """The declaration (split, direction) of every key a run with these parts (an audit: no method) can record."""
    run_specs = [*task.metric_specs(), *probe_metric_specs(probes), *RESOURCE_SPECS]
    return [*run_specs, *(method.metric_specs(run_specs) if method else [])]


def declared_metrics(cfg: DictConfig) -> list[MetricSpec]:
    """What a run of ``cfg`` would record, declared, without running it (sweeps check their objectives with it)."""
    task = build_task(cfg.task)
    return metric_specs(task, build_probes(cfg, task), build_method(cfg.method))
