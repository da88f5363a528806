"""Building ftaudit's wheel and sdist offline from a copy of the checkout, for the tests of what an install carries."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
# What the package is made of; setuptools writes build/ and egg-info/ where it builds, so it builds in a copy.
SOURCES = ("src", "conf", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in")


def copy_checkout(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, dest / name, ignore=ignore)
        else:
            shutil.copy(REPO / name, dest / name)
    return dest


def build_wheel(source: Path, out: Path) -> Path:
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("ftaudit-*.whl")
    return wheel


def build_sdist(source: Path, out: Path) -> Path:
    """The sdist, unpacked: what `pip install ftaudit-*.tar.gz` builds its wheel from."""
    name = subprocess.run(
        [sys.executable, "-c", f"from setuptools import build_meta; print(build_meta.build_sdist({str(out)!r}))"],
        cwd=source,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout.split()[-1]
    with tarfile.open(out / name) as archive:
        archive.extractall(out, filter="data")
    return out / name.removesuffix(".tar.gz")


def install(wheel: Path, site: Path) -> Path:
    subprocess.run(
        [*PIP, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True, timeout=300
    )
    return site
