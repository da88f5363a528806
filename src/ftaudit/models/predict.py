"""Batched tagging of arbitrary sentences outside the Trainer (probes, interpolated models)."""

from __future__ import annotations

import torch

from ftaudit.data.conll import Sentence
from ftaudit.data.ner import Collator, encode, eval_batches
from ftaudit.models.ner import MODEL_INPUTS


@torch.inference_mode()
def predict_tags(model, tokenizer, sentences: list[Sentence], labels: list[str], batch_size: int = 128,
                 max_length: int | None = None) -> list[list[str]]:
    """One predicted tag per word for each sentence, by the same alignment and windowing as training.

    Gold tags must use ``labels``' names; they only shape the windows and are not read otherwise.
    """
    label2id = {label: i for i, label in enumerate(labels)}
    split = encode(tokenizer, sentences, label2id, max_length or tokenizer.model_max_length)
    collate = Collator(split, tokenizer.pad_token_id)
    device = next(model.parameters()).device
    example_index, per_example = [], []
    was_training = model.training
    model.eval()
    for indices in eval_batches(split.lengths, batch_size):
        batch = {key: value.to(device) for key, value in collate(indices).items()}
        logits = model(**{key: batch[key] for key in MODEL_INPUTS if key != "labels"}).logits
        is_word = batch["labels"] != -100
        for row, index in enumerate(indices):
            example_index.append(index)
            per_example.append([labels[i] for i in logits[row].argmax(-1)[is_word[row]].tolist()])
    model.train(was_training)
    return split.decode(example_index, per_example)
