"""Hardware settings, and data-parallel training (DDP) on CPU with two processes (gloo) on the tiny model."""

import json
import time
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch

import ftaudit.hardware as hardware
from ftaudit.errors import ConfigError
from ftaudit.run import train
from ftaudit.tasks.data import LengthGroupedBatchSampler
from tests.conftest import TINY_RUN, compose_config, run_script
from tests.probes.test_degradation import degradation_overrides

DDP_ON_CPU = ["hardware=ddp", "hardware.accelerator=cpu", "hardware.devices=2"]


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_cpu_processes_share_the_cores(monkeypatch, restore_threads):
    monkeypatch.setattr(hardware.os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    monkeypatch.setattr(hardware.os, "getloadavg", lambda: (0.5, 0.5, 0.5), raising=False)
    single = hardware.configure_hardware(compose_config("hardware=cpu"))
    assert single == {"accelerator": "cpu", "devices": 1, "precision": "32-true", "strategy": "auto"}
    assert torch.get_num_threads() == 4
    ddp = compose_config(*DDP_ON_CPU)
    assert hardware.configure_hardware(ddp)["strategy"] == "ddp"
    assert hardware.process_count(ddp.trainer) == 2 and torch.get_num_threads() == 2
    hardware.configure_hardware(compose_config("hardware=cpu", "hardware.num_threads=1"))
    assert torch.get_num_threads() == 1


def test_thread_count_does_not_depend_on_the_machine_load(monkeypatch, restore_threads):
    # The thread count changes float summation order: a busy machine must not change a seeded run's numbers.
    monkeypatch.setattr(hardware.os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    monkeypatch.setattr(hardware.os, "getloadavg", lambda: (4.2, 3.0, 2.0), raising=False)
    hardware.configure_hardware(compose_config("hardware=cpu"))
    assert torch.get_num_threads() == 4
    hardware.configure_hardware(compose_config("hardware=cpu", "hardware.num_threads=3"))
    assert torch.get_num_threads() == 3  # an explicit setting wins


@pytest.mark.parametrize(
    "flags, expected",
    [("fpu avx2 fma", False), ("avx2 avx512f avx512_bf16", True), ("avx512f amx_tile amx_bf16", True)],
)
def test_cpu_bf16_read_from_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n")
    assert hardware.cpu_has_native_bf16(cpuinfo) is expected
    assert hardware.cpu_has_native_bf16(tmp_path / "absent") is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto picks the GPU where one is visible")
def test_auto_precision_on_cpu_follows_its_bf16_support(monkeypatch, restore_threads):
    for native_bf16, precision in ((True, "bf16-mixed"), (False, "32-true")):
        monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda native_bf16=native_bf16: native_bf16)
        assert hardware.configure_hardware(compose_config("hardware=auto"))["precision"] == precision
    assert hardware.configure_hardware(compose_config("hardware=cpu"))["precision"] == "32-true"


class AutocastAfterTest(L.Callback):
    """Whether bf16 autocast is on in every forward pass of the model after the test pass: the probes' inferences."""

    def __init__(self):
        self.states: list[bool] = []

    def on_test_end(self, trainer, module):
        def record(*args):
            self.states.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)

        module.model.base_model.register_forward_pre_hook(record)  # the encoder the probes call; its copies keep it


@pytest.mark.slow
def test_bf16_autocast_run_on_cpu(tmp_path, restore_threads):
    """What hardware=auto picks on a CPU with bf16 units, run here on the tiny model (slow bf16 matmuls, tiny sizes):
    every inference after the test pass (probes, fairness tagging) runs under the test pass's autocast, and the base
    results are cached for this device and precision, apart from fp32 ones."""
    autocast = AutocastAfterTest()
    metrics = train(
        compose_config(
            *TINY_RUN,
            "trainer.max_epochs=1",
            "hardware=cpu",
            "hardware.precision=bf16-mixed",
            "hardware.peak_tflops=0.5",
            *degradation_overrides(tmp_path, "stsb", "cka"),
            "probes.fairness.enabled=false",
        ),
        tmp_path / "run",
        callbacks=[autocast],
    )
    assert 0 <= metrics["task/test_f1"] <= 1 and metrics["resource/mfu"] > 0
    assert json.loads((tmp_path / "run" / "env.json").read_text())["device"] == "cpu (bf16-mixed)"
    assert len(autocast.states) > 4 and all(autocast.states)
    keys = [json.loads(entry.read_text())["key"] for entry in (tmp_path / "cache").glob("stsb-*.json")]
    assert [(key["device"], key["precision"]) for key in keys] == [("cpu", "bf16-mixed")]


