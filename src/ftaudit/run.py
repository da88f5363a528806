"""One fine-tuning run, top to bottom: data -> model -> fit -> test -> probes -> record."""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import hydra
import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from ftaudit.config import FTAUDIT_TRAINER_KEYS, check_config
from ftaudit.errors import ConfigError, Interrupted
from ftaudit.hardware import (check_worker_launch, compile_model, configure_hardware, inference_autocast,
                              is_main_process, peak_tflops, process_count)
from ftaudit.methods import FineTuningMethod, build_method
from ftaudit.metrics import MetricSpec, check_finite, declarations
from ftaudit.models.loading import load_classifier, load_tokenizer
from ftaudit.probes.base import Probe, ProbeContext, build_probes, probe_metric_specs, run_probes
from ftaudit.probes.cache import file_sha256
from ftaudit.quiet import quiet_libraries
from ftaudit.resources import ResourceMeter
from ftaudit.resources.meter import RESOURCE_SPECS
from ftaudit.tasks import build_task
from ftaudit.tasks.base import Task
from ftaudit.tracking.loggers import build_loggers, tracking_callbacks
from ftaudit.tracking.publish import publish_run
from ftaudit.tracking.record import environment, write_record
from ftaudit.tracking.wandb_run import wandb_run_closed

log = logging.getLogger(__name__)

SUMMARY_KEYS = ("task/test_f1", "task/test_f1_macro", "task/test_accuracy", "task/test_precision", "task/test_recall",
                "task/test_f1_strict", "task/test_ece", "task/val_f1", "task/val_f1_macro", "resource/train_seconds",
                "resource/train_tokens_per_second")


def train(cfg: DictConfig, run_dir: Path, callbacks: list[L.Callback] = ()) -> dict[str, float]:
    """Fine-tune, evaluate and record one run; return its flat metrics. ``callbacks`` join the Trainer's (e.g. pruning)."""
    with wandb_run_closed():  # also when the run fails, so the next run in this process gets its own W&B run
        return _train(cfg, run_dir, callbacks)


def _train(cfg: DictConfig, run_dir: Path, callbacks: list[L.Callback]) -> dict[str, float]:
    check_config(cfg)
    if (run_dir / "metrics.json").exists():
        raise ConfigError(f"{run_dir} already holds a finished run; runs never mix into another's folder")
    quiet_libraries()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    hardware = configure_hardware(cfg)
    check_worker_launch(cfg.trainer)
    main_process = is_main_process()  # DDP/FSDP workers train and test, only the main process records
    peak, peak_source = peak_tflops(cfg.hardware, hardware["accelerator"], hardware["precision"]) if main_process else (None, "")
    meter = ResourceMeter(peak, cfg.hardware.track_energy and main_process, cfg.hardware.country_iso_code)
    meter.start("setup")
    # Everything that can be refused is built before training: a bad setting fails now, not after an hour.
    task, method = build_task(cfg.task), build_method(cfg.method)
    probes = build_probes(cfg, task)
    specs = metric_specs(task, probes, method)

    tokenizer = load_tokenizer(cfg.model)
    datamodule = task.datamodule(cfg.data, tokenizer, cfg.seed, pad_to_multiple_of=8 if hardware["accelerator"] == "gpu" else 1)
    datamodule.setup()
    model = load_classifier(cfg.model, task.head, datamodule.labels)
    base_state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    train_batches = len(datamodule.train_dataloader())
    model = method.prepare(model, total_steps=optimizer_steps(train_batches, cfg.trainer, process_count(cfg.trainer)))
    compile_model(model, cfg.hardware)
    module = task.module(model, cfg.optimizer, datamodule, gradient_clip_val=cfg.trainer.gradient_clip_val,
                         gradient_clip_algorithm=cfg.trainer.gradient_clip_algorithm or "norm")
    log.info("task %s, model %s: %.1fM parameters, %d labels; train %d examples (%d tokens)", task.name, cfg.model.name,
             sum(p.numel() for p in model.parameters()) / 1e6, len(datamodule.labels),
             len(datamodule.splits["train"].input_ids), datamodule.train_token_count)

    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=task.monitor, mode="max",
                                 save_top_k=1, save_weights_only=True, enable_version_counter=False)
    loggers = build_loggers(cfg.logger)
    trainer = build_trainer(cfg.trainer, hardware, [checkpoint, meter, *tracking_callbacks(cfg, loggers),
                                                    *method.callbacks(), *callbacks], loggers, run_dir)
    meter.stop("setup")
    use_best = cfg.trainer.checkpoint == "best"
    with checkpoints_removed(run_dir, cfg.trainer.keep_checkpoint, main_process), interruptible(trainer, run_dir):
        trainer.fit(module, datamodule=datamodule)
        last_val = float(trainer.callback_metrics[task.monitor])  # the test pass below clears callback_metrics
        trainer.test(module, datamodule=datamodule, ckpt_path="best" if use_best else None, verbose=False)

    metrics = {f"task/test_{key}": value for key, value in module.test_scores.items()}
    metrics[f"task/val_{task.headline}"] = float(checkpoint.best_model_score) if use_best else last_val
    if not trainer.is_global_zero:
        return metrics

    metrics.update(method.metrics(module.model))
    # Probes see a plain classifier (adapters merged) whose weight names match base_state.
    probe_context = ProbeContext(cfg, method.merged(module.model).eval(), base_state, tokenizer, datamodule, run_dir,
                                 module.device, hardware["precision"],
                                 inference_autocast(hardware["accelerator"], hardware["precision"]), task)
    meter.start("probes")
    probe_metrics, skipped = run_probes(probes, probe_context)
    metrics.update(probe_metrics)
    metrics.update(method.evaluate(probe_context))
    meter.stop("probes")
    metrics.update(meter.metrics())
    check_finite(metrics, "the run")

    env = environment(cfg.seed, f"{hardware['accelerator']} ({hardware['precision']})")
    env["task"] = task.name
    env["tested_checkpoint"] = f"{cfg.trainer.checkpoint} ({Path(checkpoint.best_model_path).name if use_best else 'final weights'})"
    env["skipped_probes"] = skipped
    env["data_files"] = data_file_hashes(datamodule, probes)
    env["data"] = datamodule.data_info  # what the task's data module says of its splits (e.g. a seeded split's ids)
    env["resources"] = {"energy_method": meter.energy_method, "peak_tflops_source": peak_source}
    write_record(run_dir, cfg, metrics, declarations(metrics, specs), env, task.prediction_files(datamodule, module))
    print_summary(run_dir, metrics, env["tested_checkpoint"])
    publish_run(loggers, run_dir, metrics)
    return metrics


