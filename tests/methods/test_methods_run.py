"""Each method through the real run (``ftaudit.run.train``) on the tiny model: what it records and what the probes see."""

import functools
import re

import lightning as L
import pytest
import torch
from peft import PeftModel

import ftaudit.progress
import ftaudit.run
from ftaudit.run import train
from tests.conftest import TINY_RUN, compose_config

ALPHAS = ("0", "0.25", "0.5", "0.75", "1")


class Spy(L.Callback):
    """Keeps the LightningModule and the weights it started training from."""

    def on_fit_start(self, trainer, module) -> None:
        self.module = module
        self.start_state = {key: value.detach().clone() for key, value in module.model.state_dict().items()}


class Run:
    def __init__(self, method: str, *overrides: str, run_dir):
        self.spy, self.probe_contexts, self.stage_lines = Spy(), [], []
        real_run_probes = ftaudit.run.run_probes

        def capture(probes, ctx):
            self.probe_contexts.append(ctx)
            return real_run_probes(probes, ctx)

        # One thread: a tiny model gains nothing from two, and loses a lot when other processes share the cores.
        cfg = compose_config(
            *TINY_RUN,
            "trainer.max_epochs=1",
            "hardware.num_threads=1",
            "probes.degradation=[weights]",
            f"method={method}",
            *overrides,
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ftaudit.run, "run_probes", capture)
            patch.setattr(ftaudit.progress.log, "info", lambda message, *args: self.stage_lines.append(message % args))
            self.metrics = train(cfg, run_dir, callbacks=[self.spy])
        self.run_dir = run_dir
        (self.ctx,) = self.probe_contexts  # the run's own probe pass (WiSE-FT's are not routed through run.py)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``run(method, *overrides)``: one tiny run per distinct request, shared by this module's tests."""

    @functools.cache
    def cached(method: str, *overrides: str) -> Run:
        return Run(method, *overrides, run_dir=tmp_path_factory.mktemp(method))

    return cached


FREEZE_ONE = ("freeze", "method.layers=1")  # of the tiny model's 2 layers


@pytest.mark.parametrize(
    "method, adapter",
    [
        (("full",), False),
        (("lora",), True),
        (("adalora",), True),
        (("ia3",), True),
        (FREEZE_ONE, False),
        (("l2sp",), False),
        (("wise",), False),
    ],
    ids=lambda value: value[0] if isinstance(value, tuple) else None,
)
def test_run_records_the_method_figures(run, method, adapter):
    metrics = run(*method).metrics
    assert all(isinstance(value, float) for value in metrics.values())
    fraction = metrics["method/trainable_fraction"]
    assert metrics["method/trainable_params"] > 0 and metrics["method/adapter_mb"] > 0
    if adapter:
        assert fraction <= 0.02 and metrics["method/adapter_mb"] < 0.1
    else:
        assert fraction == 1.0 or method == FREEZE_ONE and fraction < 1.0


@pytest.mark.parametrize("method", ["lora", "adalora", "ia3"])
def test_probes_see_the_adapted_encoder_as_a_plain_classifier(run, method):
    result = run(method)
    trained, probed = result.spy.module.model, result.ctx.model
    assert isinstance(trained, PeftModel) and not isinstance(probed, PeftModel)
    assert probed.state_dict().keys() == result.ctx.base_state.keys()
    batch = {"input_ids": torch.randint(100, 1000, (2, 9)), "attention_mask": torch.ones(2, 9, dtype=torch.long)}
    with torch.no_grad():
        assert torch.allclose(probed(**batch).logits, trained.eval()(**batch).logits, atol=1e-5)
        assert not torch.allclose(
            probed.bert(**batch).last_hidden_state, result.ctx.base_model().bert(**batch).last_hidden_state
        )
    assert result.metrics["degradation/weights/drop"] > 0  # the weights probe sees the adapters' change


def test_adalora_reallocates_ranks_during_the_run(run):
    module = run("adalora").spy.module
    config = module.model.peft_config["default"]
    assert config.total_step == module.trainer.estimated_stepping_batches > 1
    assert config.rank_pattern  # set by update_and_allocate at the budget's final step


def test_frozen_layers_do_not_change_in_a_run(run):
    result = run(*FREEZE_ONE)
    after = result.spy.module.model.state_dict()
    for key, before in result.spy.start_state.items():
        frozen = key.startswith(("bert.embeddings.", "bert.encoder.layer.0."))
        assert torch.equal(after[key], before) == frozen or "position_ids" in key, key
    assert result.metrics["degradation/weights/embeddings"] == 0 and result.metrics["degradation/weights/layer_1"] == 0
    assert result.metrics["degradation/weights/layer_2"] > 0


def test_l2sp_keeps_the_encoder_nearer_its_pretrained_weights(run):
    penalised = run("l2sp", "method.alpha=1000").metrics["degradation/weights/drop"]
    assert 0 < penalised < 0.5 * run("full").metrics["degradation/weights/drop"]


def test_wise_records_the_curve_from_the_base_to_the_fine_tuned_encoder(run):
    result = run("wise")
    metrics = result.metrics
    for alpha in ALPHAS:
        assert {
            f"wise/{alpha}/task/test_f1",
            f"wise/{alpha}/task/val_f1",
            f"wise/{alpha}/degradation/weights/drop",
        } <= metrics.keys()
    assert metrics["wise/0/degradation/weights/drop"] == 0.0  # the base encoder, exactly
    assert metrics["wise/1/degradation/weights/drop"] == metrics["degradation/weights/drop"]
    assert metrics["wise/0.5/degradation/weights/drop"] == pytest.approx(
        0.5 * metrics["degradation/weights/drop"], rel=1e-4
    )
    assert metrics["wise/1/task/test_f1"] == pytest.approx(metrics["task/test_f1"])  # same weights, same predictions
    assert (result.run_dir / "wise.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    timed = [re.sub(r": \d+\.\d s$", "", line) for line in result.stage_lines if line.startswith("WiSE-FT")]
    assert timed == [
        line
        for alpha in ALPHAS
        for line in (f"WiSE-FT / alpha {alpha} / probe degradation/weights", f"WiSE-FT / alpha {alpha}")
    ] + ["WiSE-FT"]
    assert not list(result.run_dir.rglob("*.tmp"))
