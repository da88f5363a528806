"""Tiny datasets in a hub repo's parquet layout, which ``datasets`` reads from a local folder as it reads the hub."""

from __future__ import annotations

from pathlib import Path

import datasets


def write_hub_dataset(
    folder: Path,
    splits: dict[str, dict[str, list]],
    features: datasets.Features | None = None,
    config: str | None = None,
) -> Path:
    """``<folder>/data/<split>-00000-of-00001.parquet`` per split; with ``config``, ``<folder>/<config>/...`` and a
    README declaring the config, as Salesforce/wikitext has."""
    subfolder = config or "data"
    for split, columns in splits.items():
        (folder / subfolder).mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_dict(columns, features=features).to_parquet(
            folder / subfolder / f"{split}-00000-of-00001.parquet"
        )
    if config:
        files = "".join(f"  - split: {split}\n    path: {config}/{split}-*\n" for split in splits)
        (folder / "README.md").write_text(f"---\nconfigs:\n- config_name: {config}\n  data_files:\n{files}---\n")
    return folder
