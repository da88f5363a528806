"""Files, at the bottom of the package: content hashes, and where ftaudit keeps what it caches between runs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CACHE_DIR_ENV = "FTAUDIT_CACHE_DIR"


def cache_directory(configured: str | None) -> Path:
    """The config value, else ``$FTAUDIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/ftaudit`` (``~/.cache/ftaudit``)."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "ftaudit"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
