"""The model card (``README.md``) of a saved fine-tuned model, in the Hugging Face Hub's format.

YAML front matter (``huggingface_hub.ModelCardData``): the base model, the library, the pipeline task, the data set,
the task scores as ``model-index`` results, and the label names in id order; then the recipe, the headline scores,
what fine-tuning cost (degradation against the base, fairness gaps) with each probe's definition, and the command
that reproduces the run.
"""

from __future__ import annotations

from huggingface_hub import EvalResult, ModelCardData
from omegaconf import DictConfig, OmegaConf

from ftaudit.models.causal import causal_provenance
from ftaudit.probes.base import Probe

SPLIT_NAMES = {"test": "test", "val": "validation"}


def base_model_of(model_cfg: DictConfig) -> str | None:
    """The checkpoint a run fine-tunes, as configured; None when it starts from a random initialisation."""
    return None if model_cfg.random_init else str(model_cfg.name_or_path)


def hub_base_model(model_cfg: DictConfig) -> str | None:
    """The base as the Hub knows it (``model.hub_id``, e.g. the offline MiniLM's ``sentence-transformers/...``), so
    that the card links and validates there; the configured checkpoint where the config names no Hub id."""
    return None if model_cfg.random_init else str(model_cfg.get("hub_id") or model_cfg.name_or_path)


def task_results(metrics: dict[str, float]) -> list[tuple[str, str, float]]:
    """``(split, score, value)`` of every top-level ``task/<test|val>_<score>`` key."""
    results = []
    for key, value in sorted(metrics.items()):
        prefix, _, score = key.removeprefix("task/").partition("_")
        if key.startswith("task/") and prefix in SPLIT_NAMES:
            results.append((SPLIT_NAMES[prefix], score, value))
    return results


def card_data(
    cfg: DictConfig, task, metrics: dict[str, float], labels: list[str], adapter: bool, name: str
) -> ModelCardData:
    pipeline_tag = task.pipeline_tag
    results = [
        EvalResult(
            task_type=pipeline_tag,
            dataset_type=str(cfg.data.name),
            dataset_name=str(cfg.data.name),
            dataset_split=split,
            metric_type=score,
            metric_value=value,
            metric_name=f"{split} {score}",
        )
        for split, score, value in task_results(metrics)
    ]
    source = base_model_of(cfg.model)
    hub_id = hub_base_model(cfg.model)
    return ModelCardData(
        base_model=hub_id,
        # where the run read the base (a local path or package:...); audits load the base from there
        **({"base_model_source": source} if source != hub_id else {}),
        library_name="peft" if adapter else "transformers",
        pipeline_tag=pipeline_tag,
        datasets=[str(cfg.data.get("card_dataset") or cfg.data.name)],
        metrics=[task.headline],
        tags=["ftaudit", task.name, str(cfg.method.name)],
        model_name=name,
        eval_results=results,
        labels=list(labels),
    )


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def method_settings(method_cfg: DictConfig) -> str:
    settings = {
        key: value
        for key, value in OmegaConf.to_container(method_cfg, resolve=True).items()
        if key not in ("_target_", "_recursive_", "name")
    }
    adapter = settings.pop("adapter", None)
    if adapter:
        settings.update(
            {
                key: value
                for key, value in adapter.items()
                if key not in ("_target_", "task_type") and value not in (None, [], {}, False)
            }
        )
    return ", ".join(f"{key}={value}" for key, value in settings.items())


def gguf_note(provenance: dict) -> str:
    name = provenance["gguf_file"].rsplit("/", 1)[-1]
    return (
        f"dequantised to fp32 from the {provenance['quantisation']} GGUF `{name}` (sha256 "
        f"{provenance['sha256'][:16]}...): they carry its rounding, so compare with the base on the same weights"
    )


def recipe(cfg: DictConfig, device: str) -> str:
    base = hub_base_model(cfg.model) or f"none: a random initialisation of {cfg.model.name_or_path}'s architecture"
    optimizer = cfg.optimizer
    data = str(cfg.data.name) + (
        f", first {cfg.data.max_train_samples} training examples" if cfg.data.max_train_samples else ""
    )
    rows = [
        ["base model", f"`{base}` (model={cfg.model.name})"],
        ["method", f"{cfg.method.name} {method_settings(cfg.method)}".strip()],
        ["data", data],
        [
            "optimiser",
            f"{optimizer._target_.rsplit('.', 1)[-1]}, lr {optimizer.lr}, weight decay {optimizer.weight_decay}, "
            f"warm-up {optimizer.warmup_ratio:.0%} of the steps, then linear decay",
        ],
        ["batch size", str(cfg.data.batch_size)],
        [
            "epochs",
            f"{cfg.trainer.max_epochs}; the weights kept are the {cfg.trainer.checkpoint} epoch's"
            f"{' (best validation ' + 'score)' if cfg.trainer.checkpoint == 'best' else ''}",
        ],
        ["seed", str(cfg.seed)],
        ["device", device],
    ]
    provenance = causal_provenance(cfg.model)
    if provenance:  # a GGUF: the base's weights carry its quantisation's rounding
        rows.insert(1, ["base weights", gguf_note(provenance)])
    return table(["setting", "value"], rows)


