"""Batched tagging of arbitrary sentences outside the Trainer (the fairness probe's counterfactual sentences)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import torch

from ftaudit.tasks.data import Collator, eval_batches
from ftaudit.tasks.ner.conll import Sentence
from ftaudit.tasks.ner.data import IGNORE_INDEX, encode


@torch.inference_mode()
def predict_tags(
    model,
    tokenizer,
    sentences: list[Sentence],
    labels: list[str],
    batch_size: int,
    max_length: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    progress_bar: Callable[[Iterable], Iterable] = iter,
) -> list[list[str]]:
    """One predicted tag per word for each sentence, by the same alignment and windowing as training, under the
    run's ``autocast`` (what its test pass ran under); the batches behind ``progress_bar`` (``iter``: no bar).

    Gold tags must use ``labels``' names; they only shape the windows and are not read otherwise.
    """
    label2id = {label: i for i, label in enumerate(labels)}
    split = encode(tokenizer, sentences, label2id, max_length)
    collate = Collator(split, tokenizer.pad_token_id)
    device = next(model.parameters()).device
    example_index, per_example = [], []
    was_training = model.training
    model.eval()
    for indices in progress_bar(eval_batches(split.lengths, batch_size)):
        batch = {key: value.to(device) for key, value in collate(indices).items()}
        with autocast():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        is_word = batch["labels"] != IGNORE_INDEX
        for row, index in enumerate(indices):
            example_index.append(index)
            per_example.append([labels[i] for i in logits[row].argmax(-1)[is_word[row]].tolist()])
    model.train(was_training)
    return split.decode(example_index, per_example)
