"""The prompts of the causal-LM counterfactual-names probe: the task's own evaluation texts, attributed to a person
(``fairness.templates``, e.g. "{name} said: {sentence}") and put in the run's prompt format, answered by ranking the
label strings; data without labels (free text) fall back to the probe's built-in yes/no prompts."""

from __future__ import annotations

from ftaudit.probes.base import ProbeContext
from ftaudit.probes.counterfactual_prompts import BUILTIN_PROMPTS, NAME_SLOT, PromptSet


def task_prompts(ctx: ProbeContext, split: str) -> PromptSet:
    data = ctx.datamodule
    if not data.labels:
        return BUILTIN_PROMPTS
    templates = list(ctx.cfg.probes.fairness.templates)
    examples = data.splits[split].examples
    prompts, responses = [], []
    for index, example in enumerate(examples):
        attributed = templates[index % len(templates)].format(name=NAME_SLOT, sentence=example.text)
        prompts.append(data.prompt_text(attributed, example.text_pair))
        responses.append(data.label_responses[data.labels.index(example.label)])
    return PromptSet(prompts, list(data.label_responses), responses)
