"""The base-result cache: hits, keys, tensors, damaged entries, parallel workers, and the probes using it."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest
import torch

from ftaudit.files import cache_directory
from ftaudit.probes.base import run_probes
from ftaudit.probes.cache import BaseResultCache, tokenizer_sha256, weights_sha256
from ftaudit.probes.degradation import build_degradation_probes
from tests.conftest import compose_config
from tests.probes.test_degradation import degradation_overrides, tiny_context

KEY = {"probe": "stsb", "model": {"encoder_weights": "abc"}, "settings": {"split": "test"}}


def counted(calls: list, value: float = 1.0):
    def compute():
        calls.append(1)
        return {"spearman": value}

    return compute


def test_second_call_reads_the_cache_and_a_different_key_recomputes(tmp_path):
    cache, calls = BaseResultCache(tmp_path), []
    assert cache.get_or_compute("stsb", KEY, counted(calls, 81.5)) == {"spearman": 81.5}
    assert BaseResultCache(tmp_path).get_or_compute("stsb", KEY, counted(calls, 0.0)) == {"spearman": 81.5}
    assert len(calls) == 1
    other = {**KEY, "settings": {"split": "dev"}}
    assert cache.get_or_compute("stsb", other, counted(calls, 70.0)) == {"spearman": 70.0}
    assert len(calls) == 2
    [entry] = [path for path in tmp_path.glob("stsb-*.json") if json.loads(path.read_text())["key"] == KEY]
    assert json.loads(entry.read_text())["result"] == {"spearman": 81.5}


def test_tensor_entries_round_trip_exactly(tmp_path):
    states = {"embeddings": torch.randn(5, 3), "layer_1": torch.randn(5, 3)}
    cache = BaseResultCache(tmp_path)
    cache.get_or_compute("cka", KEY, lambda: states, tensors=True)
    read = cache.get_or_compute("cka", KEY, lambda: {}, tensors=True)
    assert list(read) == ["embeddings", "layer_1"]
    assert all(torch.equal(read[name], states[name]) for name in states)


def test_a_damaged_entry_is_recomputed_and_replaced(tmp_path):
    cache, calls = BaseResultCache(tmp_path), []
    cache.get_or_compute("stsb", KEY, counted(calls))
    [entry] = tmp_path.glob("stsb-*.json")
    entry.write_text("{not json")
    assert cache.get_or_compute("stsb", KEY, counted(calls, 2.0)) == {"spearman": 2.0}
    assert len(calls) == 2 and json.loads(entry.read_text())["result"] == {"spearman": 2.0}


def _worker(directory: str, start, index: int) -> None:
    def compute():
        with open(Path(directory) / "calls.txt", "a") as stream:
            stream.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # long enough for the other workers to arrive while the entry is being computed
        return {"spearman": 42.0}

    start.wait()
    result = BaseResultCache(Path(directory) / "cache").get_or_compute("stsb", KEY, compute)
    (Path(directory) / f"result_{index}.json").write_text(json.dumps(result))


def test_parallel_workers_compute_the_base_once_and_all_read_it(tmp_path):
    context = multiprocessing.get_context("fork")
    start = context.Event()
    workers = [context.Process(target=_worker, args=(str(tmp_path), start, index)) for index in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert len((tmp_path / "calls.txt").read_text().split()) == 1
    assert {(tmp_path / f"result_{index}.json").read_text() for index in range(4)} == {'{"spearman": 42.0}'}
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_cache_directory_config_then_env_then_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FTAUDIT_CACHE_DIR", str(tmp_path / "env"))
    assert cache_directory(str(tmp_path / "cfg")) == tmp_path / "cfg"
    assert cache_directory(None) == tmp_path / "env"
    monkeypatch.delenv("FTAUDIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_directory(None) == tmp_path / "xdg" / "ftaudit"


def test_weights_hash_is_the_actual_draw_of_the_weights():
    torch.manual_seed(0)
    state = {
        "bert.w": torch.randn(3, 3),
        "bert.b": torch.zeros(3, dtype=torch.bfloat16),
        "classifier.w": torch.randn(2),
    }
    same = {name: value.clone() for name, value in state.items()}
    assert weights_sha256(state, "bert.") == weights_sha256(same, "bert.")
    same["classifier.w"] += 1  # outside the prefix: not part of the encoder's identity
    assert weights_sha256(state, "bert.") == weights_sha256(same, "bert.")
    same["bert.w"][0, 0] += 1e-6
    assert weights_sha256(state, "bert.") != weights_sha256(same, "bert.")


def test_probes_measure_the_base_once_then_read_it(tmp_path):
    cfg = compose_config("model=tiny", *degradation_overrides(tmp_path, "stsb", "cka"))
    context = tiny_context(cfg, tmp_path)
    first, _ = run_probes(build_degradation_probes(cfg), context)

    def no_base_model():
        raise AssertionError("the base model was rebuilt although its results are cached")

    context.base_model = no_base_model
    second, _ = run_probes(build_degradation_probes(cfg), context)
    assert {k: v for k, v in second.items() if not k.startswith("resource/")} == {
        k: v for k, v in first.items() if not k.startswith("resource/")
    }
    other_draw = tiny_context(cfg, tmp_path, seed=1)  # a different random init is a different base model
    other_draw.base_model = no_base_model
    with pytest.raises(AssertionError, match="rebuilt"):
        run_probes(build_degradation_probes(cfg), other_draw)


def test_tokenizer_hash_ignores_the_truncation_state_calls_leave_behind():
    from ftaudit.models.loading import load_tokenizer

    tokenizer = load_tokenizer(compose_config("model=tiny").model)
    before = tokenizer_sha256(tokenizer)
    tokenizer(["a sentence"], truncation=True, max_length=7)
    assert tokenizer_sha256(tokenizer) == before
