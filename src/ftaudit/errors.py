"""User-facing errors: one line that says what is wrong and how to fix it."""

from __future__ import annotations

import functools
import logging
import sys
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


class UserError(Exception):
    """Bad config, data or path. The message is shown as-is; no traceback."""


class ConfigError(UserError):
    pass


class DataError(UserError):
    pass


def exit_on_user_error(fn: F) -> F:
    """Turn a ``UserError`` into one line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            logging.shutdown()
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
