"""What every run sets up before it has a model (``start``), and what its probes and env.json are given once it has
one: the config checked, the seed, the hardware, the meter, the task, its probes, tokenizer and data, the loggers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig
from pydantic import BaseModel

from ftaudit.config import check_config
from ftaudit.errors import ConfigError
from ftaudit.hardware import (
    attention_implementation,
    check_worker_launch,
    configure_hardware,
    inference_autocast,
    is_main_process,
    peak_tflops,
)
from ftaudit.models.causal import causal_provenance
from ftaudit.probes.base import Probe, ProbeContext
from ftaudit.probes.build import build_probes
from ftaudit.quiet import quiet_libraries
from ftaudit.resources import ResourceMeter
from ftaudit.tasks import build_task
from ftaudit.tasks.base import Task
from ftaudit.tasks.data import SplitDataModule
from ftaudit.tracking.loggers import build_loggers
from ftaudit.tracking.record import environment
from ftaudit.tracking.summary import data_file_hashes


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
    tokenizer = task.load_tokenizer(cfg.model)
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


def probe_context(
    session: Session, model: torch.nn.Module, base_state: dict[str, torch.Tensor], base_source: str | None
) -> ProbeContext:
    hardware = session.hardware
    return ProbeContext(
        session.cfg,
        model,
        base_state,
        session.tokenizer,
        session.datamodule,
        session.run_dir,
        next(model.parameters()).device,
        hardware["precision"],
        inference_autocast(hardware["accelerator"], hardware["precision"]),
        session.task,
        base_source,
    )


def run_environment(session: Session, device: str, env: dict, skipped: dict[str, str]) -> dict:
    """env.json: the machine and packages, then what this run adds (``env``), the probes it skipped and why, and the
    provenance of its data."""
    return {
        **environment(session.cfg.seed, device),
        "task": session.task.name,
        **env,
        "skipped_probes": skipped,
        "data_files": data_file_hashes(session.datamodule, session.probes),
        "attention": session.attention,
        "data": session.datamodule.data_info,  # what the task's data module says of its splits
        **({"model_weights": weights} if (weights := causal_provenance(session.cfg.model)) else {}),
        "resources": {"energy_method": session.meter.energy_method, "peak_tflops_source": session.peak_source},
    }
