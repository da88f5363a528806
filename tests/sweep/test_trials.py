"""A trial's config: what train.py would compose, in its own folder, in the sweep's W&B group."""

from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from ftaudit.config import CONFIG_DIR
from ftaudit.errors import ConfigError
from ftaudit.sweep.trials import Objective, as_hydra_job, compose_run_config


@pytest.fixture
def hydra_conf():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


def objective(tmp_path: Path) -> Objective:
    return Objective(
        base_overrides=[],
        space={},
        objectives=[("task/val_f1", "maximize")],
        sweep_dir=tmp_path,
        prune=False,
        monitor="val/f1",
        max_failures=1,
        group="lr_epochs",
        worker={},
    )


def test_a_trial_runs_in_its_own_folder_and_the_sweep_state_comes_back(hydra_conf, tmp_path):
    cfg = compose_run_config(["model=tiny", "logger=csv", "optimizer.lr=0.001"])
    with as_hydra_job(cfg, tmp_path / "trials" / "0") as job:
        assert "hydra" not in job and job.optimizer.lr == 0.001
        assert OmegaConf.to_container(job.logger, resolve=True)["csv"]["save_dir"] == str(tmp_path / "trials" / "0")
    assert not HydraConfig.initialized()  # as before the trial


def test_compose_errors_are_one_config_error(hydra_conf):
    with pytest.raises(ConfigError, match=r"python train\.py optimizer\.lrr=1 does not compose: Could not override"):
        compose_run_config(["optimizer.lrr=1"])


def test_trials_join_the_sweep_wandb_group_unless_the_config_names_one(hydra_conf, tmp_path):
    cfg = compose_run_config(["logger=wandb"])
    objective(tmp_path).join_wandb_group(cfg, 3)
    assert (cfg.logger.wandb.group, cfg.logger.wandb.name) == ("sweep-lr_epochs", "trial-3")
    cfg = compose_run_config(["logger=wandb", "logger.wandb.group=mine"])
    objective(tmp_path).join_wandb_group(cfg, 3)
    assert cfg.logger.wandb.group == "mine"
    cfg = compose_run_config(["logger=csv"])
    objective(tmp_path).join_wandb_group(cfg, 3)
    assert "wandb" not in cfg.logger