def metric_specs(task: Task, probes: list[Probe], method: FineTuningMethod) -> list[MetricSpec]:
    """The declaration (split, direction) of every key a run with these parts can record."""
    run_specs = [*task.metric_specs(), *probe_metric_specs(probes), *RESOURCE_SPECS]
    return [*run_specs, *method.metric_specs(run_specs)]


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
    arguments = {key: value for key, value in OmegaConf.to_container(trainer_cfg, resolve=True).items()
                 if key not in FTAUDIT_TRAINER_KEYS and key not in ("gradient_clip_val", "gradient_clip_algorithm")}
    arguments.update(hardware, callbacks=callbacks, logger=loggers or False, default_root_dir=run_dir,
                     enable_progress_bar=trainer_cfg.progress_bar, enable_model_summary=False,
                     use_distributed_sampler=False)  # the length-grouped sampler shards batches across processes itself
    try:
        return hydra.utils.get_class(trainer_cfg._target_)(**arguments)
    except (TypeError, ValueError, MisconfigurationException) as err:
        raise ConfigError(f"trainer: {trainer_cfg._target_} rejected the settings: {' '.join(str(err).split())}") from None


class checkpoints_removed:
    """The run's checkpoint folder goes when the block ends (by the main process, which owns the folder), kept only
    after success when asked: a failed or pruned run leaves no checkpoint, a finished one no empty folder."""

    def __init__(self, run_dir: Path, keep: bool, main_process: bool):
        self.folder, self.keep, self.main_process = run_dir / "checkpoints", keep, main_process

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self.main_process and (error is not None or not self.keep):
            shutil.rmtree(self.folder, ignore_errors=True)


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
            raise Interrupted(f"interrupted (Ctrl-C); the partial run is in {self.run_dir} (no metrics.json: not a "
                              "record)") from None


def data_file_hashes(datamodule, probes: list[Probe]) -> list[dict]:
    """Every data file the run read, resolved, with its SHA-256."""
    paths = dict.fromkeys(Path(p).resolve() for p in [*datamodule.data_files, *(f for p in probes for f in p.data_files)])
    return [{"path": str(path), "sha256": file_sha256(path)} for path in paths]


def print_summary(run_dir: Path, metrics: dict[str, float], tested: str) -> None:
    rows = [(key, metrics[key]) for key in SUMMARY_KEYS if key in metrics]
    rows += sorted((k, v) for k, v in metrics.items() if k not in SUMMARY_KEYS and not k.startswith("task/test_f1_"))
    width = max(len(key) for key, _ in rows)
    lines = [f"  {key:<{width}}  {value:.4f}" if abs(value) < 1000 else f"  {key:<{width}}  {value:.1f}" for key, value in rows]
    print(f"\nrun directory: {run_dir}\ntested checkpoint: {tested}\n" + "\n".join(lines), flush=True)