@pytest.mark.parametrize(
    "accelerator, precision",
    [("cpu", "32-true"), ("cpu", "bf16-mixed"), ("gpu", "bf16-mixed"), ("gpu", "32-true"), ("gpu", "16-mixed")],
)
def test_attention_choice_per_device_and_precision(accelerator, precision):
    # auto: sdpa wherever it was measured (docs/resources.md) and transformers' default where it was not (fp16)
    assert hardware.attention_implementation("auto", accelerator, precision) == "sdpa"
    for setting in ("sdpa", "eager"):  # an explicit setting wins
        assert hardware.attention_implementation(setting, accelerator, precision) == setting


def test_auto_attention_follows_the_table(monkeypatch):
    monkeypatch.setitem(hardware.ATTENTION_BY_DEVICE, ("cpu", torch.bfloat16), "eager")
    assert hardware.attention_implementation("auto", "cpu", "bf16-mixed") == "eager"
    assert hardware.attention_implementation("auto", "cpu", "32-true") == "sdpa"


def test_unknown_attention_is_a_config_error():
    with pytest.raises(ConfigError, match="hardware.attention='flash' must be one of auto, sdpa, eager"):
        hardware.attention_implementation("flash", "cpu", "32-true")


class AttentionSeen(L.Callback):
    def on_fit_start(self, trainer, module):
        self.implementation = module.model.config._attn_implementation


@pytest.mark.slow
def test_run_loads_the_model_with_the_chosen_attention_and_records_it(tmp_path, restore_threads):
    seen = AttentionSeen()  # eager: not transformers' default, so only the setting can have chosen it
    train(
        compose_config(
            *TINY_RUN,
            "trainer.max_epochs=1",
            "hardware=cpu",
            "hardware.attention=eager",
            "probes.degradation=[]",
            "probes.fairness.enabled=false",
        ),
        tmp_path,
        callbacks=[seen],
    )
    assert seen.implementation == "eager"
    assert json.loads((tmp_path / "env.json").read_text())["attention"] == "eager"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised where no GPU is visible")
def test_gpu_config_without_gpu_is_a_config_error():
    for option in ("gpu", "ddp", "fsdp"):
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            hardware.configure_hardware(compose_config(f"hardware={option}"))


def test_fsdp_on_cpu_is_a_config_error():
    with pytest.raises(ConfigError, match="fsdp runs on GPUs only"):
        hardware.configure_hardware(compose_config("hardware=fsdp", "hardware.accelerator=cpu"))


def test_precision_dtypes():
    assert hardware.precision_dtype("bf16-mixed") == torch.bfloat16
    assert hardware.precision_dtype("16-mixed") == torch.float16
    assert hardware.precision_dtype("32-true") == torch.float32


def test_compile_flag(monkeypatch):
    compiled = []
    model = torch.nn.Linear(2, 2)
    monkeypatch.setattr(model, "compile", lambda **kwargs: compiled.append(kwargs))
    hardware.compile_model(model, SimpleNamespace(compile=False))
    assert compiled == []
    hardware.compile_model(model, SimpleNamespace(compile=True))
    assert compiled == [{"dynamic": True}]


@pytest.mark.parametrize("examples", [100, 3])
def test_sampler_shards_batches_across_processes(examples):
    lengths = np.random.default_rng(0).integers(1, 40, size=examples)
    whole = list(LengthGroupedBatchSampler(lengths, 8, seed=1))
    shards = [list(LengthGroupedBatchSampler(lengths, 8, seed=1, num_replicas=3, rank=rank)) for rank in range(3)]
    assert all(
        len(shard) == len(LengthGroupedBatchSampler(lengths, 8, 1, num_replicas=3)) == len(shards[0])
        for shard in shards
    )
    interleaved = [batch for step in zip(*shards) for batch in step]
    assert interleaved[: len(whole)] == whole  # the same batches, dealt out in turn; the last few repeated to even out
    assert all(batch in whole for batch in interleaved)


