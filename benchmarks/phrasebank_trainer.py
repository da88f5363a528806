"""ftaudit against the Hugging Face Trainer set up as run_glue.py does, on Financial PhraseBank: same model, split,
learning rate, batch size, epochs and seed, the same machine, one after the other, each in a fresh process.

    python benchmarks/phrasebank_trainer.py                          # the whole PhraseBank, the recipe
    python benchmarks/phrasebank_trainer.py --max-train-samples 300 --max-eval-samples 100   # a quick check

(a) ``python train.py task=classification data=phrasebank experiment=phrasebank [--overrides]``, the PhraseBank
recipe exactly as a user runs it (probes included; its training time is reported apart from them). (b) a
``Trainer`` doing what run_glue.py does by default: ``AutoModelForSequenceClassification``, sentences padded to
``max_seq_length=128`` (``pad_to_max_length``) and truncated there, ``default_data_collator``, random batches, the
Trainer's default optimiser (no weight decay, no warm-up, linear decay, clipping at 1.0) and the model's own
dropout, the final weights tested. Both read the same
stratified split (ftaudit's ``data.split_seed``) and take the learning rate, batch size, epochs and seed of (a)'s
composed config. Printed for each: test macro F1 and accuracy, training samples/s and non-pad tokens/s (samples and
real tokens seen in training over training seconds: the same definition for both), training and wall seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

import numpy as np

from speed import run_logged, timed  # benchmarks/speed.py: one contestant per fresh process, wall-timed

REPO = Path(__file__).resolve().parents[1]
RUN_GLUE_MAX_SEQ_LENGTH = 128  # run_glue.py's default max_seq_length (and pad_to_max_length=True)
RECIPE = "experiment=phrasebank"  # (a)'s learning rate, batch size and epochs, which (b) copies


def run_config(overrides: list[str]):
    """The config (a) runs with: what the Trainer copies its split and hyper-parameters from."""
    from hydra import compose, initialize_config_dir

    from ftaudit.config import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=["task=classification", "data=phrasebank", RECIPE, *overrides])


def limits(args) -> list[str]:
    return [
        f"data.max_train_samples={args.max_train_samples or 'null'}",
        f"data.max_eval_samples={args.max_eval_samples or 'null'}",
    ]


def run_trainer_baseline(overrides: list[str], result: Path) -> None:
    """One Trainer run as run_glue.py sets it up by default; writes its figures to ``result`` (JSON)."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        Trainer,
        TrainingArguments,
        default_data_collator,
        set_seed,
    )

    from ftaudit.models.loading import load_tokenizer, resolve_source
    from ftaudit.quiet import quiet_libraries
    from ftaudit.tasks.classification.data import PhraseBankDataModule
    from ftaudit.tasks.classification.metrics import classification_scores

    quiet_libraries()
    cfg = run_config(overrides)
    tokenizer = load_tokenizer(cfg.model)
    data = PhraseBankDataModule(cfg.data, tokenizer, cfg.seed)  # ftaudit's split, read the same way
    data.setup()
    label2id = {label: i for i, label in enumerate(data.labels)}

    def features(split: str) -> tuple[list[dict], int]:  # run_glue.py's preprocess_function, padding="max_length"
        examples = data.splits[split].examples
        encoded = tokenizer(
            [e.text for e in examples], padding="max_length", max_length=RUN_GLUE_MAX_SEQ_LENGTH, truncation=True
        )
        rows = [
            {key: encoded[key][i] for key in encoded.keys()} | {"label": label2id[e.label]}
            for i, e in enumerate(examples)
        ]
        return rows, sum(bool(encoding.overflowing) for encoding in encoded.encodings)

    (train_rows, train_cut), (test_rows, test_cut) = features("train"), features("test")
    set_seed(cfg.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_source(cfg.model.name_or_path),
        num_labels=len(data.labels),
        id2label=dict(enumerate(data.labels)),
        label2id=label2id,
    )
    args = TrainingArguments(
        output_dir=str(result.parent / "trainer"),
        learning_rate=cfg.optimizer.lr,
        seed=cfg.seed,
        per_device_train_batch_size=cfg.data.batch_size,
        num_train_epochs=cfg.trainer.max_epochs,
        per_device_eval_batch_size=cfg.data.eval_batch_size,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_rows,
        processing_class=tokenizer,
        data_collator=default_data_collator,
    )
    train_seconds = trainer.train().metrics["train_runtime"]
    logits = torch.tensor(trainer.predict(test_rows).predictions)
    gold = np.array([row["label"] for row in test_rows])
    scores = classification_scores(gold, logits.softmax(-1).numpy(), [data.label_keys[label] for label in data.labels])
    epochs = cfg.trainer.max_epochs
    result.write_text(
        json.dumps(
            {
                "test_f1_macro": scores["f1_macro"],
                "test_accuracy": scores["accuracy"],
                "train_seconds": train_seconds,
                "samples": len(train_rows) * epochs,
                "tokens": sum(sum(row["attention_mask"]) for row in train_rows) * epochs,
                "truncated": {"train": train_cut, "test": test_cut},
                "optimizer": str(args.optim),
                "threads": torch.get_num_threads(),
            }
        )
    )


