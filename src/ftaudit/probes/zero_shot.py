"""Zero-shot benchmarks of a causal LM with lm-evaluation-harness's prompts and scoring, base vs fine-tuned.

ARC-Easy and PIQA are multiple choice: each choice is scored by its summed log-likelihood after the prompt (lm-eval's
``arc_easy``: ``"Question: {question}\\nAnswer:"``, ``piqa``: ``"Question: {goal}\\nAnswer:"``, each choice after a
space); ``acc`` takes the most likely choice, ``acc_norm`` the most likely per byte of the choice's text. LAMBADA is
lm-eval's ``lambada_openai``: the passage without its last word, then ``" " + last word``; ``acc`` is the share whose
last word greedy decoding produces, perplexity ``exp(-mean log-likelihood of the word)`` over the passages.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ftaudit.errors import DataError
from ftaudit.files import file_sha256
from ftaudit.metrics import MetricSpec
from ftaudit.probes.base import ProbeContext
from ftaudit.probes.fairness import seeded_sample
from ftaudit.probes.lm_degradation import (
    CausalLMProbe,
    check_probe_settings,
    paired_comparison,
    paired_comparison_specs,
    percent,
)
from ftaudit.probes.lm_scoring import Continuation, loglikelihoods

ANSWER_PROMPT = "Question: {}\nAnswer:"


@dataclass(frozen=True)
class ChoiceItem:
    context: str
    choices: list[str]
    gold: int  # index of the right choice


def read_json_lines(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as stream:
        for line_number, line in enumerate(stream, start=1):
            try:
                rows.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise DataError(
                    f"{path}:{line_number}: not a JSON line ({err}); expected one JSON object a line"
                ) from None
    return rows


def read_arc(path: Path) -> list[ChoiceItem]:
    """HF ``allenai/ai2_arc`` JSON: ``question``, ``choices.text``, ``choices.label`` and an ``answerKey`` among the
    labels (letters, or digits "1".."4" in a few questions, as released)."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not JSON ({err}); expected the ai2_arc list of questions") from None
    items = []
    for index, row in enumerate(rows):
        try:
            texts, labels = list(row["choices"]["text"]), list(row["choices"]["label"])
            items.append(ChoiceItem(ANSWER_PROMPT.format(row["question"]), texts, labels.index(row["answerKey"])))
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"{path}: question {index} (id {row.get('id') if isinstance(row, dict) else None}) lacks question, "
                "choices.text, choices.label or an answerKey among its labels"
            ) from None
        if len(texts) != len(labels) or len(texts) < 2:
            raise DataError(f"{path}: question {index} has {len(texts)} choice texts for {len(labels)} labels")
    return items


def piqa_labels_path(path: Path) -> Path:
    """``valid.jsonl`` -> ``valid-labels.lst`` beside it, as PIQA is released."""
    return path.with_name(f"{path.stem}-labels.lst")


def read_piqa(path: Path) -> list[ChoiceItem]:
    """PIQA's ``goal``, ``sol1``, ``sol2`` lines and the 0/1 labels, one a line in the same order, beside them."""
    rows, labels_path = read_json_lines(path), piqa_labels_path(path)
    labels = labels_path.read_text(encoding="utf-8").split()
    if len(labels) != len(rows) or not set(labels) <= {"0", "1"}:
        raise DataError(f"{labels_path}: needs one label 0 or 1 per line of {path} ({len(rows)}), has {len(labels)}")
    try:
        return [
            ChoiceItem(ANSWER_PROMPT.format(row["goal"]), [row["sol1"], row["sol2"]], int(label))
            for row, label in zip(rows, labels)
        ]
    except (KeyError, TypeError):
        raise DataError(f"{path}: every line needs goal, sol1 and sol2") from None


def read_lambada(path: Path) -> list[tuple[str, str]]:
    """``(passage without its last word, " " + last word)`` per ``{"text": ...}`` line (lm-eval's split on " ")."""
    requests = []
    for line_number, row in enumerate(read_json_lines(path), start=1):
        words = row.get("text", "").split(" ") if isinstance(row, dict) else []
        if len(words) < 2 or not words[-1]:
            raise DataError(f"{path}:{line_number}: expected {{'text': 'a passage of two or more words'}}")
        requests.append((" ".join(words[:-1]), " " + words[-1]))
    return requests


def choice_requests(items: list[ChoiceItem]) -> list[tuple[str, str]]:
    """Every item's ``(prompt, " " + choice)`` requests, item after item: lm-eval runs them all in one batched pass
    (with a few choices each, full batches beat running each prompt once as ``choice_loglikelihoods`` does)."""
    return [(item.context, " " + choice) for item in items for choice in item.choices]


def choice_correctness(items: list[ChoiceItem], scored: list[Continuation]) -> dict[str, torch.Tensor]:
    """Per item, whether the most likely choice (``acc``) and the most likely per byte of the choice's text
    (``acc_norm``) is the gold; ``scored`` answers ``choice_requests(items)``."""
    scored_choices = iter(scored)
    correct, correct_norm = [], []
    for item in items:
        logprobs = np.array([next(scored_choices).logprob for _ in item.choices])
        byte_lengths = np.array([max(1, len(choice.encode("utf-8"))) for choice in item.choices])
        correct.append(np.argmax(logprobs) == item.gold)
        correct_norm.append(np.argmax(logprobs / byte_lengths) == item.gold)
    return {
        "acc": torch.tensor(correct, dtype=torch.float64),
        "acc_norm": torch.tensor(correct_norm, dtype=torch.float64),
    }


