"""One prepared GPU check: ftaudit's training step on a random-init bert-base in bf16; tokens/s and MFU.

    PYTHONPATH=src python benchmarks/gpu_check.py            # on a CUDA machine: about 2 minutes
    PYTHONPATH=src python benchmarks/gpu_check.py --smoke    # anywhere: a 2-layer model, a few steps

Needs only torch, transformers, numpy and lightning (no data, no download): the model is built from a
``BertConfig`` and the batches are synthetic token ids with sentence lengths shaped like CoNLL-2003's
(about 20 sub-tokens on average). The step is ftaudit's: length-grouped batches padded to a multiple of 8,
bf16 autocast, TF32 for any fp32 matmul, fused AdamW, gradient clipping. MFU is read against the bf16
matmul peak measured at the start of the same invocation.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ftaudit.tasks.data import LengthGroupedBatchSampler
from ftaudit.tasks.ner.data import IGNORE_INDEX
from ftaudit.hardware import matmul_tflops
from ftaudit.resources.meter import parameter_counts


def synthetic_batches(lengths: np.ndarray, batch_size: int, vocab: int, multiple: int, device) -> list[dict]:
    rng = np.random.default_rng(0)
    batches = []
    for indices in LengthGroupedBatchSampler(lengths, batch_size, seed=42):
        width = int(np.ceil(lengths[indices].max() / multiple) * multiple)
        mask = torch.arange(width)[None, :] < torch.as_tensor(lengths[indices])[:, None]
        ids = torch.as_tensor(rng.integers(1000, vocab, size=(len(indices), width))) * mask
        labels = torch.where(mask, torch.as_tensor(rng.integers(0, 9, size=ids.shape)), IGNORE_INDEX)
        batches.append({"input_ids": ids.to(device), "attention_mask": mask.long().to(device), "labels": labels.to(device)})
    return batches


def measure(model, batches: list[dict], seconds: float, peak: float, non_embedding: float, dtype) -> dict:
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
    synchronize = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)

    def step(batch):
        with torch.autocast(batches[0]["input_ids"].device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for batch in batches[:5]:  # warm-up: kernel selection, allocator
        step(batch)
    synchronize()
    tokens, steps, started = 0, 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        batch = batches[steps % len(batches)]
        step(batch)
        tokens += int(batch["attention_mask"].sum())  # a host sync per step: only here, to stop on time
        steps += 1
    synchronize()
    elapsed = time.perf_counter() - started
    rate = tokens / elapsed
    return {"steps": steps, "tokens_per_second": rate, "mfu": 6 * non_embedding * rate / (peak * 1e12),
            "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a 2-layer model, a few seconds (to check the script)")
    parser.add_argument("--seconds", type=float, default=40.0, help="timed seconds per batch size")
    args = parser.parse_args()
    from transformers import BertConfig, BertForTokenClassification

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.backends.cuda.matmul.allow_tf32 = True
    peak = matmul_tflops(dtype, device)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"device {name}; {dtype} matmul peak measured now: {peak:.3f} TFLOP/s", flush=True)
    config = BertConfig(num_labels=9, **({"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128,
                                          "num_attention_heads": 2} if args.smoke else {}))
    torch.manual_seed(42)
    model = BertForTokenClassification(config).to(device).train()
    non_embedding = parameter_counts(model)["resource/params_non_embedding"]
    lengths = np.clip(np.round(np.exp(np.random.default_rng(1).normal(np.log(15), 0.6, 14041))), 1, 160).astype(int) + 2
    print(f"random-init {'2-layer BERT' if args.smoke else 'bert-base'}: {non_embedding / 1e6:.1f}M non-embedding "
          f"parameters; synthetic lengths: mean {lengths.mean():.1f}, max {lengths.max()}", flush=True)
    for batch_size in (32, 256):
        batches = synthetic_batches(lengths[: batch_size * 40], batch_size, config.vocab_size, 8, device)
        result = measure(model, batches, 2.0 if args.smoke else args.seconds, peak, non_embedding, dtype)
        print(f"batch {batch_size:4d}: {result['tokens_per_second']:10.0f} non-pad tokens/s, MFU {result['mfu']:.1%} "
              f"({result['steps']} steps, peak memory {result['peak_memory_gb']:.1f} GiB)", flush=True)


if __name__ == "__main__":
    main()
