"""Scoring text under a causal LM: lm-evaluation-harness-style log-likelihoods and sliding-window perplexity.

``loglikelihoods`` follows lm-eval's ``TemplateLM.loglikelihood`` and ``HFLM._loglikelihood_tokens``: context and
continuation are encoded together without special tokens and split where the context's own encoding ends (trailing
spaces of the context move onto the continuation); an empty context becomes the prefix token (BOS, else EOS); a
too-long input loses tokens on the left; batches are right-padded, longest first. Only the positions that predict a
continuation token are projected onto the vocabulary (``logits_to_keep``), and only those rows get a log-softmax.

``window_nlls`` is the strided sliding window of the Hugging Face perplexity guide (``max_length`` context, ``stride``,
targets before the window's new tokens ignored), with exact per-token counts.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ftaudit.errors import ConfigError, DataError

DEFAULT_MAX_LENGTH = 2048  # lm-eval's HFLM fallback when the config names no maximum
# From this many choices a shared context is run once for them all (measured on SmolLM2-135M, 2 CPU cores: with 2
# choices batching all pairs was faster; with a label set of dozens, running each prompt once is).
SHARED_CONTEXT_MIN_CHOICES = 8
Autocast = Callable[[], contextlib.AbstractContextManager]


@dataclass(frozen=True)
class Continuation:
    """A continuation's summed log-probability given its context, and whether greedy decoding would produce it."""

    logprob: float
    greedy: bool
    tokens: int


