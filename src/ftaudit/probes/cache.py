"""On-disk cache of base-model probe results, so a sweep measures the untouched base model once.

An entry is keyed by everything that decides the base result: the base encoder's actual weights,
the tokenizer, the probe's settings, the data file and the measuring code's version. Parallel
workers share it safely: one file lock per entry (the first worker computes, the others wait and
read), and every entry is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from filelock import FileLock

from ftaudit.files import atomic_write_json

log = logging.getLogger(__name__)


def weights_sha256(state: dict, prefix: str) -> str:
    """Hash of the weights under ``prefix`` (names, shapes, dtypes, values): a random-init model is known by its draw."""
    digest = hashlib.sha256()
    for name in sorted(key for key in state if key.startswith(prefix)):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
        digest.update(tensor.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def tokenizer_sha256(tokenizer) -> str:
    """Hash of a fast tokenizer's definition (vocabulary, normaliser, special tokens).

    Without its truncation and padding state, which every call with ``truncation=``/``padding=`` rewrites.
    """
    definition = json.loads(tokenizer.backend_tokenizer.to_str())
    definition.pop("truncation", None)
    definition.pop("padding", None)
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


class BaseResultCache:
    """``get_or_compute(probe, key, compute)``: the cached result for ``key``, computing and storing it on a miss."""

    def __init__(self, directory: Path):
        self.directory = directory

    def _paths(self, probe: str, key: dict, tensors: bool) -> tuple[Path, Path]:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
        entry = self.directory / f"{probe}-{digest}{'.pt' if tensors else '.json'}"
        return entry, entry.with_name(entry.name + ".lock")

    def get_or_compute(self, probe: str, key: dict, compute: Callable[[], dict], tensors: bool = False) -> dict:
        """``compute()`` returns flat floats (stored as JSON) or, with ``tensors``, a dict of tensors (torch.save)."""
        entry, lock = self._paths(probe, key, tensors)
        self.directory.mkdir(parents=True, exist_ok=True)
        with FileLock(lock):
            cached = _read(entry, tensors)
            if cached is not None:
                log.info("probe %s: base result read from %s", probe, entry)
                return cached
            result = compute()
            if tensors:
                _atomic_torch_save(entry, result)
            else:
                atomic_write_json(entry, {"key": key, "result": result})
            return result


def _read(entry: Path, tensors: bool) -> dict | None:
    """The entry's result, or None if absent or unreadable (then it is recomputed and replaced)."""
    if not entry.exists():
        return None
    try:
        if tensors:
            return torch.load(entry, map_location="cpu", weights_only=True)
        return json.loads(entry.read_text(encoding="utf-8"))["result"]
    except Exception as err:  # noqa: BLE001 - any damage to a cache entry just means: compute again
        log.warning("ignoring unreadable cache entry %s (%s)", entry, err)
        return None


def _atomic_torch_save(path: Path, tensors: dict) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: readers never see half a file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save(tensors, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
