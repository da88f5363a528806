"""What a run prints when it ends, and the provenance of the data files it read."""

from __future__ import annotations

from pathlib import Path

from ftaudit.files import file_sha256
from ftaudit.hub import HubSplit
from ftaudit.probes.base import Probe
from ftaudit.tasks.base import Task

SUMMARY_RESOURCES = ("resource/train_seconds", "resource/train_tokens_per_second")  # printed after the task's


def data_file_hashes(datamodule, probes: list[Probe]) -> list[dict]:
    """Every data file the run read, resolved, with its SHA-256; a hub split as its id, revision and fingerprint."""
    sources = dict.fromkeys(
        source if isinstance(source, HubSplit) else Path(source).resolve()
        for source in [*datamodule.data_files, *(f for p in probes for f in p.data_files)]
    )
    return [
        source.record() if isinstance(source, HubSplit) else {"path": str(source), "sha256": file_sha256(source)}
        for source in sources
    ]


def print_summary(run_dir: Path, metrics: dict[str, float], tested: str, task: Task) -> None:
    first = [*task.summary_keys(), *SUMMARY_RESOURCES]
    rows = [(key, metrics[key]) for key in first if key in metrics]
    rows += sorted((k, v) for k, v in metrics.items() if k not in first and not task.is_detail(k))
    width = max(len(key) for key, _ in rows)
    lines = [
        f"  {key:<{width}}  {value:.4f}" if abs(value) < 1000 else f"  {key:<{width}}  {value:.1f}"
        for key, value in rows
    ]
    print(f"\nrun directory: {run_dir}\ntested checkpoint: {tested}\n" + "\n".join(lines), flush=True)
