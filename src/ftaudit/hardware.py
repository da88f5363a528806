"""Turning the ``hardware`` config into Trainer arguments and process-wide settings."""

from __future__ import annotations

import os

import torch

from ftaudit.errors import ConfigError


def configure_hardware(cfg) -> dict:
    """Resolve ``auto`` choices; return the Trainer's accelerator/devices/precision/strategy."""
    has_gpu = torch.cuda.is_available()
    accelerator = cfg.accelerator if cfg.accelerator != "auto" else ("gpu" if has_gpu else "cpu")
    if accelerator == "gpu" and not has_gpu:
        raise ConfigError("hardware=gpu but no CUDA GPU is visible; use hardware=cpu or hardware=auto")
    precision = cfg.precision
    if precision == "auto":
        # bf16 only where the hardware has it: on a CPU without it (AVX2) bf16 matmuls are far slower than fp32.
        precision = "bf16-mixed" if accelerator == "gpu" and torch.cuda.is_bf16_supported() else "32-true"
    if accelerator == "gpu":
        torch.set_float32_matmul_precision("high")  # TF32 for any fp32 matmul left
    else:
        torch.set_num_threads(cfg.num_threads or len(os.sched_getaffinity(0)))
    return {"accelerator": accelerator, "devices": cfg.devices, "precision": precision, "strategy": cfg.strategy}
