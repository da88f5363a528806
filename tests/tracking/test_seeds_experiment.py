"""``experiment=seeds``: one multirun over three seeds, crossed with any command-line sweep."""

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ftaudit.config import CONFIG_DIR


def test_seeds_experiment_sweeps_three_seeds():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=seeds"], return_hydra_config=True)
    assert cfg.hydra.sweeper.params == {"seed": "1,2,3"}
    assert cfg.hydra.runtime.choices.experiment == "seeds"
