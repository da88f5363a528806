"""User-facing errors: one line that says what is wrong and how to fix it."""

from __future__ import annotations

import errno
import functools
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

# Writing the record failed for a reason the user can fix: a read-only folder, a full disk, a file in the way.
FIXABLE_WRITE_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EEXIST}


class UserError(Exception):
    """Bad config, data or path. The message is shown as-is; no traceback."""


class ConfigError(UserError):
    pass


class DataError(UserError):
    pass


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped a run; the message says where its partial folder is. A ``KeyboardInterrupt``, so that
    code catching ``Exception`` (a sweep's failed trial) does not swallow it."""


def write_error(err: OSError, path) -> UserError:
    """A fixable ``OSError`` while writing ``path`` as one line."""
    return UserError(
        f"cannot write {path}: {err.strerror or err}; free disk space or choose a writable folder (hydra.run.dir=...)"
    )


def exit_on_user_error(fn: F) -> F:
    """Turn a ``UserError`` into one line on stderr and exit status 2, an interruption into one line and 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            logging.shutdown()
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(2)
        except KeyboardInterrupt as err:
            logging.shutdown()
            print(f"error: {err or 'interrupted (Ctrl-C)'}", file=sys.stderr, flush=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