@pytest.mark.slow
def test_multirun_with_ddp_is_refused(tmp_path):
    result = run_script("-m", *TINY_RUN, *DDP_ON_CPU, "seed=1,2", cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot run inside a multirun" in result.stderr


@pytest.mark.slow
def test_ddp_on_cpu_two_processes_one_run_directory(tmp_path):
    result = run_script(
        *TINY_RUN,
        *DDP_ON_CPU,
        "trainer.max_epochs=1",
        "probes.degradation=[weights]",
        "hardware.peak_tflops=0.5",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()  # the worker reused rank 0's directory
    assert [p.name for p in tmp_path.iterdir()] == ["outputs"]
    assert len(list(tmp_path.rglob("metrics.json"))) == 1 and len(list(tmp_path.rglob("config.yaml"))) == 2  # + .hydra/
    assert (run_dir / "train_ddp_process_1.log").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resource/devices"] == 2
    assert metrics["resource/train_samples"] == 80  # the fixture's 80 sentences, shared by 2 processes
    assert metrics["task/test_f1"] >= 0 and "degradation/weights/drop" in metrics
    assert result.stdout.count("run directory:") == 1


@pytest.mark.slow
def test_ddp_evaluation_records_what_one_process_records(tmp_path):
    """Each process evaluates every other batch and the outputs are gathered: with weights that do not move
    (lr 1e-30, so batch composition cannot matter), the 2-process record is the 1-process one, every test sentence
    predicted once and in order, both F1s on the whole splits."""
    frozen = [
        *TINY_RUN,
        "trainer.max_epochs=1",
        "optimizer.lr=1e-30",
        "probes.degradation=[weights]",
        "hardware.peak_tflops=0.5",
        "hardware.precision=32-true",  # hardware=cpu's; DDP's default (auto) trains in bf16 on a bf16-capable CPU
        "record.save_model=false",
    ]
    records = {}
    for name, processes in {"one": ["hardware=cpu"], "two": DDP_ON_CPU}.items():
        (tmp_path / name).mkdir()
        result = run_script(*frozen, *processes, cwd=tmp_path / name)
        assert result.returncode == 0, result.stderr[-3000:]
        (run_dir,) = (tmp_path / name / "outputs" / "runs").iterdir()
        records[name] = (
            json.loads((run_dir / "metrics.json").read_text()),
            (run_dir / "predictions" / "test.txt").read_text(),
        )
    (one, one_predictions), (two, two_predictions) = records["one"], records["two"]
    assert two_predictions == one_predictions
    assert set(two) == set(one)
    task_keys = [key for key in one if key.startswith("task/")]
    assert task_keys and {key: two[key] for key in task_keys} == {key: one[key] for key in task_keys}


def test_concurrent_workers_keep_every_cached_peak(tmp_path, monkeypatch):
    """Workers measuring different dtypes at once: each benchmark runs once, and no entry overwrites another's."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("FTAUDIT_CACHE_DIR", str(tmp_path))
    measured = []

    def slow_benchmark(dtype, device):
        measured.append(dtype)
        time.sleep(0.3)  # long enough for the others to read the file meanwhile
        return 1.0

    monkeypatch.setattr(hardware, "matmul_tflops", slow_benchmark)
    precisions = ["32-true", "bf16-mixed", "16-mixed"] * 2
    with ThreadPoolExecutor(len(precisions)) as pool:
        list(
            pool.map(
                lambda precision: hardware.peak_tflops(SimpleNamespace(peak_tflops=None), "cpu", precision), precisions
            )
        )
    assert sorted(map(str, measured)) == ["torch.bfloat16", "torch.float16", "torch.float32"]
    assert len(json.loads((tmp_path / "peak_tflops.json").read_text())) == 3
