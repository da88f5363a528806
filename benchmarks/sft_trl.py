"""ftaudit against TRL's SFTTrainer on the decoder recipe (experiment=llm): the same model, tokens, response-only
loss, LoRA, learning rate, batch size, epochs and seed, on the same machine, one after the other, each in a fresh
process.

    python benchmarks/sft_trl.py                                    # experiment=llm's 1,000 Banking77 prompts
    python benchmarks/sft_trl.py --max-train-samples 320 --max-eval-samples 200   # a shorter check

(a) ``python train.py experiment=llm`` with its probes and free generation off (training is what is compared).
(b) ``trl.SFTTrainer`` as its users get it (SFTConfig's defaults: gradient checkpointing on, random batches padded to
their longest, the fused LM head's loss), given the very token ids (a) trains on, pre-tokenised with a
``completion_mask`` (prompt 0, response and EOS 1) and ``completion_only_loss=True``, and the same peft LoraConfig;
(c) the same with ``gradient_checkpointing=False``, the setting that changes its speed most. Every run copies (a)'s
learning rate, weight decay, warm-up, clipping, batch size, epochs, seed and precision (bf16 autocast where the CPU
has bf16 units, as ``hardware=auto`` picks).

Printed for each: training non-pad tokens/s (tokens seen in training over training seconds, the same definition for
all), the validation loss (mean NLL per response token over the same validation prompts, computed by ftaudit's
``per_example_nll`` for (b) and (c) as for (a)), and MFU: 6 x non-embedding parameters x tokens/s over the matmul
peak that (a) measured (LoRA computes no weight gradients for frozen weights, so its real work is nearer 4N).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from speed import run_logged, timed  # benchmarks/speed.py: one contestant per fresh process, wall-timed

REPO = Path(__file__).resolve().parents[1]
RECIPE = "experiment=llm"
TRAINING_ONLY = [  # (a) trains and validates as the recipe does; what comes after training is not compared
    "probes.degradation=[]",
    "probes.fairness.enabled=false",
    "task.max_new_tokens=0",
    "record.save_model=false",
    "record.save_merged=false",
]


def run_config(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from ftaudit.config import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[RECIPE, *overrides])


def encoded_splits(cfg):
    """(a)'s tokenizer and its train and validation encodings: the prompts, responses and split it trains on."""
    from ftaudit.models.causal import load_causal_tokenizer
    from ftaudit.tasks.causal_lm.data import CausalLMDataModule

    tokenizer = load_causal_tokenizer(cfg.model)
    data = CausalLMDataModule(cfg.data, tokenizer, cfg.seed, prompting=cfg.task.prompting)
    data.setup()
    return tokenizer, data


def validation_loss(model, data, bf16: bool) -> float:
    """Mean NLL per response token over the validation split, batched as (a) batches it (``task/val_loss``)."""
    import contextlib

    import torch

    from ftaudit.tasks.causal_lm.scoring import per_example_nll

    model.eval()
    total, tokens = 0.0, 0
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        for batch in data.eval_dataloader("validation"):
            nll, count = per_example_nll(model, batch)
            total, tokens = total + float(nll.sum()), tokens + int(count.sum())
    return total / tokens


def run_trl(overrides: list[str], checkpointing: bool, result: Path) -> None:
    """One SFTTrainer run on (a)'s encodings; writes its figures to ``result`` (JSON)."""
    import datasets
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    from ftaudit.hardware import cpu_has_native_bf16
    from ftaudit.models.causal import load_causal_lm
    from ftaudit.quiet import quiet_libraries

    quiet_libraries()
    cfg = run_config(overrides)
    tokenizer, data = encoded_splits(cfg)
    train = data.splits["train"]
    rows = [
        {"input_ids": ids.tolist(), "completion_mask": [0] * len(prompt) + [1] * (len(ids) - len(prompt))}
        for ids, prompt in zip(train.input_ids, train.prompts)
    ]
    precision = str(cfg.hardware.precision)
    bf16 = cpu_has_native_bf16() if precision == "auto" else precision.startswith("bf16")  # as hardware=auto picks
    set_seed(cfg.seed)
    model = load_causal_lm(cfg.model)
    adapter = instantiate(OmegaConf.to_container(cfg.method.adapter, resolve=True), _convert_="all")
    args = SFTConfig(
        output_dir=str(result.parent / result.stem),
        learning_rate=cfg.optimizer.lr,
        weight_decay=cfg.optimizer.weight_decay,
        warmup_steps=float(cfg.optimizer.warmup_ratio),  # a float below 1: a share of the steps
        lr_scheduler_type="linear",
        max_grad_norm=cfg.trainer.gradient_clip_val,
        per_device_train_batch_size=cfg.data.batch_size,
        num_train_epochs=cfg.trainer.max_epochs,
        seed=cfg.seed,
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        gradient_checkpointing=checkpointing,
        completion_only_loss=True,
        max_length=cfg.data.max_length,
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        disable_tqdm=True,
        logging_steps=10**9,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=adapter,
    )
    train_seconds = trainer.train().metrics["train_runtime"]
    epochs = cfg.trainer.max_epochs
    result.write_text(
        json.dumps(
            {
                "val_loss": validation_loss(trainer.model, data, bf16),
                "train_seconds": train_seconds,
                "tokens": sum(len(row["input_ids"]) for row in rows) * epochs,
                "response_tokens": sum(sum(row["completion_mask"]) for row in rows) * epochs,
                "bf16": bf16,
                "gradient_checkpointing": checkpointing,
                "threads": torch.get_num_threads(),
            }
        )
    )