def encode(tokenizer, text: str) -> list[int]:
    """Token ids without special tokens, as lm-eval's HFLM encodes for a causal LM."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def prefix_token_id(tokenizer) -> int:
    """What stands for an empty context (lm-eval's ``HFLM.prefix_token_id``): BOS, else EOS."""
    token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if token is None:
        raise ConfigError("the tokenizer has neither a BOS nor an EOS token to stand for an empty context")
    return token


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """``(context ids, continuation ids)`` the lm-eval way: ``encode(context + continuation)`` split after
    ``len(encode(context))`` tokens, the context's trailing whitespace moved onto the continuation."""
    stripped = context.rstrip()
    if not stripped:
        return [prefix_token_id(tokenizer)], encode(tokenizer, context + continuation)
    continuation = context[len(stripped) :] + continuation
    whole, context_ids = encode(tokenizer, stripped + continuation), encode(tokenizer, stripped)
    return context_ids, whole[len(context_ids) :]


def model_max_length(model) -> int:
    """The longest input the model takes (its config's position limit), as lm-eval's HFLM reads it."""
    for attribute in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(model.config, attribute, None)
        if value:
            return int(value)
    return DEFAULT_MAX_LENGTH


def _right_padded(rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input ids, attention mask)``; the pad id is 0: the mask, not the id, says what is padding."""
    input_ids = torch.zeros(len(rows), max(len(row) for row in rows), dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention_mask[i, : len(row)] = 1
    return input_ids, attention_mask


def _picked(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's log-probability of its target (fp32) and whether the target is the row's argmax."""
    logits = logits.float()
    logprobs = logits.gather(1, targets[:, None]).squeeze(1) - logits.logsumexp(-1)
    return logprobs, logits.argmax(-1) == targets


@torch.inference_mode()
def scored_tokens(
    model, rows: Sequence[Sequence[int]], starts: Sequence[int], autocast: Autocast = contextlib.nullcontext
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per row, the log-probabilities of its tokens ``row[start:]`` (``start >= 1``) each given the tokens before it,
    and whether each is the greedy choice; one right-padded forward pass over ``row[:-1]``."""
    device = next(model.parameters()).device
    input_ids, attention_mask = _right_padded([row[:-1] for row in rows])
    keep = torch.zeros_like(input_ids, dtype=torch.bool)  # the positions whose next token is scored
    for i, (row, start) in enumerate(zip(rows, starts)):
        keep[i, start - 1 : len(row) - 1] = True
    targets = torch.tensor([token for row, start in zip(rows, starts) for token in row[start:]], device=device)
    with autocast():
        logits = model(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            logits_to_keep=keep.to(device),
            use_cache=False,
        ).logits
    logprobs, greedy = _picked(logits, targets)
    counts = [len(row) - start for row, start in zip(rows, starts)]
    return list(zip(logprobs.cpu().split(counts), greedy.cpu().split(counts)))


def _continuation(logprobs: torch.Tensor, greedy: torch.Tensor) -> Continuation:
    return Continuation(float(logprobs.double().sum()), bool(greedy.all()), len(logprobs))


def token_loglikelihoods(
    model,
    pairs: Sequence[tuple[list[int], list[int]]],
    batch_size: int,
    max_length: int | None = None,
    autocast: Autocast = contextlib.nullcontext,
    progress_bar: Callable[[Iterable], Iterable] = iter,
) -> list[Continuation]:
    """``Continuation`` of each encoded ``(context, continuation)``, in order; inputs longer than ``max_length`` (the
    model's limit by default) lose context tokens on the left; batches longest first, behind ``progress_bar``."""
    limit = max_length or model_max_length(model)
    too_long = [i for i, (_, continuation) in enumerate(pairs) if not 0 < len(continuation) <= limit]
    if too_long:
        raise DataError(f"requests {too_long[:5]}: a continuation must have 1 to {limit} tokens")
    rows = [(context + continuation)[-(limit + 1) :] for context, continuation in pairs]
    starts = [len(row) - len(continuation) for row, (_, continuation) in zip(rows, pairs)]
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    results: list[Continuation | None] = [None] * len(rows)
    for begin in progress_bar(range(0, len(order), batch_size)):
        batch = order[begin : begin + batch_size]
        scored = scored_tokens(model, [rows[i] for i in batch], [starts[i] for i in batch], autocast)
        for i, (logprobs, greedy) in zip(batch, scored):
            results[i] = _continuation(logprobs, greedy)
    return results


def loglikelihoods(
    model,
    tokenizer,
    requests: Sequence[tuple[str, str]],
    batch_size: int,
    max_length: int | None = None,
    autocast: Autocast = contextlib.nullcontext,
    progress_bar: Callable[[Iterable], Iterable] = iter,
) -> list[Continuation]:
    """lm-eval's ``loglikelihood`` of each ``(context, continuation)`` text pair (``encode_pair``)."""
    pairs = [encode_pair(tokenizer, context, continuation) for context, continuation in requests]
    return token_loglikelihoods(model, pairs, batch_size, max_length, autocast, progress_bar)


def _cache_keyword(model) -> str:
    """The forward argument that takes a KV cache: ``cache`` in recent transformers, ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.inference_mode()
def choice_loglikelihoods(
    model,
    tokenizer,
    context: str,
    choices: Sequence[str],
    batch_size: int,
    max_length: int | None = None,
    autocast: Autocast = contextlib.nullcontext,
) -> list[Continuation]:
    """``loglikelihoods`` of each choice after one shared context, the context run once: its KV cache is repeated for
    each batch of choices. Equal to ``loglikelihoods`` whenever nothing is truncated (the context's ids do not depend
    on the choice); a too-long context loses tokens on the left until the longest choice fits."""
    pairs = [encode_pair(tokenizer, context, choice) for choice in choices]
    continuations = [continuation for _, continuation in pairs]
    limit = max_length or model_max_length(model)
    longest = max(len(continuation) for continuation in continuations)
    if not 0 < min(len(continuation) for continuation in continuations) or longest > limit:
        raise DataError(f"choices after {context[-40:]!r}: each must have 1 to {limit} tokens")
    device, cache_keyword = next(model.parameters()).device, _cache_keyword(model)
    context_ids = torch.tensor([pairs[0][0][-(limit + 1 - longest) :]], device=device)
    with autocast():
        prompt = model(input_ids=context_ids, use_cache=True, logits_to_keep=1)
    first_logits, context_cache = prompt.logits[0, -1:], getattr(prompt, cache_keyword)
    results = []
    for begin in range(0, len(continuations), batch_size):
        batch = continuations[begin : begin + batch_size]
        cache = copy.deepcopy(context_cache)
        cache.batch_repeat_interleave(len(batch))
        input_ids, attention_mask = _right_padded(batch)
        keep = attention_mask.bool().clone()
        keep[torch.arange(len(batch)), attention_mask.sum(1) - 1] = False  # a choice's last token predicts nothing
        attention_mask = torch.cat([torch.ones(len(batch), context_ids.shape[1], dtype=torch.long), attention_mask], 1)
        with autocast():
            logits = model(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                use_cache=True,
                logits_to_keep=keep.to(device),
                **{cache_keyword: cache},
            ).logits
        counts = [len(continuation) - 1 for continuation in batch]
        for continuation, rest in zip(batch, logits.split(counts)):
            targets = torch.tensor(continuation, device=device)
            results.append(_continuation(*_picked(torch.cat([first_logits, rest]), targets)))
    return results


def choice_logprob_matrix(
    model,
    tokenizer,
    contexts: Sequence[str],
    choices: Sequence[str],
    batch_size: int,
    max_length: int | None = None,
    autocast: Autocast = contextlib.nullcontext,
    progress_bar: Callable[[Iterable], Iterable] = iter,
) -> np.ndarray:
    """Contexts x choices summed log-likelihoods of the same ``choices`` after every context. With many choices (a
    label set) each context runs once (``choice_loglikelihoods``); with few, all pairs share full batches
    (``loglikelihoods``), which is faster then. Both give lm-eval's numbers."""
    if len(choices) >= SHARED_CONTEXT_MIN_CHOICES:
        rows = [
            choice_loglikelihoods(model, tokenizer, c, choices, batch_size, max_length, autocast)
            for c in progress_bar(contexts)
        ]
    else:
        requests = [(context, choice) for context in contexts for choice in choices]
        flat = loglikelihoods(model, tokenizer, requests, batch_size, max_length, autocast, progress_bar)
        rows = [flat[i : i + len(choices)] for i in range(0, len(flat), len(choices))]
    return np.array([[continuation.logprob for continuation in row] for row in rows]).reshape(
        len(contexts), len(choices)
    )


@dataclass(frozen=True)
class Window:
    """Tokens ``[begin, end)`` go in; those from ``first_scored`` on are scored (the rest are context only)."""

    begin: int
    end: int
    first_scored: int


def sliding_windows(length: int, context: int, stride: int) -> list[Window]:
    """The HF perplexity guide's windows over ``length`` tokens: one starts every ``stride`` tokens and holds up to
    ``context``; each scores the tokens after the previous window's end. The first token has nothing to be predicted
    from, so it is never scored (nor, when ``stride == context``, is each window's first)."""
    if not 2 <= context or not 1 <= stride <= context:
        raise ConfigError(
            f"sliding window context={context}, stride={stride}: need context >= 2, 1 <= stride <= context"
        )
    windows, previous_end = [], 0
    for begin in range(0, length, stride):
        end = min(begin + context, length)
        first_scored = max(previous_end, begin + 1)
        if first_scored < end:
            windows.append(Window(begin, end, first_scored))
        previous_end = end
        if end == length:
            break
    return windows


def window_nlls(
    model,
    token_ids: Sequence[int],
    context: int,
    stride: int,
    batch_size: int,
    autocast: Autocast = contextlib.nullcontext,
    progress_bar: Callable[[Iterable], Iterable] = iter,
) -> tuple[np.ndarray, np.ndarray]:
    """Per sliding window (``sliding_windows``): the summed negative log-likelihood of its scored tokens and how many
    there are. Perplexity is ``exp(nll.sum() / tokens.sum())``."""
    windows = sliding_windows(len(token_ids), context, stride)
    nll, tokens = np.zeros(len(windows)), np.zeros(len(windows))
    for begin in progress_bar(range(0, len(windows), batch_size)):
        batch = windows[begin : begin + batch_size]
        rows = [list(token_ids[window.begin : window.end]) for window in batch]
        scored = scored_tokens(model, rows, [window.first_scored - window.begin for window in batch], autocast)
        for i, (logprobs, _) in enumerate(scored, start=begin):
            nll[i], tokens[i] = -float(logprobs.double().sum()), len(logprobs)
    return nll, tokens


def perplexity(nll: np.ndarray, tokens: np.ndarray) -> float:
    return math.exp(float(nll.sum()) / float(tokens.sum()))
