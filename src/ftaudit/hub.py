"""Data from the Hugging Face hub, read through ``datasets`` (which caches what it downloads).

The hub is the last place looked: only when the user gave no path and the default folder is empty
(``ftaudit.paths``). A hub split is recorded by its id, the revision ``datasets`` resolved and the split's
fingerprint, with the SHA-256 of the Arrow files its rows were read from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ftaudit.errors import DataError
from ftaudit.files import file_sha256
from ftaudit.paths import DataNotFound

log = logging.getLogger(__name__)


class HubUnavailable(DataNotFound):
    """The hub dataset could not be loaded (offline, no such dataset or config): as if it were not there."""


@dataclass(frozen=True)
class HubSplit:
    """One split of a hub dataset as the run read it."""

    hub_id: str
    config: str | None
    split: str
    revision: str  # the commit ``datasets`` resolved the id to (for a local folder, its hash of the files)
    fingerprint: str  # ``datasets``' fingerprint of the split
    rows: object = field(compare=False, repr=False)  # the ``datasets.Dataset``

    def record(self) -> dict:
        """What env.json lists for it among the data files."""
        files = [Path(entry["filename"]) for entry in self.rows.cache_files]
        return {
            "hub_id": self.hub_id,
            "config": self.config,
            "split": self.split,
            "revision": self.revision,
            "fingerprint": self.fingerprint,
            "files": [{"path": str(path), "sha256": file_sha256(path)} for path in files],
        }

    @property
    def identity(self) -> str:
        return f"{self.hub_id}@{self.revision} {self.config} {self.split} {self.fingerprint}"

    def column(self, name: str) -> list:
        if name not in self.rows.column_names:
            raise DataError(
                f"{self}: no field {name!r} (it has {', '.join(self.rows.column_names)}); point the hub id "
                "at a copy with that field, or give the data as local files"
            )
        return self.rows[name]

    def __str__(self) -> str:
        return f"{self.hub_id}{f' ({self.config})' if self.config else ''} {self.split} split"


_loaded: dict[tuple[str, str | None], tuple[object, str]] = {}
_unreachable: list[str] = []  # why the hub could not be reached: asked again, it would retry for ~20 s each time


def load_hub(hub_id: str, config: str | None = None) -> tuple[object, str]:
    """The ``datasets.DatasetDict`` of ``hub_id`` (a hub id or a local folder in the hub's layout) and the revision
    ``datasets`` resolved; ``HubUnavailable`` when it cannot be loaded."""
    key = (hub_id, config)
    if key in _loaded:
        return _loaded[key]
    if _unreachable and not Path(hub_id).is_absolute():
        raise HubUnavailable(f"not asked, the hub was out of reach just before: {_unreachable[0]}")
    import datasets  # imported here: a run on local files does not pay for importing it

    datasets.disable_progress_bars()
    try:
        builder = datasets.load_dataset_builder(hub_id, config)
        builder.download_and_prepare()
        _loaded[key] = builder.as_dataset(), builder.hash
    except Exception as err:  # offline, no such dataset, config or file: all mean the data is not there
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        if isinstance(err, ConnectionError):
            _unreachable.append(reason)
        raise HubUnavailable(reason) from None
    log.info("data: %s%s from the hub (revision %s)", hub_id, f" ({config})" if config else "", _loaded[key][1])
    return _loaded[key]


def hub_splits(hub_id: str, config: str | None, splits: list[str]) -> dict[str, HubSplit]:
    """``splits`` of a hub dataset; a missing split is an error naming those it has."""
    dataset, revision = load_hub(hub_id, config)
    missing = [split for split in splits if split not in dataset]
    if missing:
        raise DataError(
            f"{hub_id}: no {', '.join(missing)} split (it has {', '.join(dataset)}); point the hub id at "
            "a copy that has it, or give the data as local files"
        )
    return {
        split: HubSplit(hub_id, config, split, revision, dataset[split]._fingerprint, dataset[split])
        for split in splits
    }
