"""WiSE-FT (Wortsman et al. 2022, "Robust fine-tuning of zero-shot models"): full fine-tuning, then a walk along the
straight line between the pretrained and the fine-tuned encoder.

At each mixing weight a the encoder is (1 - a) * base + a * fine-tuned and the classifier head is the fine-tuned
one; the task and the degradation probes are measured there and recorded as ``wise/<a>/...``, with a curve plot.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import torch

from ftaudit.errors import ConfigError
from ftaudit.files import atomic_save_figure
from ftaudit.methods.base import FineTuningMethod
from ftaudit.metrics import MetricSpec
from ftaudit.probes.base import ProbeContext, run_probes
from ftaudit.probes.degradation import build_degradation_probes
from ftaudit.progress import stage

PLOT_FILE = "wise.png"
SPLIT_KEYS = {"validation": "val", "test": "test"}


def interpolate(model: torch.nn.Module, base_state: dict[str, torch.Tensor], alpha: float) -> torch.nn.Module:
    """A copy of ``model`` whose encoder weights are lerp(base, fine-tuned, alpha); the head stays the fine-tuned one.

    ``torch.lerp`` is exact at both ends, so alpha=0 gives the base encoder and alpha=1 the fine-tuned one bit for bit.
    Integer buffers (position ids) are the same in both and are copied, not mixed.
    """
    encoder_prefix = f"{model.base_model_prefix}."
    mixed_state = {}
    for key, tuned in model.state_dict().items():
        if key.startswith(encoder_prefix) and tuned.is_floating_point():
            mixed_state[key] = torch.lerp(base_state[key].to(tuned.device, tuned.dtype), tuned, alpha)
        else:
            mixed_state[key] = tuned
    mixed = copy.deepcopy(model)
    mixed.load_state_dict(mixed_state)
    return mixed.eval()


def alpha_label(alpha: float) -> str:
    return f"{alpha:g}"


class WiSEFT(FineTuningMethod):
    def __init__(
        self,
        name: str = "wise",
        alphas: list[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
        splits: list[str] = ("validation", "test"),
    ):
        super().__init__(name)
        if not alphas or not all(0 <= a <= 1 for a in alphas):
            raise ConfigError(f"method.alphas={list(alphas)} must be a non-empty list of mixing weights in [0, 1]")
        unknown = set(splits) - SPLIT_KEYS.keys()
        if unknown:
            raise ConfigError(f"method.splits has {sorted(unknown)}; choose from {sorted(SPLIT_KEYS)}")
        self.alphas, self.splits = sorted(float(a) for a in alphas), list(splits)

    def metric_specs(self, run_specs: list[MetricSpec]) -> list[MetricSpec]:
        """Besides the method figures, every task score and degradation figure again at each mixing weight."""
        return [
            *super().metric_specs(run_specs),
            *(spec.under("wise/*/") for spec in run_specs),
            MetricSpec("wise/seconds", None, "min"),
        ]

    def evaluate(self, ctx: ProbeContext) -> dict[str, float]:
        with stage("WiSE-FT") as timed:
            probes = build_degradation_probes(ctx.cfg)
            metrics = {}
            for alpha in ctx.progress("WiSE-FT")(self.alphas):
                with stage(f"alpha {alpha_label(alpha)}"):
                    mixed = interpolate(ctx.model, ctx.base_state, alpha)
                    prefix = f"wise/{alpha_label(alpha)}/"
                    metrics.update({prefix + key: value for key, value in self.task_scores(mixed, ctx).items()})
                    probe_metrics, _ = run_probes(probes, dataclasses.replace(ctx, model=mixed))
                    metrics.update({prefix + key: value for key, value in probe_metrics.items()})
                    del mixed
        metrics["wise/seconds"] = timed.seconds
        plot_curve(self.alphas, metrics, ctx.run_dir / PLOT_FILE)
        return metrics

    def task_scores(self, model: torch.nn.Module, ctx: ProbeContext) -> dict[str, float]:
        """The task's headline score and its calibration on each split, as the test pass computes them."""
        module = ctx.task.module(model, ctx.cfg.optimizer, ctx.datamodule)
        scores = {}
        for split in self.splits:
            measured = module.evaluate(split, ctx.autocast)
            for score in (ctx.task.headline, "ece"):
                scores[f"task/{SPLIT_KEYS[split]}_{score}"] = measured[score]
        return scores


def plot_curve(alphas: list[float], metrics: dict[str, float], path: Path) -> None:
    """Task F1 and each degradation drop against the mixing weight, one panel each; written atomically."""
    from matplotlib.figure import Figure

    first = f"wise/{alpha_label(alphas[0])}/"
    panels = [key[len(first) :] for key in metrics if key.startswith(first + "task/")]
    panels += [key[len(first) :] for key in metrics if key.startswith(first + "degradation/") and key.endswith("/drop")]
    figure = Figure(figsize=(4.0 * len(panels), 3.4), layout="constrained")
    for axes, name in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        axes.plot(alphas, [metrics[f"wise/{alpha_label(a)}/{name}"] for a in alphas], marker="o")
        axes.set_xlabel("a  (encoder = (1-a)·base + a·fine-tuned)")
        axes.set_title(name, fontsize=10)
        axes.grid(alpha=0.3)
    atomic_save_figure(figure, path)
