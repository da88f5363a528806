"""What a run cost: wall time per stage, throughput, padding, memory, parameters, FLOPs, MFU and energy."""

from __future__ import annotations

import os
import resource
import sys
import time
from collections import defaultdict

import lightning as L
import torch

from ftaudit.metrics import MetricSpec
from ftaudit.resources.energy import EnergyTracker

# What each resource/ key is: throughput and padding are measured on the training split; times, memory and energy
# on no split (lower is better); counts and settings point no way.
RESOURCE_SPECS = [
    MetricSpec("resource/*_per_second", "train", "max"),
    MetricSpec("resource/mfu", "train", "max"),
    MetricSpec("resource/padding_overhead", "train", "min"),
    MetricSpec("resource/train_flops_estimate", "train", None),
    MetricSpec("resource/train_tokens", "train", None),
    MetricSpec("resource/train_padded_tokens", "train", None),
    MetricSpec("resource/train_samples", "train", None),
    MetricSpec("resource/*_seconds", None, "min"),
    MetricSpec("resource/probe_seconds/*/*", None, "min"),
    MetricSpec("resource/peak_rss_mb", None, "min"),
    MetricSpec("resource/gpu_peak_*", None, "min"),
    MetricSpec("resource/energy_kwh", None, "min"),
    MetricSpec("resource/co2_kg", None, "min"),
    MetricSpec("resource/energy_is_estimate", None, None),
    MetricSpec("resource/params_*", None, None),
    MetricSpec("resource/devices", None, None),
    MetricSpec("resource/cpu_threads", None, None),
    MetricSpec("resource/load_average_at_start", None, None),
    MetricSpec("resource/peak_tflops", None, None),
]


def parameter_counts(model: torch.nn.Module) -> dict[str, float]:
    """Total, trainable and non-embedding parameters (token, position and type embeddings excluded, as in FLOP counts)."""
    embedding = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters())
    total = sum(p.numel() for p in model.parameters())
    return {
        "resource/params_total": float(total),
        "resource/params_non_embedding": float(total - embedding),
        "resource/params_trainable": float(sum(p.numel() for p in model.parameters() if p.requires_grad)),
    }


def training_flops(non_embedding_params: float, tokens: float) -> float:
    """The usual estimate: 6 FLOPs per parameter per token (2 forward, 4 backward), attention and padding ignored."""
    return 6.0 * non_embedding_params * tokens


def peak_rss_mb() -> float:
    kilobytes_or_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kilobytes_or_bytes / 2**20 if sys.platform == "darwin" else kilobytes_or_bytes / 2**10


