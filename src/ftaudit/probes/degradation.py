"""Degradation probes: what fine-tuning made the base model forget.

Each probe measures the untouched base encoder and the fine-tuned one with the same code on the same
data and reports ``degradation/<probe>/base``, ``/finetuned`` and ``/drop`` (positive = capability lost),
plus its own detail keys. The base side is cached on disk (``ftaudit.probes.cache``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from ftaudit.errors import ConfigError, DataError
from ftaudit.paths import find_data
from ftaudit.probes.base import Probe, ProbeContext
from ftaudit.probes.cache import BaseResultCache, cache_directory, file_sha256, tokenizer_sha256, weights_sha256

log = logging.getLogger(__name__)

# Bump when a change to any probe's measuring code changes its numbers: it invalidates every cached base result.
MEASURE_VERSION = 1


def comparison(name: str, base: float, finetuned: float, higher_is_better: bool = True) -> dict[str, float]:
    """``name/base``, ``name/finetuned`` and ``name/drop``, the drop signed so that positive means worse."""
    drop = base - finetuned if higher_is_better else finetuned - base
    return {f"degradation/{name}/base": float(base), f"degradation/{name}/finetuned": float(finetuned),
            f"degradation/{name}/drop": float(drop)}


class BaseIdentity:
    """Who the base model is, hashed once per run and shared by the probes: encoder weights + tokenizer."""

    def __init__(self):
        self._of: tuple[int, dict] | None = None

    def __call__(self, ctx: ProbeContext) -> dict:
        if self._of is None or self._of[0] != id(ctx.base_state):
            prefix = ctx.model.base_model_prefix + "."
            identity = {"encoder_weights": weights_sha256(ctx.base_state, prefix),
                        "tokenizer": tokenizer_sha256(ctx.tokenizer)}
            self._of = (id(ctx.base_state), identity)
        return self._of[1]


class DegradationProbe(Probe):
    """A probe with (optionally) a data file found like the task data and a cached base-model side."""

    kind = "degradation"
    data: tuple[str, str, str] | None = None  # (what, env var, repo default) of the data folder, if any

    def __init__(self, settings: DictConfig, batch_size: int, cache: BaseResultCache, identity: BaseIdentity):
        self.settings, self.batch_size, self.cache, self.identity = settings, batch_size, cache, identity

    def data_file_name(self) -> str:
        return self.settings.file

    def data_file(self) -> Path:
        what, env_var, default = self.data
        path = find_data(what, self.settings.dir, env_var, default) / self.data_file_name()
        if not path.is_file():
            raise DataError(f"{what} file {path} not found; point probes.degradation_settings.{self.name}.dir "
                            f"or ${env_var} at the {what} folder")
        return path

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        if self.data is None:
            return None
        try:
            self.data_file()
        except DataError as err:
            log.warning("degradation probe %s skipped: %s", self.name, err)
            return str(err)
        return None

    def cached_base(self, ctx: ProbeContext, compute: Callable[[], dict], tensors: bool = False,
                    extra: dict | None = None) -> dict:
        """The base side from the cache, keyed by base identity, this probe's settings, its data and ``extra``."""
        settings = {k: v for k, v in OmegaConf.to_container(self.settings, resolve=True).items() if k != "dir"}
        key = {"probe": self.name, "version": MEASURE_VERSION, "model": self.identity(ctx), "settings": settings,
               "batch_size": self.batch_size, "data": file_sha256(self.data_file()) if self.data else None,
               **(extra or {})}
        return self.cache.get_or_compute(self.name, key, compute, tensors)


def probe_classes() -> dict[str, type[DegradationProbe]]:
    # Imported here: each probe module imports DegradationProbe from this one.
    from ftaudit.probes.cka import CKAProbe
    from ftaudit.probes.mlm import MaskedLMProbe
    from ftaudit.probes.stsb import StsbProbe
    from ftaudit.probes.weights import WeightDistanceProbe

    return {probe.name: probe for probe in (StsbProbe, MaskedLMProbe, CKAProbe, WeightDistanceProbe)}


def build_degradation_probes(cfg: DictConfig) -> list[Probe]:
    """The probes ``probes.degradation`` names, in its order, configured by ``probes.degradation_settings``."""
    classes = probe_classes()
    names = list(cfg.probes.degradation or [])
    unknown = [name for name in names if name not in classes]
    if unknown:
        raise ConfigError(f"probes.degradation: unknown probe(s) {unknown}; choose from {sorted(classes)}")
    settings = cfg.probes.degradation_settings
    cache, identity = BaseResultCache(cache_directory(settings.cache_dir)), BaseIdentity()
    return [classes[name](settings.get(name) or OmegaConf.create({}), settings.batch_size, cache, identity)
            for name in names]
