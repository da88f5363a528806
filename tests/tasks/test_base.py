"""The task interface: the headline's direction, which checkpointing and sweeps follow, and the printed summary."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ftaudit.config import CONFIG_DIR
from ftaudit.errors import ConfigError
from ftaudit.sweep.study import read_settings
from ftaudit.tasks.ner import NERTask


class LossTask(NERTask):
    """A task whose headline is a loss: lower is better."""

    headline = "loss"
    scores = {"loss": "min", "f1": "max", "f1_*": "max"}
    summary = ("loss", "f1")


def test_a_minimised_headline_is_minimised_by_sweeps():
    task = LossTask("TOKEN_CLS")
    assert task.better == "min"
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("sweep")
    assert read_settings(cfg.sweep, task).objectives == [("task/val_loss", "minimize")]
    assert read_settings(cfg.sweep, NERTask("TOKEN_CLS")).objectives == [("task/val_f1", "maximize")]


def test_a_headline_without_direction_is_refused():
    task = LossTask("TOKEN_CLS")
    task.scores = {"loss": None}
    with pytest.raises(ConfigError, match="headline loss declares no direction"):
        assert task.better


def test_summary_leads_with_the_tasks_scores_and_leaves_out_per_item_ones():
    task = LossTask("TOKEN_CLS")
    assert task.summary_keys() == ["task/test_loss", "task/test_f1", "task/val_loss"]
    assert task.is_detail("task/test_f1_PER") and not task.is_detail("task/test_f1")
    assert not task.is_detail("degradation/stsb/drop")