def run_ftaudit(out: Path, overrides: list[str]) -> dict:
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "task=classification",
        "data=phrasebank",
        RECIPE,
        *overrides,
        "logger=none",
        "trainer.progress_bar=false",
        f"hydra.run.dir={out / 'ftaudit'}",
    ]
    run_logged(command, out / "ftaudit.log")
    metrics = json.loads((out / "ftaudit" / "metrics.json").read_text())
    return {
        "test_f1_macro": metrics["task/test_f1_macro"],
        "test_accuracy": metrics["task/test_accuracy"],
        "train_seconds": metrics["resource/train_seconds"],
        "samples": metrics["resource/train_samples"],
        "tokens": metrics["resource/train_tokens"],
        "probes_seconds": metrics["resource/probes_seconds"],
        "threads": int(metrics["resource/cpu_threads"]),
    }


def report(results: dict[str, dict], cfg, out: Path) -> None:
    names = {"ftaudit": "(a) ftaudit, python train.py", "trainer": "(b) Trainer, run_glue.py defaults"}
    print(
        f"\n{'run':34s} {'test F1m':>8s} {'test acc':>8s} {'samples/s':>9s} {'tok/s':>7s} {'train s':>8s} {'wall s':>7s} threads"
    )
    for key, r in results.items():
        r["samples_per_second"], r["tokens_per_second"] = (
            r["samples"] / r["train_seconds"],
            r["tokens"] / r["train_seconds"],
        )
        print(
            f"{names[key]:34s} {r['test_f1_macro']:8.4f} {r['test_accuracy']:8.4f} {r['samples_per_second']:9.1f} "
            f"{r['tokens_per_second']:7.0f} {r['train_seconds']:8.1f} {r['wall_seconds']:7.1f} {r['threads']:7d}"
        )
    ours, theirs = results["ftaudit"], results["trainer"]
    print(
        f"throughput (a) / (b): {ours['samples_per_second'] / theirs['samples_per_second']:.2f}x; test macro F1 (a) - (b): "
        f"{100 * (ours['test_f1_macro'] - theirs['test_f1_macro']):+.2f} points"
    )
    print(
        f"shared: model {cfg.model.name}, lr {cfg.optimizer.lr:g}, batch {cfg.data.batch_size}, {cfg.trainer.max_epochs} "
        f"epochs, seed {cfg.seed}, split seed {cfg.data.split_seed}. (a): dropout {cfg.model.dropout}, weight decay "
        f"{cfg.optimizer.weight_decay}, warm-up {cfg.optimizer.warmup_ratio}, dynamic padding, tests the best-validation "
        f"epoch, wall time includes its probes ({ours['probes_seconds']:.0f} s). (b): the model's dropout, optimiser "
        f"{theirs['optimizer']} without weight decay or warm-up, padding to {RUN_GLUE_MAX_SEQ_LENGTH} (truncated there: "
        f"{theirs['truncated']}), tests the final weights. Results in {out / 'results.json'}"
    )
    (out / "results.json").write_text(json.dumps(results, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-train-samples", type=int, help="first N training sentences of the split (default: all)")
    parser.add_argument("--max-eval-samples", type=int, help="first N validation and test sentences (default: all)")
    parser.add_argument(
        "--overrides",
        nargs="*",
        default=[],
        help=f"run overrides for both, after {RECIPE}, e.g. optimizer.lr=2e-4 trainer.max_epochs=3",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "outputs" / "benchmarks" / f"phrasebank_trainer-{datetime.now():%Y-%m-%d_%H-%M-%S}",
    )
    parser.add_argument("--trainer-baseline", action="store_true", help=argparse.SUPPRESS)  # (b), in a child process
    args = parser.parse_args()
    overrides = [*args.overrides, *limits(args)]
    if args.trainer_baseline:
        run_trainer_baseline(overrides, args.out / "trainer.json")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = run_config(overrides)
    print(f"benchmark in {args.out}", flush=True)

    def trainer_run() -> dict:
        run_logged(
            [sys.executable, __file__, "--trainer-baseline", "--out", str(args.out), *sys.argv[1:]],
            args.out / "trainer.log",
        )
        return json.loads((args.out / "trainer.json").read_text())

    results = {}
    for key, run in (("ftaudit", lambda: run_ftaudit(args.out, overrides)), ("trainer", trainer_run)):
        results[key] = timed(run)
        print(f"  done: {key} ({results[key]['wall_seconds']:.0f} s)", flush=True)
    report(results, cfg, args.out)


if __name__ == "__main__":
    main()
