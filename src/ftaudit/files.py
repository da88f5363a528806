"""Files, at the bottom of the package: atomic writes (readers never see half a file), content hashes, and where
ftaudit keeps what it caches between runs. Every layer above (hub, models, probes, tracking) writes through these."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

from ftaudit.errors import FIXABLE_WRITE_ERRORS, write_error

CACHE_DIR_ENV = "FTAUDIT_CACHE_DIR"
UMASK = os.umask(0o022)
os.umask(UMASK)  # reading the umask means setting it: restored at once


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
