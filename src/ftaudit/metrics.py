"""What each recorded number is: the data split it was measured on and which way is better.

Every producer of metrics (a task, a probe, a method, the resource meter) declares its keys here, as
``MetricSpec`` patterns, next to the code that computes them. The run record stores the declaration of every
key (``metrics_info.json``), sweeps refuse objectives measured on test data, and reports bold the better value;
nothing downstream guesses from a key's name.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property

from ftaudit.errors import UserError

SPLITS = ("train", "validation", "test")
# The run record's file of the test pass's reliability bins (``tasks.calibration.reliability_bins``, with its split):
# the numbers behind task/test_ece, which the HTML report draws as a reliability diagram.
RELIABILITY_FILE = "calibration.json"


@dataclass(frozen=True)
class MetricSpec:
    """Keys matching ``pattern`` (``*`` = one ``/``-separated segment or part of one) were measured on ``split``
    (None: on no data split, e.g. a parameter count or a weight distance) and are better when higher (``"max"``),
    lower (``"min"``) or neither (None, e.g. a count or a p-value)."""

    pattern: str
    split: str | None
    better: str | None

    def __post_init__(self):
        assert self.split in (None, *SPLITS), self.split
        assert self.better in (None, "max", "min"), self.better

    @cached_property
    def _regex(self) -> re.Pattern:
        return re.compile("^" + "[^/]*".join(re.escape(part) for part in self.pattern.split("*")) + "$")

    def matches(self, key: str) -> bool:
        return bool(self._regex.match(key))

    def under(self, prefix: str) -> MetricSpec:
        """The same declaration for the keys re-recorded under ``prefix`` (e.g. ``wise/*/``)."""
        return MetricSpec(prefix + self.pattern, self.split, self.better)

    def info(self) -> dict:
        higher = None if self.better is None else self.better == "max"
        return {"split": self.split, "higher_is_better": higher}


def spec_of(key: str, specs: list[MetricSpec]) -> MetricSpec | None:
    """The first declaration that covers ``key``."""
    return next((spec for spec in specs if spec.matches(key)), None)


def declarations(metrics: dict[str, float], specs: list[MetricSpec]) -> dict[str, dict]:
    """Each key's split and direction, for the run record. An undeclared key is a bug in its producer."""
    undeclared = [key for key in metrics if spec_of(key, specs) is None]
    if undeclared:
        raise RuntimeError(f"metrics without a declaration (split, direction): {undeclared}")
    return {key: spec_of(key, specs).info() for key in sorted(metrics)}


class NonFiniteMetric(UserError):
    """A metric that is NaN or infinite: never recorded."""


def check_finite(metrics: dict[str, float], what: str) -> None:
    bad = {key: value for key, value in metrics.items() if not math.isfinite(value)}
    if bad:
        raise NonFiniteMetric(f"{what} produced non-finite values {bad}; nothing was recorded")