def run_ftaudit(out: Path, overrides: list[str]) -> dict:
    command = [
        sys.executable,
        str(REPO / "train.py"),
        RECIPE,
        *TRAINING_ONLY,
        *overrides,
        "logger=none",
        "trainer.progress_bar=false",
        f"hydra.run.dir={out / 'ftaudit'}",
    ]
    run_logged(command, out / "ftaudit.log")
    metrics = json.loads((out / "ftaudit" / "metrics.json").read_text())
    return {
        "val_loss": metrics["task/val_loss"],
        "train_seconds": metrics["resource/train_seconds"],
        "tokens": metrics["resource/train_tokens"],
        "peak_tflops": metrics.get("resource/peak_tflops"),
        "params_non_embedding": metrics["resource/params_non_embedding"],
        "threads": int(metrics["resource/cpu_threads"]),
    }


def report(results: dict[str, dict], cfg, out: Path) -> None:
    names = {
        "ftaudit": "(a) ftaudit, python train.py",
        "trl": "(b) SFTTrainer, SFTConfig defaults",
        "trl_no_checkpointing": "(c) SFTTrainer, no grad. checkpointing",
    }
    ours = results["ftaudit"]
    peak, params = ours["peak_tflops"], ours["params_non_embedding"]
    print(f"\n{'run':40s} {'val loss':>8s} {'tok/s':>7s} {'MFU':>6s} {'train s':>8s} {'wall s':>7s} threads")
    for key, r in results.items():
        r["tokens_per_second"] = r["tokens"] / r["train_seconds"]
        r["mfu"] = 6 * params * r["tokens_per_second"] / (peak * 1e12) if peak else None
        mfu = f"{100 * r['mfu']:5.1f}%" if r["mfu"] is not None else "    -"
        print(
            f"{names[key]:40s} {r['val_loss']:8.4f} {r['tokens_per_second']:7.0f} {mfu:>6s} {r['train_seconds']:8.1f} "
            f"{r['wall_seconds']:7.1f} {r['threads']:7d}"
        )
    for key in ("trl", "trl_no_checkpointing"):
        theirs = results[key]
        print(
            f"(a) vs {names[key][:3]}: throughput {ours['tokens_per_second'] / theirs['tokens_per_second']:.2f}x, "
            f"validation loss {100 * (ours['val_loss'] / theirs['val_loss'] - 1):+.1f}%"
        )
    print(
        f"shared: model {cfg.model.name} ({params / 1e6:.0f}M non-embedding), {cfg.method.name} r={cfg.method.adapter.r} "
        f"on {list(cfg.model.adapter_targets)}, lr {cfg.optimizer.lr:g}, weight decay {cfg.optimizer.weight_decay}, "
        f"warm-up {cfg.optimizer.warmup_ratio}, clipping {cfg.trainer.gradient_clip_val}, batch {cfg.data.batch_size}, "
        f"{cfg.trainer.max_epochs} epoch(s), seed {cfg.seed}, {cfg.data.max_train_samples} training prompts; "
        f"matmul peak {peak:.3g} TFLOPS as (a) measured. Results in {out / 'results.json'}"
    )
    (out / "results.json").write_text(json.dumps(results, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-train-samples", type=int, help=f"training prompts (default: {RECIPE}'s)")
    parser.add_argument("--max-eval-samples", type=int, help=f"validation prompts (default: {RECIPE}'s)")
    parser.add_argument("--overrides", nargs="*", default=[], help=f"run overrides for all, after {RECIPE}")
    parser.add_argument(
        "--out", type=Path, default=REPO / "outputs" / "benchmarks" / f"sft_trl-{datetime.now():%Y-%m-%d_%H-%M-%S}"
    )
    parser.add_argument("--trl", choices=["checkpointing", "none"], help=argparse.SUPPRESS)  # (b)/(c), in a child
    args = parser.parse_args()
    overrides = list(args.overrides)
    for key, value in (("max_train_samples", args.max_train_samples), ("max_eval_samples", args.max_eval_samples)):
        if value:
            overrides.append(f"data.{key}={value}")
    if args.trl:
        name = "trl" if args.trl == "checkpointing" else "trl_no_checkpointing"
        run_trl(overrides, args.trl == "checkpointing", args.out / f"{name}.json")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = run_config(overrides)
    print(f"benchmark in {args.out}", flush=True)

    def trl_run(mode: str, name: str):
        def run() -> dict:
            command = [sys.executable, __file__, "--trl", mode, "--out", str(args.out), *sys.argv[1:]]
            run_logged(command, args.out / f"{name}.log")
            return json.loads((args.out / f"{name}.json").read_text())

        return run

    contestants = {
        "ftaudit": lambda: run_ftaudit(args.out, overrides),
        "trl": trl_run("checkpointing", "trl"),
        "trl_no_checkpointing": trl_run("none", "trl_no_checkpointing"),
    }
    results = {}
    for key, run in contestants.items():
        results[key] = timed(run)
        print(f"  done: {key} ({results[key]['wall_seconds']:.0f} s)", flush=True)
    report(results, cfg, args.out)


if __name__ == "__main__":
    main()
