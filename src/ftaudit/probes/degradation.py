"""Degradation probes: what fine-tuning made the base model forget.

Each probe measures the untouched base encoder and the fine-tuned one with the same code on the same
data and reports ``degradation/<probe>/base``, ``/finetuned`` and ``/drop`` (positive = capability lost),
plus its own detail keys. The base side is cached on disk (``ftaudit.probes.cache``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from ftaudit.errors import ConfigError, DataError
from ftaudit.files import cache_directory, file_sha256
from ftaudit.hub import HubSplit, HubUnavailable, hub_splits
from ftaudit.metrics import MetricSpec
from ftaudit.paths import DataNotFound, find_data
from ftaudit.probes.base import Probe, ProbeContext
from ftaudit.probes.cache import BaseResultCache, tokenizer_sha256, weights_sha256

log = logging.getLogger(__name__)

# Bump when a change to any probe's measuring code changes its numbers: it invalidates every cached base result.
MEASURE_VERSION = 1
SPLIT_SUFFIX = {
    "test": "",
    "validation": "_val",
}  # degradation/stsb/... on test, degradation/stsb_val/... on validation


def comparison(name: str, base: float, finetuned: float, higher_is_better: bool = True) -> dict[str, float]:
    """``name/base``, ``name/finetuned`` and ``name/drop``, the drop signed so that positive means worse."""
    drop = base - finetuned if higher_is_better else finetuned - base
    return {
        f"degradation/{name}/base": float(base),
        f"degradation/{name}/finetuned": float(finetuned),
        f"degradation/{name}/drop": float(drop),
    }


def comparison_specs(name: str, split: str | None, higher_is_better: bool = True) -> list[MetricSpec]:
    """The declarations of ``comparison``'s keys: base and fine-tuned scores point the score's way; a drop is worse."""
    better = "max" if higher_is_better else "min"
    return [
        MetricSpec(f"degradation/{name}/base", split, better),
        MetricSpec(f"degradation/{name}/finetuned", split, better),
        MetricSpec(f"degradation/{name}/drop", split, "min"),
    ]


class BaseIdentity:
    """Who the base model is, hashed once per run and shared by the probes: encoder weights + tokenizer."""

    def __init__(self):
        self._of: tuple[int, dict] | None = None

    def __call__(self, ctx: ProbeContext) -> dict:
        if self._of is None or self._of[0] != id(ctx.base_state):
            prefix = ctx.model.base_model_prefix + "."
            identity = {
                "encoder_weights": weights_sha256(ctx.base_state, prefix),
                "tokenizer": tokenizer_sha256(ctx.tokenizer),
            }
            self._of = (id(ctx.base_state), identity)
        return self._of[1]


class DegradationProbe(Probe):
    """A probe with (optionally) a data file per split, found like the task data, and a cached base-model side.

    One instance measures one ``split`` of its data: ``degradation/<name>/...`` on test, ``<name>_val`` on
    validation. A data folder the user gave must exist and hold the split's file (checked when the probe is
    built, before training); with none given and none in the default place, the split is read from the hub
    (settings ``hub_id``, ``hub_config``), and when that fails too, the probe is skipped.
    """

    kind = "degradation"
    base_name: str
    data: tuple[str, str, str] | None = None  # (what, env var, repo default) of the data folder, if any
    split_files: dict[str, str] = {}  # split -> its file in that folder

    def __init__(
        self, settings: DictConfig, split: str | None, batch_size: int, cache: BaseResultCache, identity: BaseIdentity
    ):
        self.settings, self.split, self.batch_size, self.cache, self.identity = (
            settings,
            split,
            batch_size,
            cache,
            identity,
        )
        self.name = self.base_name + SPLIT_SUFFIX.get(split, "")
        self.missing = None
        found = self.find_data_file() if self.data else None
        self.data_files = [found] if found else []

    def find_data_file(self) -> Path | HubSplit | None:
        what, env_var, default = self.data
        key = f"probes.degradation_settings.{self.base_name}.dir"
        try:
            folder = find_data(what, self.settings.dir, env_var, default, key)
        except DataNotFound as err:
            return self.from_hub(str(err))
        path = folder / self.split_files[self.split]
        if not path.is_file():
            raise DataError(
                f"{what} {self.split} file {path} not found; point {key} or ${env_var} at the {what} folder"
            )
        return path

    def from_hub(self, not_found: str) -> HubSplit | None:
        """This probe's split from the hub; None (and why in ``missing``) when there is no hub id or it fails."""
        hub_id = self.settings.get("hub_id")
        if hub_id:
            try:
                return hub_splits(hub_id, self.settings.get("hub_config"), [self.split])[self.split]
            except HubUnavailable as err:
                not_found += f", nor on the hub ({hub_id}: {err})"
        self.missing = not_found
        return None

    def data_file(self) -> Path | HubSplit:
        return self.data_files[0]

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        if self.missing:
            log.warning("degradation probe %s skipped: %s", self.name, self.missing)
        return self.missing

    def data_identity(self) -> str | None:
        """A data file's SHA-256, or a hub split's id, revision and fingerprint."""
        if not self.data:
            return None
        source = self.data_file()
        return source.identity if isinstance(source, HubSplit) else file_sha256(source)

    def cached_base(
        self, ctx: ProbeContext, compute: Callable[[], dict], tensors: bool = False, extra: dict | None = None
    ) -> dict:
        """The base side from the cache, keyed by base identity, this probe's settings and split, its data, the
        device and precision it is measured in, and ``extra``."""
        # The data's identity below says what was read; the class is the probe, named by "probe"
        where = ("_target_", "dir", "splits", "hub_id", "hub_config")
        settings = {k: v for k, v in OmegaConf.to_container(self.settings, resolve=True).items() if k not in where}
        key = {
            "probe": self.base_name,
            "split": self.split,
            "version": MEASURE_VERSION,
            "model": self.identity(ctx),
            "settings": settings,
            "batch_size": self.batch_size,
            "device": ctx.device.type,
            "precision": ctx.precision,
            "data": self.data_identity(),
            **(extra or {}),
        }
        return self.cache.get_or_compute(self.name, key, compute, tensors)


