"""The search space (``sweep.space`` in YAML): any config key -> an Optuna distribution, sampled as overrides."""

from __future__ import annotations

import re
import shlex

from omegaconf import OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from ftaudit.errors import ConfigError

KINDS = {"float": FloatDistribution, "int": IntDistribution, "categorical": CategoricalDistribution}
PLAIN_VALUE = re.compile(r"[\w.:/-]+")  # needs no quoting in a Hydra override


def parse_space(node) -> dict[str, BaseDistribution]:
    """Leaves are mappings with a ``type``; the path to a leaf is the config key it sets (``optimizer.lr``).

    A group name (``model``) is a key too: its categorical choices are the group's options.
    """
    space, problems = {}, []

    def visit(value, path: str) -> None:
        if isinstance(value, dict) and "type" in value:
            spec = dict(value)
            kind = spec.pop("type")
            if kind not in KINDS:
                problems.append(f"sweep.space.{path}.type={kind!r} must be one of {', '.join(KINDS)}")
                return
            try:
                space[path] = KINDS[kind](**spec)
            except (TypeError, ValueError) as err:
                problems.append(f"sweep.space.{path}: {err}")
        elif isinstance(value, dict) and value:
            for key, child in value.items():
                visit(child, f"{path}.{key}" if path else str(key))
        else:
            problems.append(
                f"sweep.space.{path or '<root>'}={value!r} must be a mapping with a type "
                "(e.g. {type: float, low: 1e-6, high: 1e-3, log: true})"
            )

    visit(OmegaConf.to_container(node, resolve=True) if node is not None else None, "")
    if problems:
        raise ConfigError("; ".join(problems))
    return space


def sample(trial, space: dict[str, BaseDistribution]) -> dict[str, object]:
    """One value per key, drawn by the study's sampler."""
    params = {}
    for key, distribution in space.items():
        if isinstance(distribution, CategoricalDistribution):
            params[key] = trial.suggest_categorical(key, distribution.choices)
        else:
            suggest = trial.suggest_int if isinstance(distribution, IntDistribution) else trial.suggest_float
            params[key] = suggest(
                key, distribution.low, distribution.high, step=distribution.step, log=distribution.log
            )
    return params


def example_params(space: dict[str, BaseDistribution]) -> list[dict[str, object]]:
    """Values that reach every key and every categorical choice: composing them checks the space against the config."""
    first = {key: d.choices[0] if isinstance(d, CategoricalDistribution) else d.low for key, d in space.items()}
    variants = [
        {**first, key: choice}
        for key, d in space.items()
        if isinstance(d, CategoricalDistribution)
        for choice in d.choices[1:]
    ]
    return [first, *variants]


def format_value(value) -> str:
    """A value as Hydra's override grammar reads it back unchanged (``repr`` keeps every digit of a float)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    return text if PLAIN_VALUE.fullmatch(text) else "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def to_overrides(params: dict[str, object]) -> list[str]:
    return [f"{key}={format_value(value)}" for key, value in params.items()]


def train_command(overrides: list[str]) -> str:
    """The shell command that makes the same run on its own."""
    return " ".join(["python", "train.py", *(shlex.quote(override) for override in overrides)])
