"""Causal-LM data: prompt -> response examples tokenised for supervised fine-tuning on the response.

Each example is its prompt (rendered with the tokenizer's chat template where there is one: a user turn, or the
conversation so far, and the generation prompt; else the plain text and ``task.prompting.separator``) followed by its
response and EOS. The loss is taken on the response and EOS only: prompt tokens are labelled -100
(``task.prompting.train_on_prompt`` trains on them too). An example longer than ``data.max_length`` loses prompt
tokens from the left, never response tokens; one whose response alone does not fit is an error. Training batches are
right-padded and length-grouped (``SplitDataModule``); scoring and generation left-pad the prompts themselves.

Labelled data keep their labels: each label's response (``candidates``: its tokens with EOS) is what the label ranking
scores, and the test split is also scored as classification. Sources, by ``data.format``: ``jsonl``, ``chat_jsonl``
(one file per split; without a validation file, ``data.validation_fraction`` of train is carved out, seeded), and the
labelled formats of task=classification (``phrasebank``, ``text_csv``), read as that task reads them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch

from ftaudit.errors import ConfigError, DataError
from ftaudit.tasks.causal_lm.reading import (
    PromptExample,
    instruction_examples,
    label_responses,
    read_chat_jsonl,
    read_prompt_jsonl,
)
from ftaudit.tasks.classification.data import PhraseBankDataModule, TextFilesDataModule
from ftaudit.tasks.classification.reading import label_keys, label_order
from ftaudit.tasks.data import SPLIT_NAMES, SplitDataModule, carve, data_file, subset

LABELLED_SOURCES = {"phrasebank": PhraseBankDataModule, "text_csv": TextFilesDataModule}
IGNORE = -100


@dataclass
class EncodedPrompts:
    """A split's examples as model inputs: ``input_ids`` (prompt, response, EOS), ``labels`` (-100 on the prompt),
    ``prompts`` (the prompt's ids, what the model answers), ``answers`` (the label's index; None for free text)."""

    examples: list[PromptExample]
    input_ids: list[torch.Tensor] = field(default_factory=list)
    labels: list[torch.Tensor] = field(default_factory=list)
    prompts: list[list[int]] = field(default_factory=list)
    answers: list[int | None] = field(default_factory=list)
    truncated: int = 0
    extra_inputs: dict = field(default_factory=dict)
    label_pad = IGNORE

    @property
    def responses(self) -> list[str]:
        return [example.response for example in self.examples]

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(ids) for ids in self.input_ids])


class CausalLMDataModule(SplitDataModule):
    """``prompting``: the task's ``chat_template`` (auto | true | false), ``system_prompt``, ``train_on_prompt`` and
    ``separator``. ``labels``, ``label_keys``, ``label_responses`` and ``candidates`` are empty for free text."""

    def __init__(self, cfg, tokenizer, seed: int, pad_to_multiple_of: int = 1, *, prompting):
        super().__init__(cfg, tokenizer, seed, pad_to_multiple_of)
        self.prompting = prompting
        self.label_keys: list[str] = []
        self.label_responses: list[str] = []
        self.candidates: list[list[int]] = []
        self.chat = uses_chat_template(tokenizer, prompting.chat_template)

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        if self.tokenizer.pad_token is None:  # e.g. GPT-2's: padding is masked, so EOS may stand for it
            self.tokenizer.pad_token = self.tokenizer.eos_token
        raw, origin = self.read_splits()
        limits = {"train": self.cfg.max_train_samples} | dict.fromkeys(
            ("validation", "test"), self.cfg.max_eval_samples
        )
        raw = {split: subset(raw[split], limits[split], self.cfg.get("subset_seed")) for split in SPLIT_NAMES}
        self.splits = {split: self.encode(examples) for split, examples in raw.items()}
        self.data_info = self.describe(origin)
        self.warn_truncated(f"prompts longer than {self.max_length} tokens with their response lost tokens on the left")

    def read_splits(self) -> tuple[dict[str, list[PromptExample]], dict]:
        """Each split's examples and how the splits were made; sets ``data_files`` and, for labelled data, the
        labels and their responses and candidate tokens."""
        fmt = self.cfg.format
        if fmt in LABELLED_SOURCES:
            return self.read_labelled(LABELLED_SOURCES[fmt](self.cfg, self.tokenizer, self.seed))
        if fmt == "chat_jsonl" and not self.chat:
            raise ConfigError(
                f"data={self.cfg.name} holds conversations, but {self.tokenizer.name_or_path} has no chat template "
                "to render them (task.prompting.chat_template is false or the tokenizer has none); pick a model "
                "with one"
            )
        given = {split: name for split, name in self.cfg.files.items() if name}
        if set(given) not in ({*SPLIT_NAMES}, {"train", "test"}):
            raise ConfigError(
                f"data.files must name exactly {', '.join(SPLIT_NAMES)}, or train and test (validation is then "
                f"carved out of train), got {', '.join(given)}"
            )
        paths = {split: data_file(self.cfg, name, f"data.files.{split}") for split, name in given.items()}
        self.data_files = list(paths.values())
        if fmt == "chat_jsonl":
            splits = {split: read_chat_jsonl(path, self.cfg.messages_field) for split, path in paths.items()}
        else:
            fields = self.cfg.prompt_field, self.cfg.response_field
            splits = {split: read_prompt_jsonl(path, *fields) for split, path in paths.items()}
        origin = {"source": {split: str(path) for split, path in paths.items()}, "split": "one file per split"}
        if "validation" not in splits:
            fraction, seed = self.cfg.validation_fraction, self.cfg.split_seed
            splits["train"], splits["validation"] = carve(splits["train"], fraction, seed, str(paths["train"]), False)
            origin["split"] = {"validation": "carved out of train", "split_seed": seed, "validation_fraction": fraction}
        return splits, origin

    def read_labelled(self, source) -> tuple[dict[str, list[PromptExample]], dict]:
        """A labelled data set read as task=classification reads it, each example turned into an instruction."""
        raw, origin = source.read_splits()
        self.data_files = source.data_files
        self.labels = label_order(e.label for split in raw.values() for e in split)
        keys = label_keys(self.labels)
        self.label_keys = [keys[label] for label in self.labels]
        self.label_responses = label_responses(self.labels, self.cfg.prompt.label_template)
        eos = self.tokenizer.eos_token_id
        self.candidates = [self.response_ids(response) + [eos] for response in self.label_responses]
        responses = dict(zip(self.labels, self.label_responses))
        source_name = str(self.data_files[0]) if len(self.data_files) == 1 else self.cfg.name
        return {
            split: instruction_examples(examples, self.cfg.prompt.instruction, responses, source_name)
            for split, examples in raw.items()
        }, origin

    def prompt_text(self, text: str, text_pair: str | None = None) -> str:
        """The rendered prompt of a labelled text (the fairness probe's variants), as the model sees it."""
        return self.rendered(self.cfg.prompt.instruction.format(text=text, text_pair=text_pair or ""))

    def rendered(self, prompt: str | tuple[dict, ...]) -> str:
        """The prompt as text: through the chat template (with the generation prompt), else plain + separator."""
        if not self.chat:
            return prompt + self.prompting.separator
        turns = list(prompt) if isinstance(prompt, tuple) else [{"role": "user", "content": prompt}]
        if self.prompting.system_prompt and turns[0]["role"] != "system":
            turns.insert(0, {"role": "system", "content": self.prompting.system_prompt})
        return self.tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)

    def response_ids(self, response: str) -> list[int]:
        return self.tokenizer(response, add_special_tokens=False)["input_ids"]

    def encode(self, examples: list[PromptExample]) -> EncodedPrompts:
        encoded, eos = EncodedPrompts(examples), self.tokenizer.eos_token_id
        # A chat template writes its own special tokens; a plain prompt gets the tokenizer's (e.g. BOS)
        prompts = self.tokenizer([self.rendered(e.prompt) for e in examples], add_special_tokens=not self.chat)
        responses = self.tokenizer([e.response for e in examples], add_special_tokens=False)
        for example, prompt, response in zip(examples, prompts["input_ids"], responses["input_ids"], strict=True):
            response = response + [eos]
            room = self.max_length - len(response)
            if room < 1:
                raise DataError(
                    f"{example.where}: the response alone is {len(response)} tokens (with EOS), no room for its "
                    f"prompt within data.max_length={self.max_length}; raise data.max_length or shorten it"
                )
            if len(prompt) > room:
                prompt, encoded.truncated = prompt[-room:], encoded.truncated + 1
            labels = prompt + response if self.prompting.train_on_prompt else [IGNORE] * len(prompt) + response
            encoded.input_ids.append(torch.tensor(prompt + response))
            encoded.labels.append(torch.tensor(labels))
            encoded.prompts.append(prompt)
            encoded.answers.append(self.labels.index(example.label) if example.label is not None else None)
        return encoded

    def describe(self, origin: dict) -> dict:
        """What env.json records of the data: its labels, how it was prompted and split, and per split its size,
        label counts, token counts and truncated examples."""
        info = {
            **({"labels": self.labels, "label_responses": self.label_responses} if self.labels else {}),
            **origin,
            "max_length": self.max_length,
            "chat_template": self.chat,
            "system_prompt": self.prompting.system_prompt,
            "train_on_prompt": self.prompting.train_on_prompt,
            "pad_token": self.tokenizer.pad_token,
        }
        info["splits"] = {
            split: {
                "examples": len(encoded.examples),
                **({"labels": dict(sorted(Counter(e.label for e in encoded.examples).items()))} if self.labels else {}),
                "prompt_tokens": int(sum(len(p) for p in encoded.prompts)),
                "response_tokens": int(sum(len(ids) - len(p) for ids, p in zip(encoded.input_ids, encoded.prompts))),
                "truncated": encoded.truncated,
            }
            for split, encoded in self.splits.items()
        }
        return info


def uses_chat_template(tokenizer, setting) -> bool:
    """Whether prompts go through the chat template: ``auto`` where the tokenizer has one; ``true`` requires one."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if setting == "auto":
        return has_template
    if setting is True and not has_template:
        raise ConfigError(
            f"task.prompting.chat_template=true, but {tokenizer.name_or_path} has no chat template; set it to auto "
            "or false (plain prompts), or pick a model with one"
        )
    if setting not in (True, False):
        raise ConfigError(f"task.prompting.chat_template={setting!r} must be auto, true or false")
    return bool(setting)
