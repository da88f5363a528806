"""Feedback on the long work outside Lightning's loops (probes, WiSE-FT, audits): a progress bar like Lightning's, and
one log line per stage with its duration. Bars go to stderr and vanish when done; logs stay one line per stage."""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from lightning.pytorch.callbacks import TQDMProgressBar
from tqdm import tqdm

log = logging.getLogger(__name__)
Item = TypeVar("Item")

# The stages a stage runs inside, so that a probe inside a WiSE-FT step is logged as "WiSE-FT alpha 0.5 / probe ...".
_enclosing: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("ftaudit_stages", default=())


def progress(iterable: Iterable[Item], description: str, enabled: bool) -> Iterable[Item]:
    """``iterable`` behind a progress bar titled ``description`` (Lightning's bar format), or as it is when not
    ``enabled`` (``trainer.progress_bar=false``)."""
    if not enabled:
        return iterable
    return tqdm(
        iterable,
        desc=description,
        leave=False,
        dynamic_ncols=True,
        file=sys.stderr,
        bar_format=TQDMProgressBar.BAR_FORMAT,
    )


class Stage:
    """A running stage: ``seconds`` is set when it ends; ``outcome`` (e.g. ``skipped: ...``) joins its log line."""

    def __init__(self):
        self.seconds, self.outcome = 0.0, None


@contextmanager
def stage(name: str) -> Iterator[Stage]:
    """Time the block and log ``<name>: <seconds> s`` when it ends; a block that raises logs nothing (its error says)."""
    path = (*_enclosing.get(), name)
    token = _enclosing.set(path)
    current, started = Stage(), time.perf_counter()
    try:
        yield current
    finally:
        _enclosing.reset(token)
    current.seconds = time.perf_counter() - started
    log.info("%s: %.1f s%s", " / ".join(path), current.seconds, f" ({current.outcome})" if current.outcome else "")
