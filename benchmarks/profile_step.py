"""Where a training step's time goes: torch.profiler over real ftaudit training steps.

    CONLL2003_DIR=../shared/data/conll2003 python benchmarks/profile_step.py [train overrides ...]

Runs ``train.py``'s own run (MiniLM, the first 800 CoNLL-2003 training sentences, ftaudit's defaults, lr 5e-5 as in
``speed.py``) with a callback that profiles training steps 5..24 (after warm-up) and prints each kind of work's share
of the CPU time (matmuls, attention, dropout, optimiser, ...), the top operators, the matmuls' achieved TFLOP/s
against this machine's matmul peak in the run's precision, and the wall time from the gradients being ready to the
step's end (gradient clipping, optimiser update, lr schedule): an unfused AdamW (``optimizer.fused=false``) runs
plain per-parameter operators (``aten::mul_``, ``aten::lerp_``, ...) that the kinds above count as "other", so that
time is the optimiser's cost. About a minute on 2 CPU cores in fp32.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import lightning as L
import torch
from hydra import initialize_config_dir

from ftaudit.config import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]
SKIP, STEPS = 5, 20
RUN = [
    "model=minilm",
    "optimizer.lr=5e-5",
    "data.max_train_samples=800",
    "data.max_eval_samples=50",
    "trainer.max_epochs=1",
    "probes.degradation=[]",
    "probes.fairness.enabled=false",
    "logger=none",
    "trainer.progress_bar=false",
    "hardware.track_energy=false",
]
KINDS = {  # operator name -> kind of work; the rest is "other"
    "matmul (linear layers)": ("aten::mm", "aten::addmm", "aten::linear", "aten::matmul"),
    "attention": (
        "aten::bmm",
        "aten::_softmax",
        "aten::_softmax_backward_data",
        "aten::baddbmm",
        "aten::_scaled_dot_product",
        "aten::scaled_dot_product",
    ),
    "dropout": ("aten::bernoulli_", "aten::native_dropout", "aten::dropout"),
    "optimiser": ("aten::_fused_adamw_", "Optimizer.", "aten::_foreach"),
    "embeddings (grad)": ("aten::embedding_dense_backward", "aten::index_add_", "aten::embedding_backward"),
    "layer norm": ("aten::native_layer_norm",),
    "gelu": ("aten::gelu",),
}


class StepProfiler(L.Callback):
    """torch.profiler around training steps SKIP .. SKIP + STEPS - 1 (each: forward, backward, optimiser step)."""

    def __init__(self):
        self.profile, self.seconds, self.tokens, self.update_seconds = None, 0.0, 0, 0.0

    def on_train_start(self, trainer, module):
        self.precision = trainer.precision

    def on_train_batch_start(self, trainer, module, batch, batch_index):
        if batch_index == SKIP:
            self.profile = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True)
            self.profile.__enter__()
            self.started = time.perf_counter()
        if SKIP <= batch_index < SKIP + STEPS:
            self.tokens += int(batch["attention_mask"].sum())

    def on_before_optimizer_step(self, trainer, module, optimizer):
        self.gradients_ready = time.perf_counter()  # after backward; clipping and the update follow

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
        if SKIP <= batch_index < SKIP + STEPS:
            self.update_seconds += time.perf_counter() - self.gradients_ready
        if batch_index == SKIP + STEPS - 1:
            self.seconds = time.perf_counter() - self.started
            self.profile.__exit__(None, None, None)


def kind_of(name: str) -> str:
    return next((kind for kind, prefixes in KINDS.items() if name.startswith(prefixes)), "other")


def matmul_flops(event) -> float:
    """2 x m x k x n for aten::mm / addmm from the recorded input shapes."""
    shapes = [s for s in event.input_shapes if len(s) == 2]
    if event.key == "aten::mm" and len(shapes) >= 2:
        (m, k), (_, n) = shapes[:2]
    elif event.key == "aten::addmm" and len(shapes) >= 3:
        (m, k), (_, n) = shapes[1:3]
    else:
        return 0.0
    return 2.0 * m * k * n * event.count


def report(profiler: StepProfiler) -> None:
    from ftaudit.hardware import matmul_tflops, precision_dtype

    events = profiler.profile.key_averages(group_by_input_shape=True)
    by_kind, by_op = defaultdict(float), defaultdict(float)
    flops = sum(matmul_flops(event) for event in events)
    for event in events:
        by_kind[kind_of(event.key)] += event.self_cpu_time_total / 1e6
        by_op[event.key] += event.self_cpu_time_total / 1e6
    total = sum(by_kind.values())
    matmul_seconds = by_kind["matmul (linear layers)"]
    dtype = precision_dtype(profiler.precision)
    peak = matmul_tflops(dtype)
    print(
        f"\n{STEPS} training steps (forward, backward, optimiser step): {profiler.seconds:.2f} s wall, "
        f"{1000 * profiler.seconds / STEPS:.0f} ms/step, {profiler.tokens / profiler.seconds:.0f} non-pad tokens/s, "
        f"{torch.get_num_threads()} threads; profiler CPU time {total:.2f} s (summed over threads' operators)"
    )
    print(
        f"after backward (gradient clipping, optimiser update, lr schedule; wall): {1000 * profiler.update_seconds / STEPS:.0f} "
        f"ms/step, {profiler.update_seconds / profiler.seconds:.1%} of the step"
    )
    print(f"{'kind of work':28s} {'share':>7s} {'seconds':>8s}")
    for kind, seconds in sorted(by_kind.items(), key=lambda item: -item[1]):
        print(f"{kind:28s} {seconds / total:7.1%} {seconds:8.2f}")
    print("top operators:")
    for name, seconds in sorted(by_op.items(), key=lambda item: -item[1])[:12]:
        print(f"  {name:50s} {seconds / total:7.1%}")
    print(
        f"linear-layer matmuls: {flops / 1e12:.3f} TFLOP in {matmul_seconds:.2f} s = {flops / matmul_seconds / 1e12:.3f} "
        f"TFLOP/s; this machine's {dtype} matmul peak now: {peak:.3f} TFLOP/s (large square matrices)"
    )


def main() -> None:
    from ftaudit.run import train
    from ftaudit.sweep.trials import as_hydra_job, compose_run_config

    profiler = StepProfiler()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"), tempfile.TemporaryDirectory() as out:
        with as_hydra_job(compose_run_config([*RUN, *sys.argv[1:]]), Path(out)) as cfg:
            train(cfg, Path(out), callbacks=[profiler])
    report(profiler)


if __name__ == "__main__":
    main()