def degradation_section(metrics: dict[str, float], probes: list[Probe]) -> str:
    parts = []
    for probe in (p for p in probes if p.kind == "degradation"):
        prefix = f"degradation/{probe.name}/"
        comparisons = [
            key[: -len("/drop")] for key in sorted(metrics) if key.startswith(prefix) and key.endswith("/drop")
        ]
        if comparisons:
            rows = [
                [f"`{key}`", *(f"{metrics[f'{key}/{part}']:.4f}" for part in ("base", "finetuned", "drop"))]
                for key in comparisons
            ]
            parts.append(
                f"**{probe.name}**: {probe.description}.\n\n" + table(["", "base", "fine-tuned", "drop"], rows)
            )
    return "\n\n".join(parts) or "No degradation probe ran."


def fairness_section(metrics: dict[str, float], probes: list[Probe]) -> str:
    parts = []
    for probe in (p for p in probes if p.kind == "fairness"):
        gaps = sorted(key for key in metrics if key.startswith(f"fairness/{probe.name}/") and key.endswith("_gap"))
        if gaps:
            rows = [
                [
                    f"`{key}`",
                    f"{metrics[key]:.4f}",
                    f"{metrics[key + '_ci_low']:.4f} - {metrics[key + '_ci_high']:.4f}",
                    f"{metrics[key + '_p_value']:.4f}",
                ]
                for key in gaps
            ]
            parts.append(f"**{probe.name}**: {probe.description}.\n\n" + table(["", "gap", "95% CI", "p-value"], rows))
    return "\n\n".join(parts) or "No fairness probe ran."


def model_card(
    cfg: DictConfig,
    task,
    metrics: dict[str, float],
    probes: list[Probe],
    skipped: dict[str, str],
    labels: list[str],
    adapter: bool,
    name: str,
    command: str | None,
    device: str,
) -> str:
    """The card of a model fine-tuned by the run of ``cfg`` that recorded ``metrics``; ``adapter``: the folder holds
    a peft adapter; ``command``: the command line that reproduces the run (None: composed in Python)."""
    data = card_data(cfg, task, metrics, labels, adapter, name)
    headline = [
        [f"`{key}`", f"{metrics[key]:.4f}"]
        for key in (f"task/test_{task.headline}", f"task/val_{task.headline}")
        if key in metrics
    ]
    scores = table(
        ["score", "value"], [[f"{split} {score}", f"{value:.4f}"] for split, score, value in task_results(metrics)]
    )
    skipped_lines = "".join(f"\n- `{probe}`: {reason}" for probe, reason in skipped.items())
    skipped_lines = f"\n\nProbes skipped:\n{skipped_lines}" if skipped else ""
    reproduce = (
        f"```bash\n{command}\n```"
        if command
        else "The run was composed in Python (`ftaudit.compose`); its full config is the run directory's `config.yaml`."
    )
    sections = [
        f"# {name}: {task.name} fine-tune of {data.base_model or 'a randomly initialised model'}",
        f"Fine-tuned and audited by ftaudit: what the fine-tuning gained (task scores on {cfg.data.name}) and what it "
        f"cost (what the base model forgot, fairness). Labels, in id order: {', '.join(labels)}.",
        "## Recipe\n\n" + recipe(cfg, device),
        "## Results\n\n" + table(["headline", "value"], headline) + "\n\nEvery task score:\n\n" + scores,
        "## What fine-tuning cost\n\n### Degradation against the base model\n\nEach probe measures the base and the "
        "fine-tuned encoder with the same code on the same data; drop > 0 means capability lost.\n\n"
        + degradation_section(metrics, probes)
        + "\n\n### Fairness\n\n"
        + fairness_section(metrics, probes)
        + skipped_lines,
        "## Reproduce\n\n" + reproduce,
        "## Load\n\n" + task.loading_snippet(labels, adapter, data.base_model),
    ]
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n"