def probe_class(name: str, settings: DictConfig) -> type[DegradationProbe]:
    """The class ``probes.degradation_settings.<name>._target_`` names: adding a probe is its module and its config."""
    key = f"probes.degradation_settings.{name}"
    try:
        found = hydra.utils.get_class(settings._target_)
    except (ImportError, ValueError) as err:
        raise ConfigError(f"{key}._target_={settings._target_}: {str(err).splitlines()[0]}") from None
    if not (isinstance(found, type) and issubclass(found, DegradationProbe)):
        raise ConfigError(f"{key}._target_={settings._target_} is not a DegradationProbe (ftaudit.probes.degradation)")
    return found


def build_degradation_probes(cfg: DictConfig) -> list[Probe]:
    """The probes ``probes.degradation`` names, in its order, each once per split of its ``splits`` setting (a probe
    without data, e.g. ``weights``, once), each the class its settings' ``_target_`` names, configured by them."""
    settings = cfg.probes.degradation_settings
    cache, identity = BaseResultCache(cache_directory(settings.cache_dir)), BaseIdentity()
    names = list(cfg.probes.degradation or [])
    known = sorted(key for key, value in settings.items() if isinstance(value, DictConfig) and value.get("_target_"))
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(
            f"probes.degradation: unknown probe(s) {unknown}; choose from {known}, or configure one: "
            f"probes.degradation_settings.<name>._target_=<its DegradationProbe class>"
        )
    probes = []
    for name in names:
        probe_settings = settings.get(name)
        chosen = probe_class(name, probe_settings)
        splits = list(probe_settings.get("splits") or []) if chosen.data else [None]
        bad = [split for split in splits if split not in chosen.split_files] if chosen.data else []
        if bad or not splits:
            raise ConfigError(
                f"probes.degradation_settings.{name}.splits={splits} must list {' and/or '.join(chosen.split_files)}"
            )
        probes += [chosen(probe_settings, split, settings.batch_size, cache, identity) for split in splits]
    return probes
