"""Shared test fixtures: the tiny shipped CoNLL fixture, config composition, and real-data lookup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# The tests never reach the hub (its code paths read local folders in the hub's layout): offline mode, set before
# huggingface_hub and datasets read it, spares a machine without a network their retries; subprocess runs inherit it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402

from ftaudit.config import CONFIG_DIR  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURE_CONLL = REPO / "tests" / "fixtures" / "conll_tiny"
TINY_RUN = [
    "model=tiny",
    f"data.dir={FIXTURE_CONLL}",
    "trainer.max_epochs=3",
    "trainer.progress_bar=false",
    "data.batch_size=4",
]
# A tiny run on a slice of the fixture that a sweep or grid multirun repeats many times (each run a second or two).
TINY_SUBSET_RUN = [
    "model=tiny",
    f"data.dir={FIXTURE_CONLL}",
    "data.max_train_samples=24",
    "data.max_eval_samples=12",
    "data.batch_size=8",
    "trainer.progress_bar=false",
    "probes.degradation=[]",
    "logger=csv",
]
FIXTURE_PHRASEBANK = REPO / "tests" / "fixtures" / "phrasebank_tiny"  # 90 'sentence@label' lines, Latin-1, CRLF
FIXTURE_TEXT_CSV = REPO / "tests" / "fixtures" / "text_csv_tiny"
# The text_csv fixture read as sentence pairs with their ids: which column is which.
TEXT_CSV_PAIRS = [
    "data=text_csv",
    f"data.dir={FIXTURE_TEXT_CSV}",
    "data.text_column=sentence",
    "data.text_pair_column=source",
    "data.label_column=sentiment",
    "data.id_column=doc",
]
# A sentence label comes from one [CLS] vector: the tiny model learns it only from larger initial weights and a
# few more epochs (its default 0.02 init left positive and negative apart after 3 epochs in 1 of 4 seeds).
TINY_CLASSIFICATION_RUN = [
    "task=classification",
    "model=tiny",
    "+model.random_init.initializer_range=0.2",
    f"data.dir={FIXTURE_PHRASEBANK}",
    "trainer.max_epochs=5",
    "trainer.progress_bar=false",
    "data.batch_size=4",
    "hardware.num_threads=1",
]


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` skip where no CUDA device is visible."""
    import torch

    if torch.cuda.is_available():
        return
    no_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(no_gpu)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Base-model probe results and the matmul peak are cached on disk: keep the tests' out of the user's cache."""
    previous = os.environ.get("FTAUDIT_CACHE_DIR")
    os.environ["FTAUDIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("ftaudit-cache"))
    yield
    if previous is None:
        del os.environ["FTAUDIT_CACHE_DIR"]
    else:
        os.environ["FTAUDIT_CACHE_DIR"] = previous


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """`datasets`' cache of what it loads (hub copies, here local folders in the hub's layout), private to the test."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")
    return tmp_path / "hf-datasets"


@pytest.fixture(scope="session", autouse=True)
def every_metrics_file_is_strict_json(tmp_path_factory):
    """After the whole suite: each metrics.json any test wrote parses as strict JSON (no NaN or Infinity literals)."""
    yield

    def refuse(constant: str):
        raise ValueError(f"non-standard JSON constant {constant}")

    for path in tmp_path_factory.getbasetemp().rglob("metrics.json"):
        json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def compose_config(*overrides: str, config_name: str = "train"):
    """Compose a config in-process, as the entry point would (no Hydra run dir, so the logger is off)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name, overrides=["logger=none", *overrides])


def run_script(*args: str, cwd: Path, env: dict | None = None, script: str = "train.py") -> subprocess.CompletedProcess:
    """Run a top-level script of the repo as a user would, from ``cwd``."""
    return subprocess.run(
        [sys.executable, str(REPO / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


@pytest.fixture
def real_phrasebank_dir() -> Path:
    directory = Path(os.environ.get("PHRASEBANK_DIR") or REPO.parent / "shared" / "data" / "financial_phrasebank")
    if not (directory / "Sentences_50Agree.txt").is_file():
        pytest.skip("Financial PhraseBank not available: set PHRASEBANK_DIR to a folder with Sentences_50Agree.txt")
    return directory


@pytest.fixture
def real_conll_dir() -> Path:
    directory = os.environ.get("CONLL2003_DIR")
    if not directory or not (Path(directory) / "train.txt").is_file():
        pytest.skip("real CoNLL-2003 not available: set CONLL2003_DIR to a folder with train.txt/valid.txt/test.txt")
    return Path(directory)
