"""Turning the ``hardware`` config into Trainer arguments, process-wide settings and the device's peak speed."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ftaudit.errors import ConfigError

MULTI_PROCESS_STRATEGIES = ("ddp", "fsdp")  # Lightning re-runs the entry script once per extra process


def configure_hardware(run_cfg) -> dict:
    """Resolve the ``auto`` choices of the Trainer's device settings (which default to ``hardware``'s); set the
    process-wide ones (threads, TF32); return the Trainer's accelerator/devices/precision/strategy."""
    cfg, trainer = run_cfg.hardware, run_cfg.trainer
    has_gpu = torch.cuda.is_available()
    accelerator = trainer.accelerator if trainer.accelerator != "auto" else ("gpu" if has_gpu else "cpu")
    if accelerator == "gpu" and not has_gpu:
        raise ConfigError(
            "hardware.accelerator=gpu but no CUDA GPU is visible; use hardware=cpu or hardware=auto "
            "(DDP on CPU: hardware=ddp hardware.accelerator=cpu)"
        )
    if str(trainer.strategy).startswith("fsdp") and accelerator != "gpu":
        raise ConfigError(
            "hardware.strategy=fsdp runs on GPUs only (Lightning's FSDP needs CUDA); on CPU use hardware=ddp"
        )
    precision = str(trainer.precision)
    if precision == "auto":
        # bf16 only where the hardware has it: on a CPU without it (AVX2) bf16 matmuls are ~100x slower than fp32.
        has_bf16 = torch.cuda.is_bf16_supported() if accelerator == "gpu" else cpu_has_native_bf16()
        precision = "bf16-mixed" if has_bf16 else "32-true"
    if accelerator == "gpu":
        torch.set_float32_matmul_precision("high")  # TF32 for any fp32 matmul left
    else:
        torch.set_num_threads(cfg.num_threads or cpu_threads(process_count(trainer)))
    return {
        "accelerator": accelerator,
        "devices": trainer.devices,
        "precision": precision,
        "strategy": trainer.strategy,
    }


def inference_autocast(accelerator: str, precision: str) -> Callable[[], contextlib.AbstractContextManager]:
    """The autocast a run's test pass runs under (Lightning's mixed precision), for every other inference of the run:
    probes, WiSE-FT and fairness tagging measure the model the way it was tested."""
    if not precision.endswith("-mixed"):
        return contextlib.nullcontext  # fp32, or weights already in the precision (bf16-true)
    return functools.partial(
        torch.autocast, "cuda" if accelerator == "gpu" else "cpu", dtype=precision_dtype(precision)
    )


ATTENTION_CHOICES = ("auto", "sdpa", "eager")
# hardware.attention=auto: the Hugging Face attention implementation by device and matmul dtype, from
# ``benchmarks/attention.py`` (docs/resources.md); a device/dtype not listed gets transformers' own default, sdpa.
ATTENTION_BY_DEVICE = {
    # measured, 2-core AMD EPYC (AVX2), batch 32, 12 heads x 32 dims: per attention call, sdpa (PyTorch's CPU flash
    # kernel) is 1.4-2.0x faster than eager in training at widths 32-128 (eager 12% faster at 16) and 1.0-1.8x in
    # inference; over a whole MiniLM step they are within the machine's noise up to width 64, sdpa 1.14x at 128
    ("cpu", torch.float32): "sdpa",
    # measured on the same CPU, where bf16 is emulated: eager's bf16 batched matmuls make attention 2.1-2.4x slower
    # than sdpa in training, 5-11x in inference; not measured on a CPU with bf16 units (where hardware=auto picks bf16)
    ("cpu", torch.bfloat16): "sdpa",
    # not measured (no GPU here): transformers' default
    ("gpu", torch.bfloat16): "sdpa",
    ("gpu", torch.float32): "sdpa",
}


def attention_implementation(setting: str, accelerator: str, precision: str) -> str:
    """The ``attn_implementation`` models are loaded with: ``hardware.attention``, or for ``auto`` the measured
    choice for this device and precision."""
    if setting not in ATTENTION_CHOICES:
        raise ConfigError(
            f"hardware.attention={setting!r} must be one of {', '.join(ATTENTION_CHOICES)} "
            "(e.g. hardware.attention=auto)"
        )
    if setting != "auto":
        return setting
    return ATTENTION_BY_DEVICE.get((accelerator, precision_dtype(precision)), "sdpa")


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX), read from its flags, not timed: a choice
    that followed a benchmark would change with the machine's load, and with it the run's numbers."""
    if not cpuinfo.is_file():
        return False
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return not {"avx512_bf16", "amx_bf16"}.isdisjoint(line.split(":", 1)[1].split())
    return False


def cpu_threads(processes: int) -> int:
    """Threads per process: a fair share of the usable cores, the same whatever else runs (so results repeat).

    On a machine that other jobs keep busy, set ``hardware.num_threads=1``: OpenMP threads spin-wait for each
    other at the end of every operation, so each step stalls on the thread that is not running. Measured on a
    busy 2-core machine (load average 3-5): MiniLM trained at 135-215 non-pad tokens/s with 2 threads and 500-750
    with 1; when idle, 2 threads gave 1,200 and 1 thread 720 (docs/resources.md). It is not switched
    automatically, because the thread count changes float summation order and so the run's numbers.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // processes)


