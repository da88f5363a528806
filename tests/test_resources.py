"""The resource record: every ``resource/`` key of a tiny run, the stage clock, and the peak-speed cache."""

import json
from types import SimpleNamespace

import pytest
import torch

import ftaudit.hardware as hardware
from ftaudit.models.loading import load_tokenizer
from ftaudit.resources import meter as meter_module
from ftaudit.resources.meter import ResourceMeter, parameter_counts, training_flops
from ftaudit.run import train
from ftaudit.tasks.ner.data import NERDataModule
from tests.conftest import TINY_RUN, compose_config

PEAK = 0.5  # TFLOP/s, configured so the test does not depend on this machine's speed
STAGES = ("setup", "train", "validation", "test", "probes")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    cfg = compose_config(*TINY_RUN, "probes.degradation=[weights]", f"hardware.peak_tflops={PEAK}")
    run_dir = tmp_path_factory.mktemp("run")
    metrics = train(cfg, run_dir)
    datamodule = NERDataModule(cfg.data, load_tokenizer(cfg.model), cfg.seed)
    datamodule.setup()
    return cfg, metrics, run_dir, datamodule


@pytest.mark.slow
def test_every_resource_key_is_recorded(tiny_run):
    _, metrics, run_dir, _ = tiny_run
    expected = {f"resource/{stage}_seconds" for stage in STAGES} | {
        "resource/total_seconds",
        "resource/train_tokens",
        "resource/train_padded_tokens",
        "resource/train_samples",
        "resource/train_tokens_per_second",
        "resource/train_samples_per_second",
        "resource/padding_overhead",
        "resource/peak_rss_mb",
        "resource/devices",
        "resource/cpu_threads",
        "resource/load_average_at_start",
        "resource/params_total",
        "resource/params_trainable",
        "resource/params_non_embedding",
        "resource/train_flops_estimate",
        "resource/peak_tflops",
        "resource/mfu",
        "resource/energy_kwh",
        "resource/co2_kg",
        "resource/energy_is_estimate",
    }
    assert expected <= metrics.keys()
    assert json.loads((run_dir / "metrics.json").read_text()).keys() >= expected
    assert "resource/gpu_peak_allocated_mb" not in metrics  # CPU run
    assert all(metrics[f"resource/{stage}_seconds"] > 0 for stage in STAGES)
    assert metrics["resource/total_seconds"] >= sum(metrics[f"resource/{stage}_seconds"] for stage in STAGES)
    assert metrics["resource/peak_rss_mb"] > 100
    assert metrics["resource/energy_kwh"] > 0 and metrics["resource/co2_kg"] > 0
    assert metrics["resource/energy_is_estimate"] in (0.0, 1.0)
    method = json.loads((run_dir / "env.json").read_text())["resources"]
    assert method["energy_method"].startswith("codecarbon") and "CPU" in method["energy_method"]
    assert method["peak_tflops_source"] == "hardware.peak_tflops"


@pytest.mark.slow
def test_counts_match_the_data_and_the_model(tiny_run):
    cfg, metrics, _, datamodule = tiny_run
    epochs = cfg.trainer.max_epochs
    train_split = datamodule.splits["train"]
    assert metrics["resource/train_tokens"] == epochs * datamodule.train_token_count
    assert metrics["resource/train_samples"] == epochs * len(train_split.input_ids)
    assert metrics["resource/padding_overhead"] == pytest.approx(
        metrics["resource/train_padded_tokens"] / metrics["resource/train_tokens"]
    )
    assert 1.0 <= metrics["resource/padding_overhead"] < 1.5  # length-grouped batches pad little
    assert metrics["resource/train_tokens_per_second"] == pytest.approx(
        metrics["resource/train_tokens"] / metrics["resource/train_seconds"]
    )
    assert metrics["resource/params_trainable"] == metrics["resource/params_total"]
    assert 0 < metrics["resource/params_non_embedding"] < metrics["resource/params_total"]
    flops = 6 * metrics["resource/params_non_embedding"] * metrics["resource/train_tokens"]
    assert metrics["resource/train_flops_estimate"] == pytest.approx(flops)
    assert metrics["resource/mfu"] == pytest.approx(flops / metrics["resource/train_seconds"] / (PEAK * 1e12))


def test_parameter_counts_leave_out_embeddings_and_frozen_weights():
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 3))
    model[1].bias.requires_grad_(False)
    assert parameter_counts(model) == {
        "resource/params_total": 55.0,
        "resource/params_non_embedding": 15.0,
        "resource/params_trainable": 52.0,
    }
    assert training_flops(15, 100) == 9000


