"""Tasks (NER, sentence classification) behind one interface (``ftaudit.tasks.base.Task``), chosen by ``task=``."""

from __future__ import annotations

import hydra
from hydra.errors import InstantiationException

from ftaudit.errors import ConfigError
from ftaudit.tasks.base import Task


def build_task(cfg) -> Task:
    """The task the ``task`` config group selects."""
    try:
        task = hydra.utils.instantiate(cfg)
    except InstantiationException as err:
        raise ConfigError(
            f"cannot build task {cfg.get('_target_')}: {err.__cause__ or err}".replace("\n", " ")
        ) from None
    if not isinstance(task, Task):
        raise ConfigError(f"task._target_={cfg._target_} is not a ftaudit.tasks.base.Task")
    return task
