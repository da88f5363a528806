"""One fine-tuning run, top to bottom: data -> model -> fit -> test -> record."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from ftaudit.config import check_config
from ftaudit.data.ner import NERDataModule
from ftaudit.evaluation import conlleval_lines
from ftaudit.hardware import (attention_implementation, check_worker_launch, compile_model, configure_hardware,
                              is_main_process, peak_tflops)
from ftaudit.methods import build_method
from ftaudit.models.loading import load_token_classifier, load_tokenizer
from ftaudit.models.ner import NERTagger
from ftaudit.probes.base import ProbeContext, build_probes, run_probes
from ftaudit.quiet import quiet_libraries
from ftaudit.resources import ResourceMeter
from ftaudit.tracking.loggers import tracking_callbacks
from ftaudit.tracking.record import environment, write_record
from ftaudit.tracking.wandb_run import publish_run, wandb_run_closed

log = logging.getLogger(__name__)

SUMMARY_KEYS = ("task/test_f1", "task/test_precision", "task/test_recall", "task/test_f1_strict", "task/val_f1",
                "resource/train_seconds", "resource/train_tokens_per_second")


def train(cfg: DictConfig, run_dir: Path, callbacks: list[L.Callback] = ()) -> dict[str, float]:
    """Fine-tune, evaluate and record one run; return its flat metrics. ``callbacks`` join the Trainer's (e.g. pruning)."""
    with wandb_run_closed():  # also when the run fails, so the next run in this process gets its own W&B run
        return _train(cfg, run_dir, callbacks)


def _train(cfg: DictConfig, run_dir: Path, callbacks: list[L.Callback]) -> dict[str, float]:
    check_config(cfg)
    quiet_libraries()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    hardware = configure_hardware(cfg.hardware)
    attention = attention_implementation(cfg.hardware.attention, hardware["accelerator"], hardware["precision"])
    check_worker_launch(cfg.hardware)
    main_process = is_main_process()  # DDP/FSDP workers train and test, only the main process records
    peak, peak_source = peak_tflops(cfg.hardware, hardware["accelerator"], hardware["precision"]) if main_process else (None, "")
    meter = ResourceMeter(peak, cfg.hardware.track_energy and main_process, cfg.hardware.country_iso_code)
    meter.start("setup")
    method = build_method(cfg.method)
    probes = build_probes(cfg)  # before training: a bad probe setting fails now, not after an hour of training

    tokenizer = load_tokenizer(cfg.model)
    datamodule = NERDataModule(cfg.data, tokenizer, cfg.seed, pad_to_multiple_of=8 if hardware["accelerator"] == "gpu" else 1)
    datamodule.setup()
    model = load_token_classifier(cfg.model, datamodule.labels, attention)
    base_state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    model = method.prepare(model, total_steps=len(datamodule.train_dataloader()) * cfg.trainer.max_epochs)
    compile_model(model, cfg.hardware)
    tagger = NERTagger(model, cfg.optimizer, datamodule.labels)
    log.info("model %s: %.1fM parameters, %d labels; train %d sentences (%d tokens)", cfg.model.name,
             sum(p.numel() for p in model.parameters()) / 1e6, len(datamodule.labels),
             len(datamodule.splits["train"].sentences), datamodule.train_token_count)

    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor="val/f1", mode="max",
                                 save_top_k=1, save_weights_only=True, enable_version_counter=False)
    loggers = [hydra.utils.instantiate(c) for c in cfg.logger.values()]
    trainer = L.Trainer(
        **hardware, max_epochs=cfg.trainer.max_epochs, gradient_clip_val=cfg.trainer.gradient_clip_val,
        log_every_n_steps=cfg.trainer.log_every_n_steps, enable_progress_bar=cfg.trainer.progress_bar,
        callbacks=[checkpoint, meter, *tracking_callbacks(cfg, loggers), *method.callbacks(), *callbacks], logger=loggers or False,
        default_root_dir=run_dir, num_sanity_val_steps=0, enable_model_summary=False, deterministic=cfg.trainer.deterministic,
        use_distributed_sampler=False,  # the length-grouped sampler shards batches across processes itself
    )
    meter.stop("setup")
    trainer.fit(tagger, datamodule=datamodule)
    last_val_f1 = float(trainer.callback_metrics["val/f1"])  # the test pass below clears callback_metrics
    use_best = cfg.trainer.checkpoint == "best"
    trainer.test(tagger, datamodule=datamodule, ckpt_path="best" if use_best else None, verbose=False)

    metrics = {f"task/test_{key}": value for key, value in tagger.test_scores.items()}
    metrics["task/val_f1"] = float(checkpoint.best_model_score) if use_best else last_val_f1
    if not trainer.is_global_zero:
        return metrics
    if not cfg.trainer.keep_checkpoint:
        Path(checkpoint.best_model_path).unlink(missing_ok=True)

    metrics.update(method.metrics(tagger.model))
    # Probes see a plain classifier (adapters merged) whose weight names match base_state.
    probe_context = ProbeContext(cfg, method.merged(tagger.model).eval(), base_state, tokenizer, datamodule, run_dir,
                                 tagger.device)
    meter.start("probes")
    probe_metrics, skipped = run_probes(probes, probe_context)
    metrics.update(probe_metrics)
    metrics.update(method.evaluate(probe_context))
    meter.stop("probes")
    metrics.update(meter.metrics())

    test = datamodule.splits["test"]
    predictions = conlleval_lines([s.tokens for s in test.sentences], [s.tags for s in test.sentences], tagger.test_tags)
    env = environment(cfg.seed, f"{hardware['accelerator']} ({hardware['precision']})")
    env["tested_checkpoint"] = f"{cfg.trainer.checkpoint} ({Path(checkpoint.best_model_path).name if use_best else 'final weights'})"
    env["skipped_probes"] = skipped
    env["attention"] = attention
    env["resources"] = {"energy_method": meter.energy_method, "peak_tflops_source": peak_source}
    write_record(run_dir, cfg, metrics, env, {"predictions/test.txt": predictions})
    print_summary(run_dir, metrics, env["tested_checkpoint"])
    publish_run(loggers, run_dir, metrics)
    return metrics


def print_summary(run_dir: Path, metrics: dict[str, float], tested: str) -> None:
    rows = [(key, metrics[key]) for key in SUMMARY_KEYS if key in metrics]
    rows += sorted((k, v) for k, v in metrics.items() if k not in SUMMARY_KEYS and not k.startswith("task/test_f1_"))
    width = max(len(key) for key, _ in rows)
    lines = [f"  {key:<{width}}  {value:.4f}" if abs(value) < 1000 else f"  {key:<{width}}  {value:.1f}" for key, value in rows]
    print(f"\nrun directory: {run_dir}\ntested checkpoint: {tested}\n" + "\n".join(lines), flush=True)