def test_train_time_leaves_out_validation_and_checkpoint_saving(monkeypatch):
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(meter_module.time, "perf_counter", lambda: clock.now)
    meter = ResourceMeter(track_energy=False)
    trainer = SimpleNamespace(strategy=SimpleNamespace(reduce=lambda tensor, reduce_op: tensor))
    module = SimpleNamespace(device=torch.device("cpu"))
    batch = {"input_ids": torch.zeros(2, 5), "attention_mask": torch.tensor([[1] * 5, [1] * 3 + [0] * 2])}

    def after(seconds, hook, *args):
        clock.now += seconds
        getattr(meter, hook)(trainer, module, *args)

    after(0, "on_train_start")
    after(0, "on_train_batch_start", batch, 0)
    after(10, "on_validation_start")
    after(3, "on_validation_end")
    after(2, "on_train_batch_start", batch, 1)  # the 2 s in between: checkpoint saving, not training
    after(5, "on_train_end")
    after(1, "on_test_start")
    after(4, "on_test_end")
    metrics = meter.metrics()
    assert (
        metrics["resource/train_seconds"],
        metrics["resource/validation_seconds"],
        metrics["resource/test_seconds"],
    ) == (15, 3, 4)
    assert (
        metrics["resource/train_tokens"],
        metrics["resource/train_padded_tokens"],
        metrics["resource/train_samples"],
    ) == (16, 20, 4)
    assert "resource/energy_kwh" not in metrics and meter.energy_method.startswith("not tracked")


def test_measured_peak_is_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("FTAUDIT_CACHE_DIR", str(tmp_path))
    calls = []
    monkeypatch.setattr(hardware, "matmul_tflops", lambda dtype, device: calls.append(dtype) or 1.25)
    cfg = SimpleNamespace(peak_tflops=None)
    first, source = hardware.peak_tflops(cfg, "cpu", "32-true")
    second, _ = hardware.peak_tflops(cfg, "cpu", "32-true")
    assert first == second == 1.25 and calls == [torch.float32]
    assert "matmul benchmark" in source and (tmp_path / "peak_tflops.json").is_file()
    assert hardware.peak_tflops(SimpleNamespace(peak_tflops=7.0), "cpu", "32-true") == (7.0, "hardware.peak_tflops")


def test_matmul_benchmark_measures_something():
    assert 0 < hardware.matmul_tflops(torch.float32, budget_seconds=0.05) < 1000


def test_a_resumed_run_adds_what_it_used_before_its_checkpoint(monkeypatch):
    clock = SimpleNamespace(now=100.0)
    monkeypatch.setattr(meter_module.time, "perf_counter", lambda: clock.now)
    trainer = SimpleNamespace(strategy=SimpleNamespace(reduce=lambda tensor, reduce_op: tensor))
    module = SimpleNamespace(device=torch.device("cpu"))
    batch = {"input_ids": torch.zeros(2, 5), "attention_mask": torch.tensor([[1] * 5, [1] * 3 + [0] * 2])}
    original = ResourceMeter(track_energy=False)
    original.on_train_start(trainer, module)
    original.on_train_batch_start(trainer, module, batch, 0)
    clock.now += 10
    original.on_validation_start(trainer, module)
    clock.now += 2
    original.on_validation_end(trainer, module)
    state = original.state_dict()  # the end of the first epoch; then the process is killed

    clock.now += 50  # lost with the kill, and the resumed process starting
    resumed = ResourceMeter(track_energy=False)
    resumed.load_state_dict(state)
    resumed.on_train_start(trainer, module)
    resumed.on_train_batch_start(trainer, module, batch, 0)
    clock.now += 10
    resumed.on_train_end(trainer, module)
    metrics = resumed.metrics()
    assert (metrics["resource/train_seconds"], metrics["resource/validation_seconds"]) == (20, 2)
    assert (metrics["resource/train_tokens"], metrics["resource/train_samples"]) == (16, 4)
    assert metrics["resource/total_seconds"] == 22  # the original's 12 s, then the resumed 10 s


def test_a_run_that_did_not_train_records_no_training_figures():
    meter = ResourceMeter(track_energy=False)
    module = torch.nn.Linear(2, 2)
    meter.setup(
        SimpleNamespace(world_size=1, strategy=SimpleNamespace(root_device=torch.device("cpu"))), module, "test"
    )
    metrics = meter.metrics()
    assert not any(key.startswith("resource/train_") for key in metrics) and "resource/mfu" not in metrics
    assert metrics["resource/params_total"] == 6 and "resource/test_seconds" in metrics
