"""Where the project finds things on disk.

A path the user gave (a config value, else an environment variable that is set) is authoritative: if it does
not exist the run stops with one line. Only when the user gave none does the search fall back to the
checkout's ``data/`` folder, or for an installed package the working directory's (and, for some data, the hub).
"""

from __future__ import annotations

import os
from pathlib import Path

from ftaudit.errors import DataError


def checkout_root(module: Path) -> Path | None:
    """The source checkout ``module`` (a file of this package) runs from: ``<root>/src/ftaudit/...`` beside
    ``<root>/pyproject.toml``, as an editable install runs; None for an installed copy (site-packages), whose
    folders say nothing about which commit it was built from."""
    package = module.resolve().parent
    root = package.parent.parent
    return root if package.parent.name == "src" and (root / "pyproject.toml").is_file() else None


# The checkout, else None; and where ``data/`` is looked for when no path is given: the checkout's, else (an
# installed package) the working directory's.
CHECKOUT = checkout_root(Path(__file__))
DATA_ROOT = CHECKOUT or Path.cwd()


class DataNotFound(DataError):
    """The user gave no path and the default place is empty: callers may fall back (the hub) or skip (a probe)."""


def data_location(explicit: str | None, env_var: str, default: str, key: str) -> tuple[Path, str | None]:
    """The path to read and who gave it: ``key``'s config value, else ``$env_var``; either must exist. With neither,
    ``DATA_ROOT/<default>`` and None (it may not exist)."""
    for source, value in ((key, explicit), (f"${env_var}", os.environ.get(env_var))):
        if value:
            path = Path(value).expanduser()
            if not path.exists():
                hint = f" (unset, {key} falls back to ${env_var}, then {DATA_ROOT / default})" if source == key else ""
                raise DataError(f"{source}={value}: {path.resolve()} does not exist; fix it or unset it{hint}")
            return path.resolve(), source
    return DATA_ROOT / default, None


def find_data(what: str, explicit: str | None, env_var: str, default: str, key: str) -> Path:
    """The given path (which must exist), else the repo default; ``DataNotFound`` when nothing is there."""
    path, source = data_location(explicit, env_var, default, key)
    if source is None and not path.exists():
        raise DataNotFound(f"{what} not found: set {key}=PATH or ${env_var} (looked in {path})")
    return path
