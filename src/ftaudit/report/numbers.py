"""A recorded number as the HTML report shows it: the exact value, its split and direction as the run declared
them (``metrics_info.json``), and its interval where the record holds one (``<key>_ci_low``, ``<key>_ci_high``)."""

from __future__ import annotations

from dataclasses import dataclass

from ftaudit.report.records import RunRecord

CI_ENDS = ("_ci_low", "_ci_high")


@dataclass(frozen=True)
class Number:
    key: str
    value: float
    split: str | None  # as declared; None: measured on no data split (a count, a time)
    higher_is_better: bool | None
    declared: bool  # False for runs recorded before metrics declared themselves: split and direction unknown
    low: float | None = None  # the 95% interval, where recorded
    high: float | None = None

    @property
    def text(self) -> str:
        return format_number(self.value)

    @property
    def exact(self) -> str:
        """The value as metrics.json holds it (the shortest text that reads back as the same float)."""
        return repr(self.value)

    @property
    def direction(self) -> str:
        if not self.declared:
            return "undeclared"
        return {True: "↑ higher is better", False: "↓ lower is better", None: "no better side"}[self.higher_is_better]

    @property
    def split_text(self) -> str:
        if not self.declared:
            return "undeclared"
        return self.split or "no split"


def format_number(value: float) -> str:
    """Four significant digits, trailing zeros kept (0.8600); whole numbers in full with thousands separators."""
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    return f"{value:#.4g}"


def is_interval_end(key: str, metrics: dict[str, float]) -> bool:
    """``key`` is one end of another recorded key's interval (shown with that key, not on its own)."""
    return any(key.endswith(end) and key.removesuffix(end) in metrics for end in CI_ENDS)


def number(run: RunRecord, key: str) -> Number:
    info = run.declared.get(key)
    low, high = (run.metrics.get(key + end) for end in CI_ENDS)
    return Number(
        key,
        run.metrics[key],
        info.get("split") if info else None,
        info.get("higher_is_better") if info else None,
        info is not None,
        low if high is not None else None,
        high if low is not None else None,
    )


def numbers(run: RunRecord, keys) -> list[Number]:
    """The recorded ones of ``keys``, in order, intervals folded into the key they bound."""
    return [number(run, key) for key in keys if key in run.metrics and not is_interval_end(key, run.metrics)]
