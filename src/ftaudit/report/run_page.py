"""One run's page: the headline gain beside each cost (degradation, calibration, fairness, resources), the config
against the defaults, the provenance and links to the saved model, all read from the run's record."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ftaudit.errors import DataError
from ftaudit.metrics import RELIABILITY_FILE
from ftaudit.report.config_diff import config_changes
from ftaudit.report.figures import group_rates_figure, per_layer_figure, reliability_figure, svg_uri
from ftaudit.report.numbers import Number, number, numbers
from ftaudit.report.records import RunRecord, YamlLoader
from ftaudit.report.table import headlines

LAYER = re.compile(r"^(embeddings|layer_(\d+))$")
COMPARISON = ("base", "finetuned", "drop")  # what a degradation probe records of the base and the fine-tuned model
KEY_RESOURCES = (
    "resource/train_seconds",
    "resource/total_seconds",
    "resource/train_tokens_per_second",
    "resource/train_samples_per_second",
    "resource/mfu",
    "resource/peak_rss_mb",
    "resource/gpu_peak_memory_mb",
    "resource/energy_kwh",
    "resource/co2_kg",
    "resource/params_trainable",
    "resource/params_total",
)
RECORD_FILES = ("metrics.json", "metrics_info.json", "config.yaml", "env.json", RELIABILITY_FILE, "train.log")
SAVED_MODELS = ("model", "merged_model")


@dataclass
class Section:
    """A block of the page: a title, what it shows, its tables (caption -> numbers) and figures (caption -> URI)."""

    title: str
    note: str = ""
    tables: dict[str, list[Number]] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)


def read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"unreadable {path}: {err}") from None


def layer_order(name: str) -> tuple[int, int]:
    match = LAYER.match(name)
    return (0, 0) if match[1] == "embeddings" else (1, int(match[2]))


def under(run: RunRecord, prefix: str) -> dict[str, list[str]]:
    """The keys under ``prefix/<name>/...``, by name, sorted."""
    found: dict[str, list[str]] = {}
    for key in sorted(run.metrics):
        if key.startswith(prefix + "/"):
            found.setdefault(key.split("/")[1], []).append(key)
    return found


def gain_section(run: RunRecord) -> tuple[Number | None, Section]:
    scores = headlines([run])
    headline_key = next((f"task/test_{s}" for s in scores if f"task/test_{s}" in run.metrics), None)
    headline_key = headline_key or next((key for key in sorted(run.metrics) if key.startswith("task/test_")), None)
    first = [headline_key, *(f"task/val_{s}" for s in scores)]
    rest = [key for key in sorted(run.metrics) if key.startswith("task/") and key not in first]
    section = Section("Gain: the task", "The fine-tuned model's task scores; the headline first.")
    section.tables["task scores"] = numbers(run, [*first, *rest])
    return (number(run, headline_key) if headline_key else None), section


def degradation_section(run: RunRecord) -> Section:
    section = Section(
        "Cost: what the pretrained model forgot",
        "Each probe scores the untouched base and the fine-tuned model on the same data; drop = how much worse the "
        "fine-tuned model is (positive: it forgot).",
    )
    for probe, keys in under(run, "degradation").items():
        names = {key.split("/", 2)[2]: key for key in keys}
        layers = sorted((name for name in names if LAYER.match(name)), key=layer_order)
        compared = [names[name] for name in COMPARISON if name in names]
        other = [key for name, key in names.items() if name not in COMPARISON and name not in layers]
        section.tables[probe] = numbers(run, [*compared, *other, *(names[name] for name in layers)])
        if len(layers) > 1:
            values = [(name, run.metrics[names[name]]) for name in layers]
            ylabel = f"{probe} ({number(run, names[layers[0]]).direction})"
            section.figures[f"{probe} per layer"] = svg_uri(per_layer_figure(f"{probe} per layer", values, ylabel))
    return section


def calibration_section(run: RunRecord) -> Section:
    section = Section(
        "Cost: calibration",
        "How far the model's confidence is from how often it is right (expected calibration error).",
    )
    section.tables["calibration"] = numbers(run, [key for key in sorted(run.metrics) if key.endswith("_ece")])
    bins = read_json(run.path / RELIABILITY_FILE)
    if bins:
        section.figures[f"reliability diagram ({bins['split']})"] = svg_uri(reliability_figure(bins))
    return section


def fairness_section(run: RunRecord) -> Section:
    section = Section(
        "Cost: fairness",
        "The same inputs with names of different demographic groups: each group's rate with its 95% bootstrap "
        "interval, the largest gap between groups with its interval and permutation p-value.",
    )
    for probe, keys in under(run, "fairness").items():
        prefix = f"fairness/{probe}/"
        groups = [key for key in keys if key.startswith(prefix + "group/")]
        overall = [key for key in keys if "/" not in key.removeprefix(prefix)]
        section.tables[f"{probe}: gaps"] = numbers(run, overall)
        section.tables[f"{probe}: per group"] = numbers(run, groups)
        section.tables[f"{probe}: per attribute"] = numbers(run, [k for k in keys if k.startswith(prefix + "by_")])
        for rate in sorted({key.rsplit("/", 1)[1] for key in groups if f"{key}_ci_low" in run.metrics}):
            shown = [key for key in groups if key.endswith("/" + rate) and f"{key}_ci_low" in run.metrics]
            rows = [
                (
                    key.removeprefix(prefix + "group/").removesuffix("/" + rate),
                    run.metrics[key],
                    run.metrics[f"{key}_ci_low"],
                    run.metrics[f"{key}_ci_high"],
                )
                for key in shown
            ]
            title = f"{probe}: {rate} per group (95% bootstrap intervals)"
            ylabel = f"{rate} ({number(run, shown[0]).direction})"
            section.figures[title] = svg_uri(group_rates_figure(title, rows, ylabel))
    return section


def resources_section(run: RunRecord) -> Section:
    section = Section("Cost: resources", "Time, throughput, memory and energy of this run.")
    section.tables["resources"] = numbers(run, KEY_RESOURCES)
    rest = [key for key in sorted(run.metrics) if key.startswith("resource/") and key not in KEY_RESOURCES]
    section.tables["every resource figure"] = numbers(run, rest)
    return section


def other_section(run: RunRecord) -> Section:
    known = ("task/", "degradation/", "fairness/", "resource/")
    section = Section("Method", "What the fine-tuning method itself recorded.")
    section.tables["method"] = numbers(run, [key for key in sorted(run.metrics) if not key.startswith(known)])
    return section


def card_front_matter(model_dir: Path) -> dict:
    card = model_dir / "README.md"
    if not card.is_file():
        return {}
    parts = card.read_text(encoding="utf-8").split("---", 2)
    return (yaml.load(parts[1], Loader=YamlLoader) or {}) if len(parts) == 3 else {}


def provenance(run: RunRecord, env: dict) -> dict:
    """What the run was made from: commit, versions, the base model, the data files and their hashes."""
    card = card_front_matter(run.path / "model")
    base = card.get("base_model") or run.config.get("model.hub_id") or run.config.get("model.name_or_path")
    facts = {
        "git commit": env.get("git_commit") or "none (not run from a checkout)",
        "ftaudit": env.get("packages", {}).get("ftaudit", "unknown"),
        "python": env.get("python", "unknown"),
        "platform": env.get("platform", "unknown"),
        "device": env.get("device", "unknown"),
        "seed": env.get("seed", run.config.get("seed")),
        "base model": base or "unknown",
        "base model read from": card.get("base_model_source") or run.config.get("model.name_or_path") or "unknown",
        "tested checkpoint": env.get("tested_checkpoint", "unknown"),
        "command": " ".join(env.get("command", [])),
    }
    return {
        "facts": {key: str(value) for key, value in facts.items()},
        "packages": env.get("packages", {}),
        "data_files": [row for entry in env.get("data_files", []) for row in data_file_rows(entry)],
    }


def data_file_rows(entry: dict) -> list[dict]:
    """A data file of env.json as (source, hash) rows: a local file with its SHA-256; a hub split by its id, config,
    split and revision, then each cached file it was read from."""
    if "hub_id" not in entry:
        return [{"source": entry.get("path", ""), "hash": entry.get("sha256", "")}]
    split = f"hub {entry['hub_id']} ({entry.get('config') or 'default'}, {entry.get('split')})"
    rows = [{"source": split, "hash": f"revision {entry.get('revision')}, fingerprint {entry.get('fingerprint')}"}]
    return rows + [{"source": file["path"], "hash": file["sha256"]} for file in entry.get("files", [])]


def cost_keys(run: RunRecord) -> list[str]:
    """The costs shown beside the gain: each degradation drop, the test ECE, each fairness probe's gap, the training
    time and energy."""
    return [
        *(key for key in sorted(run.metrics) if re.fullmatch(r"degradation/[^/]+/drop", key)),
        "task/test_ece",
        *(key for key in sorted(run.metrics) if re.fullmatch(r"fairness/[^/]+/(recall|flip_rate)_gap", key)),
        "resource/train_seconds",
        "resource/energy_kwh",
    ]


def run_context(run: RunRecord, name: str) -> dict:
    """Everything the run page shows; ``name``: how the run is called on the page."""
    env = read_json(run.path / "env.json")
    headline, gain = gain_section(run)
    sections = [
        gain,
        degradation_section(run),
        calibration_section(run),
        fairness_section(run),
        resources_section(run),
        other_section(run),
    ]
    overrides_file = run.path / ".hydra" / "overrides.yaml"
    overrides = (
        yaml.load(overrides_file.read_text(encoding="utf-8"), Loader=YamlLoader) if overrides_file.is_file() else None
    )
    return {
        "name": name,
        "path": run.path,
        "facts": {key: run.config.get(key) for key in ("task.name", "data.name", "model.name", "method.name")},
        "headline": headline,
        "costs": numbers(run, cost_keys(run)),
        "sections": [section for section in sections if any(section.tables.values()) or section.figures],
        "overrides": overrides,
        "changes": config_changes(run, "audit" if "audit" in env else "train"),
        "provenance": provenance(run, env),
        "all_numbers": [number(run, key) for key in sorted(run.metrics)],
        "record_files": [file for file in RECORD_FILES if (run.path / file).is_file()],
        "predictions": sorted(path.relative_to(run.path).as_posix() for path in (run.path / "predictions").glob("*")),
        "models": [name for name in SAVED_MODELS if (run.path / name).is_dir()],
        "cards": [f"{name}/README.md" for name in SAVED_MODELS if (run.path / name / "README.md").is_file()],
        "skipped": env.get("skipped_probes", {}),
    }
