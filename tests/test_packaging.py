"""The config tree lives at the top (``conf/``) and ships inside the package as ``ftaudit.conf``: the editable
install, a wheel built from the checkout and a wheel built from the sdist all compose every option of every group."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from ftaudit.config import CONFIG_DIR
from tests.wheels import REPO, build_sdist, build_wheel, copy_checkout, install

# Run by the installed package, away from the checkout: every option of every group, then the three entry configs.
COMPOSE_EVERY_OPTION = """
from importlib.resources import files
from hydra import compose, initialize_config_module
root = files("ftaudit.conf")
options = [(group.name, option.name.removesuffix(".yaml")) for group in root.iterdir()
           if group.is_dir() and group.name not in ("hydra", "sweep", "__pycache__")
           for option in group.iterdir() if option.name.endswith(".yaml")]
with initialize_config_module("ftaudit.conf", version_base="1.3"):
    for group, option in options:
        compose("train", overrides=[f"{group}={option}"])
    for name in ("train", "sweep", "audit"):
        compose(name)
print(root, len(options))
"""


def option_count() -> int:
    groups = [
        path for path in CONFIG_DIR.iterdir() if path.is_dir() and path.name not in ("hydra", "sweep", "__pycache__")
    ]
    return sum(len(list(group.glob("*.yaml"))) for group in groups)


def test_every_package_under_src_is_declared():
    declared = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(path.parent.relative_to(REPO / "src").parts) for path in (REPO / "src").rglob("__init__.py")}
    assert declared == found | {"ftaudit.conf"}


def test_the_editable_install_composes_the_top_level_tree(tmp_path):
    assert CONFIG_DIR == REPO / "conf"
    assert not (REPO / "src" / "ftaudit" / "conf").exists()
    composed = subprocess.run(
        [sys.executable, "-c", COMPOSE_EVERY_OPTION], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert int(composed.stdout.split()[-1]) == option_count() > 30


@pytest.mark.slow
@pytest.mark.parametrize("built_from", ["checkout", "sdist"])
def test_a_wheel_carries_every_config(built_from, tmp_path):
    source = copy_checkout(tmp_path / "source")
    if built_from == "sdist":
        source = build_sdist(source, tmp_path / "sdist")
        assert (source / "conf" / "train.yaml").is_file()
    wheel = build_wheel(source, tmp_path / "wheels")
    shipped = zipfile.ZipFile(wheel).namelist()
    assert "ftaudit/conf/experiment/quickstart.yaml" in shipped
    # The tiny decoder's tokenizer and chat template: model=tiny-llama needs no checkout.
    tiny = {f"ftaudit/models/tiny_llama/{name}" for name in ("config.json", "tokenizer.json", "chat_template.jinja")}
    assert tiny <= set(shipped)
    templates = {f"ftaudit/report/templates/{name}.html.j2" for name in ("base", "macros", "run", "collection")}
    assert templates <= set(shipped)  # report --format html from an installed wheel
    site = install(wheel, tmp_path / "site")
    composed = subprocess.run(
        [sys.executable, "-c", COMPOSE_EVERY_OPTION],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=True,
    )
    tree, count = composed.stdout.split()[-2:]
    assert Path(tree).is_relative_to(site)  # the wheel's copy, not the checkout's
    assert int(count) == option_count()
