"""Where the project finds things on disk."""

from __future__ import annotations

import os
from pathlib import Path

from ftaudit.errors import DataError

# src/ftaudit/paths.py -> the checkout root (the README installs the package editable).
REPO_ROOT = Path(__file__).resolve().parents[2]


def data_candidates(explicit: str | None, env_var: str, default: str) -> list[tuple[str, Path]]:
    """Places to look, in order: the config value, ``$env_var``, then ``<repo>/<default>``."""
    candidates = []
    if explicit:
        candidates.append(("config", Path(explicit).expanduser()))
    if os.environ.get(env_var):
        candidates.append((f"${env_var}", Path(os.environ[env_var]).expanduser()))
    candidates.append(("repo default", REPO_ROOT / default))
    return candidates


def describe(candidates: list[tuple[str, Path]]) -> str:
    return ", ".join(f"{source} {path}" for source, path in candidates)


def find_data(what: str, explicit: str | None, env_var: str, default: str) -> Path:
    """The first existing candidate, or one error that names every place tried and how to fix it."""
    candidates = data_candidates(explicit, env_var, default)
    for _, path in candidates:
        if path.exists():
            return path.resolve()
    raise DataError(f"{what} not found (tried {describe(candidates)}); set ${env_var} or give the path in the config")
