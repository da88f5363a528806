"""Each method's hooks on the tiny model, without a Trainer: config, freezing, the L2-SP penalty, LoRA merging, WiSE-FT mixing."""

import pytest
import torch
from peft import PeftModel

from ftaudit.config import CONFIG_DIR
from ftaudit.errors import ConfigError
from ftaudit.methods import FineTuningMethod, build_method
from ftaudit.methods.wise import interpolate
from ftaudit.models.loading import load_classifier
from tests.conftest import TINY_RUN, compose_config

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
METHODS = sorted(path.stem for path in (CONFIG_DIR / "method").glob("*.yaml"))


@pytest.fixture(autouse=True)
def one_thread():
    """A tiny model gains nothing from more threads, and loses a lot when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(*overrides: str):
    """A fresh tiny token classifier, its snapshot, and the built method."""
    cfg = compose_config(*TINY_RUN, *overrides)
    torch.manual_seed(0)
    model = load_classifier(cfg.model, "AutoModelForTokenClassification", LABELS)
    return model, {k: v.detach().clone() for k, v in model.state_dict().items()}, build_method(cfg.method)


def inputs(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "input_ids": torch.randint(100, 1000, (3, 7), generator=generator),
        "attention_mask": torch.ones(3, 7, dtype=torch.long),
    }


def take_steps(model: torch.nn.Module, steps: int = 3) -> None:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for step in range(steps):
        model(**inputs(step), labels=torch.randint(0, len(LABELS), (3, 7))).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


def test_every_method_option_builds():
    assert {"full", "lora", "adalora", "ia3", "freeze", "l2sp", "wise"} <= set(METHODS)
    for name in METHODS:
        method = build_method(compose_config(*TINY_RUN, f"method={name}").method)
        assert isinstance(method, FineTuningMethod) and method.name == name


def test_default_method_is_full_and_adapters_bring_their_learning_rate():
    assert compose_config().method.name == "full"
    assert compose_config("method=lora").optimizer.lr > compose_config().optimizer.lr
    assert compose_config("method=lora", "optimizer.lr=2e-5").optimizer.lr == 2e-5  # the command line still wins


@pytest.mark.parametrize(
    "override, message",
    [
        ("method.alphas=[0.5,1.5]", "method.alphas"),
        ("method.alphas=[]", "method.alphas"),
        ("method.splits=[train]", "method.splits"),
    ],
)
def test_bad_wise_settings_are_one_line_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        build_method(compose_config("method=wise", override).method)


def test_bad_l2sp_and_freeze_settings_are_config_errors():
    with pytest.raises(ConfigError, match="method.alpha"):
        build_method(compose_config("method=l2sp", "method.alpha=-1").method)
    model, _, method = tiny("method=freeze", "method.layers=3")
    with pytest.raises(ConfigError, match="the model has 2 layers"):
        method.prepare(model, total_steps=10)


def test_peft_rejecting_the_adapter_is_a_config_error():
    model, _, method = tiny("method=lora", "method.adapter.target_modules=[no_such_module]")
    with pytest.raises(ConfigError, match="method=lora: peft rejected") as error:
        method.prepare(model, total_steps=10)
    assert "\n" not in str(error.value)


def test_full_trains_everything_and_saves_every_weight():
    model, _, method = tiny()
    assert method.prepare(model, total_steps=10) is model and method.callbacks() == [] and method.merged(model) is model
    metrics = method.metrics(model)
    assert metrics["method/trainable_fraction"] == 1.0
    assert metrics["method/trainable_params"] == sum(p.numel() for p in model.parameters())
    assert metrics["method/adapter_mb"] * 1e6 >= 4 * metrics["method/trainable_params"]  # fp32 tensors on disk


def test_freeze_leaves_embeddings_and_lowest_layers_untouched():
    model, base, method = tiny("method=freeze", "method.layers=1")
    take_steps(method.prepare(model, total_steps=3))
    for key, value in model.state_dict().items():
        frozen = key.startswith(("bert.embeddings.", "bert.encoder.layer.0."))
        assert torch.equal(value, base[key]) == frozen or "position_ids" in key, key


def test_l2sp_adds_the_penalty_gradient_to_the_task_gradient():
    model, base, method = tiny("method=l2sp", "method.alpha=0.3", "method.beta=2")
    method.prepare(model, total_steps=10)
    (gradient,) = method.callbacks()
    weight, head = model.bert.encoder.layer[1].output.dense.weight, model.classifier.weight
    with torch.no_grad():
        weight += 0.01 * torch.randn_like(weight)
    anchor = base["bert.encoder.layer.1.output.dense.weight"]
    penalty = 0.5 * 0.3 * ((weight - anchor) ** 2).sum() + 0.5 * 2 * (head**2).sum()
    expected_weight, expected_head = torch.autograd.grad(penalty, [weight, head])
    weight.grad = torch.ones_like(weight)  # the task gradient, kept
    gradient.add_gradient()
    assert torch.allclose(weight.grad, 1 + expected_weight, atol=1e-7)
    assert torch.allclose(head.grad, expected_head, atol=1e-7)  # had no gradient: the penalty still pulls it
    untouched = model.bert.encoder.layer[0].output.dense.weight.grad
    assert torch.equal(untouched, torch.zeros_like(untouched))  # no drift, no pull


def test_l2sp_without_beta_leaves_the_head_gradient_alone():
    model, _, method = tiny("method=l2sp")
    method.prepare(model, total_steps=10)
    (gradient,) = method.callbacks()
    model.classifier.weight.grad = torch.full_like(model.classifier.weight, 0.5)
    gradient.add_gradient()
    assert torch.equal(model.classifier.weight.grad, torch.full_like(model.classifier.weight, 0.5))


@pytest.mark.parametrize("name", ["lora", "adalora", "ia3"])
def test_adapter_trains_few_weights_and_merges_into_a_plain_classifier(name):
    model, base, method = tiny(f"method={name}")
    wrapped = method.prepare(model, total_steps=20)
    assert isinstance(wrapped, PeftModel)
    metrics = method.metrics(wrapped)
    assert 0 < metrics["method/trainable_fraction"] <= 0.02
    assert 0 < metrics["method/adapter_mb"] < 0.1
    take_steps(wrapped)
    merged = method.merged(wrapped)
    assert not isinstance(merged, PeftModel) and isinstance(wrapped, PeftModel)  # merged on a copy
    assert merged.state_dict().keys() == base.keys()
    with torch.no_grad():
        assert torch.allclose(merged(**inputs(9)).logits, wrapped(**inputs(9)).logits, atol=1e-5)
        # The trap: an adapter silently dropped would leave the encoder exactly the base one.
        assert not torch.equal(
            merged.bert.encoder.layer[0].attention.self.value.weight,
            base["bert.encoder.layer.0.attention.self.value.weight"],
        )
        assert not torch.equal(merged.classifier.weight, base["classifier.weight"])


def test_adalora_schedule_spans_the_run():
    model, _, method = tiny("method=adalora")
    wrapped = method.prepare(model, total_steps=37)
    assert wrapped.peft_config["default"].total_step == 37
    assert [type(c).__name__ for c in method.callbacks()] == ["RankBudget"]
    assert tiny("method=lora")[2].callbacks() == []


def test_wise_interpolation_is_exact_at_both_ends_and_keeps_the_head():
    model, base, _ = tiny("method=wise")
    take_steps(model)
    tuned = {k: v.clone() for k, v in model.state_dict().items()}
    at_zero, at_one, halfway = (interpolate(model, base, a).state_dict() for a in (0.0, 1.0, 0.5))
    for key in tuned:
        if key.startswith("bert."):
            assert torch.equal(at_zero[key], base[key]), key
            assert torch.equal(at_one[key], tuned[key]), key
            if tuned[key].is_floating_point():
                assert torch.allclose(halfway[key], (base[key] + tuned[key]) / 2, atol=1e-7), key
        else:
            assert all(torch.equal(state[key], tuned[key]) for state in (at_zero, at_one, halfway)), key
    assert not torch.equal(
        tuned["bert.encoder.layer.0.output.dense.weight"], base["bert.encoder.layer.0.output.dense.weight"]
    )
    assert all(torch.equal(value, tuned[key]) for key, value in model.state_dict().items())  # mixed on copies