class ResourceMeter(L.Callback):
    """Times the run's stages and counts what training processed; ``metrics()`` gives the ``resource/`` keys.

    ``setup`` and ``probes`` are timed by the run (``start``/``stop``), ``train``, ``validation`` and
    ``test`` by Lightning's hooks; train time excludes the validation passes that run inside ``fit``. Token counts
    are summed on the device (no per-step synchronisation) and across processes once, at the end of training.
    ``peak_tflops`` is one device's; MFU is read against it times the number of processes. A run that did not train
    (an audit) records no training figures. A resumed run adds what the run used before its checkpoint (the part
    of an epoch that was cut off is lost, its time too).
    """

    def __init__(
        self, peak_tflops: float | None = None, track_energy: bool = True, country_iso_code: str | None = None
    ):
        self.peak_tflops = peak_tflops
        self.seconds: dict[str, float] = defaultdict(float)
        self.counts: dict[str, float] = {}
        self.parameters: dict[str, float] = {}
        self.world_size = 1
        self.on_gpu = False
        self._started_at = time.perf_counter()
        self._load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0  # others' work slows this run
        self._stage_started: dict[str, float] = {}
        self._device_tokens: torch.Tensor | None = None
        self._padded_tokens = self._samples = 0
        self._earlier_tokens = 0.0  # a resumed run's, counted before its checkpoint
        self._earlier_energy: dict[str, float] = {}
        self.energy = EnergyTracker(country_iso_code) if track_energy else None
        self.energy_method = "not tracked (hardware.track_energy=false)"

    def start(self, name: str) -> None:
        self._stage_started[name] = time.perf_counter()

    def stop(self, name: str) -> None:
        self.seconds[name] += time.perf_counter() - self._stage_started.pop(name)

    def setup(self, trainer, module, stage: str) -> None:
        if not self.parameters:  # the first stage (fit), before any wrapping (DDP, FSDP) that would hide or shard them
            self.parameters = parameter_counts(module)
        self.world_size, self.on_gpu = trainer.world_size, trainer.strategy.root_device.type == "cuda"

    def on_train_start(self, trainer, module) -> None:
        self.start("train")

    def on_train_batch_start(self, trainer, module, batch, batch_index) -> None:
        if "train" not in self._stage_started:  # back from a validation pass (and its checkpoint saving)
            self.start("train")
        ids = batch["input_ids"]
        self._samples += ids.shape[0]
        self._padded_tokens += ids.numel()
        tokens = batch["attention_mask"].sum()
        self._device_tokens = tokens if self._device_tokens is None else self._device_tokens + tokens

    def on_validation_start(self, trainer, module) -> None:
        if "train" in self._stage_started:
            self.stop("train")
        self.start("validation")

    def on_validation_end(self, trainer, module) -> None:
        self.stop("validation")

    def on_train_end(self, trainer, module) -> None:
        if "train" in self._stage_started:
            self.stop("train")
        # With several processes a resumed run's earlier count is the main process's, as each process's is about equal.
        local = [float(self._device_tokens or 0) + self._earlier_tokens, self._padded_tokens, self._samples]
        totals = trainer.strategy.reduce(
            torch.tensor(local, dtype=torch.float64, device=module.device), reduce_op="sum"
        )
        self.counts = dict(zip(("tokens", "padded", "samples"), totals.tolist()))

    def on_test_start(self, trainer, module) -> None:
        self.start("test")

    def on_test_end(self, trainer, module) -> None:
        self.stop("test")

    def state_dict(self) -> dict:
        """What the run used until now: saved in its epoch checkpoints, for a resumed run to add to."""
        return {
            "seconds": dict(self.seconds),
            "elapsed": time.perf_counter() - self._started_at,
            "tokens": float(self._device_tokens or 0) + self._earlier_tokens,
            "padded": self._padded_tokens,
            "samples": self._samples,
            "energy": self.energy.so_far() if self.energy else {},
        }

    def load_state_dict(self, state: dict) -> None:
        for stage, seconds in state["seconds"].items():
            self.seconds[stage] += seconds
        self._started_at -= state["elapsed"]
        self._earlier_tokens, self._padded_tokens, self._samples = state["tokens"], state["padded"], state["samples"]
        self._earlier_energy = state["energy"]
        # until training ends (it may not run again: a run killed after its last epoch resumes at the test pass)
        self.counts = {"tokens": state["tokens"], "padded": state["padded"], "samples": state["samples"]}

    def on_exception(self, trainer, module, exception: BaseException) -> None:
        if self.energy is not None:  # e.g. a pruned sweep trial: no record, but no tracker left running either
            self.energy.stop()
            self.energy = None

    def metrics(self) -> dict[str, float]:
        """Every ``resource/`` key; stops the energy tracker, so call it once, at the end of the run."""
        trained = bool(self.counts)
        stages = (
            ("setup", "train", "validation", "test", "probes") if trained else ("setup", "validation", "test", "probes")
        )
        metrics = {f"resource/{stage}_seconds": self.seconds[stage] for stage in stages}
        metrics["resource/total_seconds"] = time.perf_counter() - self._started_at
        if trained:
            metrics.update(self.training_metrics())
        metrics.update(
            {
                "resource/peak_rss_mb": peak_rss_mb(),
                "resource/devices": float(self.world_size),
                "resource/cpu_threads": float(torch.get_num_threads()),
                "resource/load_average_at_start": self._load_average,
                **self.parameters,
            }
        )
        if self.on_gpu:
            metrics["resource/gpu_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
            metrics["resource/gpu_peak_reserved_mb"] = torch.cuda.max_memory_reserved() / 2**20
        if self.energy is not None:
            energy, self.energy_method = self.energy.stop()
            metrics.update({key: value + self._earlier_energy.get(key, 0.0) for key, value in energy.items()})
        return metrics

    def training_metrics(self) -> dict[str, float]:
        train_seconds = self.seconds["train"]
        tokens, padded, samples = (self.counts[key] for key in ("tokens", "padded", "samples"))
        metrics = {
            "resource/train_tokens": tokens,
            "resource/train_padded_tokens": padded,
            "resource/train_samples": samples,
            "resource/train_tokens_per_second": tokens / train_seconds if train_seconds else 0.0,
            "resource/train_samples_per_second": samples / train_seconds if train_seconds else 0.0,
            "resource/padding_overhead": padded / tokens if tokens else 0.0,
        }
        if self.parameters:
            flops = training_flops(self.parameters["resource/params_non_embedding"], tokens)
            metrics["resource/train_flops_estimate"] = flops
            if self.peak_tflops and train_seconds:
                metrics["resource/peak_tflops"] = self.peak_tflops
                metrics["resource/mfu"] = flops / train_seconds / (self.peak_tflops * 1e12 * self.world_size)
        return metrics
