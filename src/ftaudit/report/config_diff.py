"""A run's config against the shipped defaults: what the run changed, key by key."""

from __future__ import annotations

from functools import cache

from ftaudit.config import CONFIG_DIR
from ftaudit.report.records import RunRecord, flatten

SET_AT_RUN_TIME = object()  # a default that only a running Hydra job resolves (e.g. its output folder)


def resolved(node):
    """``node`` as plain containers, each interpolation resolved where it can be outside a Hydra job (OmegaConf
    resolves a value when it is read)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(node, ListConfig):
        return OmegaConf.to_container(node, resolve=True)
    if not isinstance(node, DictConfig):
        return node
    plain = {}
    for key in node:
        try:
            plain[key] = resolved(node[key])
        except (OmegaConfBaseException, ValueError):
            plain[key] = SET_AT_RUN_TIME
    return plain


@cache
def default_config(config_name: str) -> dict:
    """The shipped ``config_name`` (``train``, ``audit``) composed with no overrides, flattened; environment
    variables read as they are now."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        composed = compose(config_name)
    return flatten(resolved(composed))


def config_changes(run: RunRecord, config_name: str) -> list[tuple[str, object, object]]:
    """(key, default, the run's value) for every key whose value differs from the defaults' (a key one side lacks:
    None there), keys whose default is only known at run time left out."""
    defaults = default_config(config_name)
    changed = []
    for key in sorted(set(defaults) | set(run.config)):
        default, value = defaults.get(key), run.config.get(key)
        if default is SET_AT_RUN_TIME or default == value:
            continue
        changed.append((key, default, value))
    return changed
