"""Batched classification of arbitrary examples outside the Trainer (the fairness probe's counterfactual sentences)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import numpy as np
import torch

from ftaudit.tasks.classification.data import encode
from ftaudit.tasks.classification.reading import Example
from ftaudit.tasks.data import Collator, eval_batches


@torch.inference_mode()
def predict_probabilities(
    model,
    tokenizer,
    examples: list[Example],
    labels: list[str],
    batch_size: int,
    max_length: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    progress_bar: Callable[[Iterable], Iterable] = iter,
) -> np.ndarray:
    """Each example's label probabilities (rows in example order), tokenised and truncated as in training, under the
    run's ``autocast`` (what its test pass ran under), the batches behind ``progress_bar`` (``iter``: no bar). Gold
    labels must be among ``labels``; they are not read."""
    split = encode(tokenizer, examples, {label: i for i, label in enumerate(labels)}, max_length)
    collate = Collator(split, tokenizer.pad_token_id)
    device = next(model.parameters()).device
    probabilities = np.zeros((len(examples), len(labels)))
    was_training = model.training
    model.eval()
    for indices in progress_bar(eval_batches(split.lengths, batch_size)):
        batch = collate(indices)
        inputs = {key: value.to(device) for key, value in batch.items() if key not in ("labels", "example_index")}
        with autocast():
            logits = model(**inputs).logits
        probabilities[indices] = logits.float().softmax(-1).cpu().numpy()
    model.train(was_training)
    return probabilities
