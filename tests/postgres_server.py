"""A throwaway PostgreSQL server on loopback, for the multi-worker sweep tests and benchmarks/sweep_overhead.py.

It runs Debian's PostgreSQL binaries (package ``postgresql``, installed by ``.ci/run``). PostgreSQL refuses to run as
root, and this project's machines and CI run as root: then the server runs as the ``postgres`` user (``runuser``),
which pytest-postgresql cannot do (its issue #455).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


class PostgresUnavailable(Exception):
    """Why no server could be started here."""


def server_binaries() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda path: int(Path(path).parts[-3]))
    if not versions:
        raise PostgresUnavailable("no pg_ctl on PATH or in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    return Path(versions[-1]).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Starts an empty server in a temporary folder and yields its SQLAlchemy URL; stops it and removes the folder."""
    try:
        import psycopg  # noqa: F401  (SQLAlchemy 2.1's driver for postgresql:// URLs)
    except ImportError as err:
        raise PostgresUnavailable("psycopg is not installed (pip install -e '.[dev]')") from err
    binaries = server_binaries()
    as_owner: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="ftaudit-postgres-"))  # not under pytest's root-only tmp folders
    try:
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError as err:
                raise PostgresUnavailable("running as root, and there is no postgres user to run the server") from err
            if not shutil.which("runuser"):
                raise PostgresUnavailable("running as root, and there is no runuser to run the server as postgres")
            os.chown(folder, owner.pw_uid, owner.pw_gid)
            as_owner = ["runuser", "-u", "postgres", "--"]
        data, port = folder / "data", free_port()

        def pg(*args: str) -> None:
            done = subprocess.run([*as_owner, *args], capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise PostgresUnavailable(f"{Path(args[0]).name} failed: {(done.stderr or done.stdout).strip()[-500:]}")

        pg(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200"
        pg(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "start")
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            pg(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
