"""Where the project finds things on disk.

A path the user gave (a config value, else an environment variable that is set) is authoritative: if it does
not exist the run stops with one line. Only when the user gave none does the search fall back to the
repository's ``data/`` folder (and, for some data, the hub).
"""

from __future__ import annotations

import os
from pathlib import Path

from ftaudit.errors import DataError

# src/ftaudit/paths.py -> the checkout root (the README installs the package editable).
REPO_ROOT = Path(__file__).resolve().parents[2]


class DataNotFound(DataError):
    """The user gave no path and the default place is empty: callers may fall back (the hub) or skip (a probe)."""


def data_location(explicit: str | None, env_var: str, default: str, key: str) -> tuple[Path, str | None]:
    """The path to read and who gave it: ``key``'s config value, else ``$env_var``; either must exist. With neither,
    ``<repo>/<default>`` and None (it may not exist)."""
    for source, value in ((key, explicit), (f"${env_var}", os.environ.get(env_var))):
        if value:
            path = Path(value).expanduser()
            if not path.exists():
                hint = f" (unset, {key} falls back to ${env_var}, then {REPO_ROOT / default})" if source == key else ""
                raise DataError(f"{source}={value}: {path.resolve()} does not exist; fix it or unset it{hint}")
            return path.resolve(), source
    return REPO_ROOT / default, None


def find_data(what: str, explicit: str | None, env_var: str, default: str, key: str) -> Path:
    """The given path (which must exist), else the repo default; ``DataNotFound`` when nothing is there."""
    path, source = data_location(explicit, env_var, default, key)
    if source is None and not path.exists():
        raise DataNotFound(f"{what} not found: set {key}=PATH or ${env_var} (looked in {path})")
    return path