class ZeroShotProbe(CausalLMProbe):
    """A benchmark scored on a seeded subset of ``sample_size`` items (null: all) with ``resamples`` paired bootstrap samples."""

    def __init__(self, settings, *args):
        super().__init__(settings, *args)
        check_probe_settings(self.base_name, settings, ("resamples",), optional=("sample_size", "max_length"))

    def sample(self, items: list) -> list:
        return seeded_sample(items, self.settings.sample_size, self.settings.seed)

    def counted(self, metrics: dict[str, float], items: int) -> dict[str, float]:
        return {**metrics, f"degradation/{self.name}/items": float(items)}

    def compared(self, name: str, base, finetuned, weights, **kwargs) -> dict[str, float]:
        return paired_comparison(
            name, base.numpy(), finetuned.numpy(), weights, self.settings.resamples, self.settings.seed, **kwargs
        )

    def benchmark_specs(self, secondary: str, secondary_higher_is_better: bool = True) -> list[MetricSpec]:
        """The headline comparison's keys, a ``<name>/<secondary>`` comparison's and the item count's."""
        return [
            *paired_comparison_specs(self.name, self.split),
            *paired_comparison_specs(f"{self.name}/{secondary}", self.split, secondary_higher_is_better),
            MetricSpec(f"degradation/{self.name}/items", None, None),
        ]

    def scored(self, ctx: ProbeContext, model, which: str, requests: list[tuple[str, str]]) -> list[Continuation]:
        """``loglikelihoods`` of ``requests`` under ``model`` with this probe's batch size and length limit."""
        progress_bar = ctx.progress(f"{self.name} {which}")
        return loglikelihoods(
            model, ctx.tokenizer, requests, self.batch_size, self.settings.max_length, ctx.autocast, progress_bar
        )


class MultipleChoiceProbe(ZeroShotProbe):
    @abstractmethod
    def read_items(self, path: Path) -> list[ChoiceItem]: ...

    def metric_specs(self) -> list[MetricSpec]:
        return self.benchmark_specs("acc_norm")

    def measure(self, ctx: ProbeContext) -> dict[str, float]:
        items = self.sample(self.read_items(self.data_file()))

        def score(model, which: str) -> dict[str, torch.Tensor]:
            return choice_correctness(items, self.scored(ctx, model, which, choice_requests(items)))

        base, finetuned = self.per_item_scores(ctx, score, extra=self.extra_identity())
        ones = np.ones(len(items))
        metrics = self.compared(self.name, base["acc"], finetuned["acc"], ones, transform=percent)
        metrics.update(
            self.compared(f"{self.name}/acc_norm", base["acc_norm"], finetuned["acc_norm"], ones, transform=percent)
        )
        return self.counted(metrics, len(items))

    def extra_identity(self) -> dict:
        return {}


class ArcEasyProbe(MultipleChoiceProbe):
    base_name = "arc_easy"
    description = (
        "ARC-Easy zero-shot accuracy (%) of the causal LM, lm-eval's arc_easy prompt and log-likelihood ranking "
        "(acc; acc_norm: per byte of the choice); drop = base - fine-tuned, paired bootstrap interval"
    )
    data = ("ARC-Easy", "ARC_EASY_DIR", "data/arc_easy")
    split_files = {"test": "test.json", "validation": "validation.json"}

    def read_items(self, path: Path) -> list[ChoiceItem]:
        return read_arc(path)


class PiqaProbe(MultipleChoiceProbe):
    base_name = "piqa"
    description = (
        "PIQA zero-shot accuracy (%) of the causal LM on its validation set (its test labels are not public), "
        "lm-eval's piqa prompt and log-likelihood ranking (acc; acc_norm: per byte); drop = base - fine-tuned"
    )
    data = ("PIQA", "PIQA_DIR", "data/piqa")
    split_files = {"validation": "valid.jsonl"}

    def __init__(self, settings, *args):
        super().__init__(settings, *args)
        if self.data_files and isinstance(self.data_files[0], Path):
            labels = piqa_labels_path(self.data_files[0])
            if not labels.is_file():
                raise DataError(f"PIQA labels {labels} not found beside {self.data_files[0]}")
            self.data_files.append(labels)

    def read_items(self, path: Path) -> list[ChoiceItem]:
        return read_piqa(path)

    def extra_identity(self) -> dict:
        return {"labels": file_sha256(piqa_labels_path(self.data_file()))}


class LambadaProbe(ZeroShotProbe):
    base_name = "lambada"
    description = (
        "LAMBADA (OpenAI's version, lm-eval's lambada_openai) last-word accuracy (%) of the causal LM under greedy "
        "decoding, and perplexity of the last word; drop = base - fine-tuned (perplexity: fine-tuned - base)"
    )
    data = ("LAMBADA", "LAMBADA_DIR", "data/lambada")
    split_files = {"test": "lambada_test.jsonl"}

    def metric_specs(self) -> list[MetricSpec]:
        return self.benchmark_specs("perplexity", secondary_higher_is_better=False)

    def measure(self, ctx: ProbeContext) -> dict[str, float]:
        requests = self.sample(read_lambada(self.data_file()))

        def score(model, which: str) -> dict[str, torch.Tensor]:
            scored = self.scored(ctx, model, which, requests)
            return {
                "acc": torch.tensor([continuation.greedy for continuation in scored], dtype=torch.float64),
                "nll": torch.tensor([-continuation.logprob for continuation in scored], dtype=torch.float64),
            }

        base, finetuned = self.per_item_scores(ctx, score)
        ones = np.ones(len(requests))
        metrics = self.compared(self.name, base["acc"], finetuned["acc"], ones, transform=percent)
        metrics.update(
            self.compared(
                f"{self.name}/perplexity", base["nll"], finetuned["nll"], ones, higher_is_better=False, transform=np.exp
            )
        )
        return self.counted(metrics, len(requests))