def process_count(cfg) -> int:
    """Processes this config launches on one node (``devices: -1`` means every visible GPU)."""
    if not str(cfg.strategy).startswith(MULTI_PROCESS_STRATEGIES):
        return 1
    if cfg.devices == -1:
        return max(1, torch.cuda.device_count())
    return int(cfg.devices)


def is_main_process() -> bool:
    """False in the worker processes Lightning starts for DDP/FSDP (it sets their rank in the environment)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def check_worker_launch(cfg) -> None:
    """Refuse what Lightning's DDP/FSDP launch cannot do under Hydra.

    Lightning starts each extra process by re-running the command line with ``hydra.run.dir`` set to this job's
    directory, so workers share the run directory (a test checks there is exactly one). A multirun (``-m``)
    cannot be re-run that way: each worker would start the whole sweep again, in a sweep folder of its own.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if process_count(cfg) > 1 and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ConfigError(
            f"hardware.strategy={cfg.strategy} cannot run inside a multirun (-m): Lightning re-runs the "
            "command for each worker process; launch the jobs one at a time"
        )


def compile_model(model: torch.nn.Module, cfg) -> None:
    """``torch.compile`` in place (weight names unchanged); dynamic shapes, since every batch has its own length."""
    if cfg.compile:
        model.compile(dynamic=True)


def precision_dtype(precision: str) -> torch.dtype:
    """The dtype the matmuls run in under a Lightning precision setting."""
    if precision.startswith("bf16"):
        return torch.bfloat16
    if precision.startswith("16"):
        return torch.float16
    return torch.float32


def device_name(accelerator: str) -> str:
    if accelerator == "gpu":
        return torch.cuda.get_device_name()
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model} x{torch.get_num_threads()} threads"


def matmul_tflops(dtype: torch.dtype, device: str = "cpu", budget_seconds: float = 1.0, max_size: int = 8192) -> float:
    """Best rate of square matrix products, in TFLOP/s: the size doubles until one product is long enough to time.

    The best timing (not the mean) is the peak: other processes sharing the machine can only slow a product down.
    """
    group = 1 if device == "cpu" else 10  # on a GPU, one synchronisation per group hides the launch latency
    size = 1024  # smaller products measure call overhead, not the peak (seen: 100x too low on a busy CPU)
    while True:
        a, b = (_random_matrix(size, dtype, device) for _ in range(2))
        torch.matmul(a, b)  # warm-up: kernel selection, allocation
        seconds = _product_seconds(a, b, group)
        if seconds > budget_seconds / 20 or size >= max_size:
            break
        size *= 2
    timings = [seconds]
    while sum(timings) * group < budget_seconds:
        timings.append(_product_seconds(a, b, group))
    return 2 * size**3 / min(timings) / 1e12


def _random_matrix(size: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    """Drawn from a private generator: whether the peak is measured or cached must not shift the run's seeded draws."""
    generator = torch.Generator(device=device).manual_seed(0)
    return torch.randn(size, size, generator=generator, device=device).to(dtype)


def _product_seconds(a: torch.Tensor, b: torch.Tensor, group: int) -> float:
    synchronize = torch.cuda.synchronize if a.is_cuda else (lambda: None)
    synchronize()
    started = time.perf_counter()
    for _ in range(group):
        torch.matmul(a, b)
    synchronize()
    return (time.perf_counter() - started) / group


def peak_tflops(cfg, accelerator: str, precision: str) -> tuple[float, str]:
    """Per-device peak for MFU and where it came from: ``hardware.peak_tflops``, else a matmul benchmark.

    The benchmark runs once per device, dtype and thread count; its result is cached on disk.
    """
    if cfg.peak_tflops:
        return float(cfg.peak_tflops), "hardware.peak_tflops"
    from filelock import FileLock

    from ftaudit.files import atomic_write_json, cache_directory

    dtype = precision_dtype(precision)
    key = f"{device_name(accelerator)} | {dtype}"
    cache = cache_directory(None) / "peak_tflops.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    # Parallel sweep workers share the file: one benchmarks at a time, and none overwrites another's new entry.
    with FileLock(cache.with_name(cache.name + ".lock")):
        cached = json.loads(cache.read_text()) if cache.is_file() else {}
        if key not in cached:
            cached[key] = matmul_tflops(dtype, "cuda" if accelerator == "gpu" else "cpu")
            atomic_write_json(cache, cached)
    return cached[key], f"matmul benchmark ({key}), cached in {cache}"
