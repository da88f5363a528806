"""Read an offline W&B run back from its ``run-<id>.wandb`` file, without network or W&B's server.

wandb 0.31 dropped its Python reader (``wandb.sdk.internal.datastore``); the file is still a LevelDB log
(32 KiB blocks of ``crc32 | length | type | data`` chunks) after a 7-byte ``:W&B`` header, and each record
is a ``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from wandb.proto import wandb_internal_pb2

FILE_HEADER = 7
BLOCK = 32768
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    found, pending, position = [], b"", FILE_HEADER
    while position + CHUNK_HEADER <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < CHUNK_HEADER:  # the block's zero-padded trailer
            position += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + CHUNK_HEADER])
        if kind == 0:  # zero padding to the end of the block
            position += left_in_block
            continue
        pending += data[position + CHUNK_HEADER : position + CHUNK_HEADER + length]
        position += CHUNK_HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            found.append(record)
            pending = b""
    return found


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


@dataclass
class OfflineRun:
    run_id: str
    group: str
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    exit_code: int | None = None


def finished_records(path: Path, timeout: float = 60.0) -> list[wandb_internal_pb2.Record]:
    """The records once the exit record is on disk: W&B's service writes the file after ``finish()`` returns."""
    deadline = time.monotonic() + timeout
    while True:
        found = records(path)
        if any(record.WhichOneof("record_type") == "exit" for record in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def read_offline_run(path: Path) -> OfflineRun:
    """The run's group, config, final summary (last update per key wins), history rows and exit code."""
    run = None
    config, summary, history, exit_code = {}, {}, [], None
    for record in finished_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            config.update({_key(item): json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "config":
            config.update({_key(item): json.loads(item.value_json) for item in record.config.update})
        elif kind == "summary":
            summary.update({_key(item): json.loads(item.value_json) for item in record.summary.update})
        elif kind == "history":
            history.append({_key(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "exit":
            exit_code = record.exit.exit_code
    assert run is not None, f"{path} holds no run record"
    return OfflineRun(run.run_id, run.run_group, config, summary, history, exit_code)


def offline_run_files(root: Path) -> list[Path]:
    """Every offline run under ``root``, where ``WANDB_DIR/wandb/offline-run-*/run-*.wandb`` puts them."""
    return sorted(root.rglob("wandb/offline-run-*/run-*.wandb"))
