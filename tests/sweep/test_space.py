"""The search space: YAML -> distributions, values -> overrides Hydra reads back unchanged."""

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from ftaudit.errors import ConfigError
from ftaudit.sweep.space import example_params, format_value, parse_space, to_overrides, train_command


def test_nested_keys_become_dotted_config_keys():
    space = parse_space(
        OmegaConf.create(
            {
                "optimizer": {"lr": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True}},
                "trainer": {"max_epochs": {"type": "int", "low": 1, "high": 5}},
                "model": {"type": "categorical", "choices": ["tiny", "minilm"]},
            }
        )
    )
    assert space == {
        "optimizer.lr": FloatDistribution(1e-6, 1e-3, log=True),
        "trainer.max_epochs": IntDistribution(1, 5),
        "model": CategoricalDistribution(["tiny", "minilm"]),
    }


@pytest.mark.parametrize(
    "spec, fragment",
    [
        (
            {"lr": {"type": "uniform", "low": 0, "high": 1}},
            "sweep.space.lr.type='uniform' must be one of float, int, categorical",
        ),
        ({"lr": {"type": "float", "low": 1.0, "high": 0.1}}, "sweep.space.lr:"),
        ({"lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "sweep.space.lr:"),
        ({"lr": {"type": "float", "low": 0.1}}, "sweep.space.lr:"),
        ({"lr": 0.1}, "sweep.space.lr=0.1 must be a mapping with a type"),
        ({}, "sweep.space.<root>={} must be a mapping with a type"),
    ],
)
def test_bad_space_is_one_config_error(spec, fragment):
    with pytest.raises(ConfigError) as caught:
        parse_space(OmegaConf.create(spec))
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("value", [1e-05, 0.000123456789, 3, True, None, "minilm", "bert-base", "a b", "it's"])
def test_values_round_trip_through_hydra_overrides(value):
    (override,) = to_overrides({"key": value})
    assert OverridesParser.create().parse_override(override).value() == value
    assert format_value(value) in override


def test_examples_reach_every_categorical_choice():
    space = {
        "optimizer.lr": FloatDistribution(1e-5, 1e-3, log=True),
        "model": CategoricalDistribution(["tiny", "minilm"]),
        "seed": CategoricalDistribution([1, 2, 3]),
    }
    examples = example_params(space)
    assert examples[0] == {"optimizer.lr": 1e-5, "model": "tiny", "seed": 1}
    assert {e["model"] for e in examples} == {"tiny", "minilm"} and {e["seed"] for e in examples} == {1, 2, 3}


def test_train_command_quotes_for_the_shell():
    assert train_command(["model=tiny", "data.dir=/my data"]) == "python train.py model=tiny 'data.dir=/my data'"
