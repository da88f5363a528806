"""Every option of every config group composes, passes the run's checks and builds what it names: a broken YAML fails
here, in seconds, not an hour into a run."""

from __future__ import annotations

import hydra
import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from ftaudit.config import CONFIG_DIR, RunSettings, check_config
from ftaudit.methods import build_method
from ftaudit.probes.build import build_probes
from ftaudit.sweep.trials import as_hydra_job, compose_run_config
from ftaudit.tasks import build_task
from ftaudit.tracking.loggers import build_loggers

# Groups with one option per file; hydra/ holds launchers, composed by multiruns only.
GROUPS = sorted(path.name for path in CONFIG_DIR.iterdir() if path.is_dir() and path.name not in ("hydra", "sweep"))
OPTIONS = [(group, path.stem) for group in GROUPS for path in sorted((CONFIG_DIR / group).glob("*.yaml"))]


def test_every_group_is_covered():
    assert {"data", "task", "model", "optimizer", "hardware", "logger", "probes", "method", "experiment"} <= set(GROUPS)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_checks_and_instantiates(group, option, tmp_path):
    GlobalHydra.instance().clear()
    with (
        initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"),
        as_hydra_job(compose_run_config([f"{group}={option}"]), tmp_path) as cfg,  # as train.py runs it
    ):
        check_built(group, cfg)


def check_built(group: str, cfg) -> None:
    check_config(cfg, RunSettings)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves (e.g. a method's ${model.adapter_targets})
    task = build_task(cfg.task)
    assert task.name == cfg.task.name
    build_method(cfg.method)
    build_probes(cfg, task)
    hydra.utils.get_class(cfg.optimizer._target_)
    hydra.utils.get_class(cfg.trainer._target_)
    if group == "logger":
        build_loggers(cfg.logger)
