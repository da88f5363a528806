"""What a causal LM is scored by: the loss on response tokens only, and the log-likelihood of each label string.

Both run the decoder once and apply the vocabulary projection (the LM head) only where a score needs it: the
response tokens (a 49k-token head over every prompt token would cost more than the decoder's last layers), and, for
label ranking, the last prompt position and each label's tokens. ``labels`` follow transformers' convention: the
token ids of the sequence, -100 where no loss is taken; position t predicts token t + 1.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

IGNORE = -100


def response_token_losses(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The negative log-likelihood of every scored token (those with a label) of ``batch``, in fp32, and the row
    each belongs to."""
    hidden = model.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    targets = batch["labels"][:, 1:]
    scored = targets != IGNORE
    logits = model.get_output_embeddings()(hidden.last_hidden_state[:, :-1][scored]).float()
    rows = scored.nonzero()[:, 0]
    return F.cross_entropy(logits, targets[scored], reduction="none"), rows


def response_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The mean negative log-likelihood per response token of ``batch`` (what TRL's SFT loss is)."""
    losses, _ = response_token_losses(model, batch)
    return losses.mean()


def per_example_nll(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed negative log-likelihood and scored-token count of each row of ``batch``."""
    losses, rows = response_token_losses(model, batch)
    count = len(batch["input_ids"])
    nll = torch.zeros(count, dtype=torch.float32, device=losses.device).index_add_(0, rows, losses)
    tokens = torch.zeros(count, dtype=torch.long, device=losses.device).index_add_(0, rows, torch.ones_like(rows))
    return nll, tokens


def left_padded(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    ids = torch.tensor([[pad_id] * (width - len(row)) + row for row in rows])
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows])
    return ids, mask


@torch.inference_mode()
def label_log_likelihoods(model, prompts: list[list[int]], candidates: list[list[int]], pad_id: int) -> torch.Tensor:
    """``[prompt, candidate]``: the summed log-probability of each candidate's tokens after each prompt, as
    lm-evaluation-harness scores a multiple-choice answer. Each prompt runs once; its key/value cache is shared by
    all candidates, so C candidates cost C short continuations, not C full sequences. Candidates of one length go
    together, so no continuation is padded (77 Banking77 intents of 2 to 10 tokens: padding to the longest would
    more than double the work)."""
    device = next(model.parameters()).device
    ids, mask = (tensor.to(device) for tensor in left_padded(prompts, pad_id))
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: each prompt's own positions
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    out = decoder(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
    first = head(out.last_hidden_state[:, -1]).float().log_softmax(-1)  # [B, V]: each candidate's first token
    scores = first[:, torch.tensor([c[0] for c in candidates], device=device)]  # [B, C]
    for length in sorted({len(c) for c in candidates} - {1}):
        group = [index for index, candidate in enumerate(candidates) if len(candidate) == length]
        tokens = torch.tensor([candidates[index] for index in group], device=device)  # [G, length]
        scores[:, group] += continuation_log_likelihoods(decoder, head, out.past_key_values, mask, tokens)
    return scores.cpu()


def continuation_log_likelihoods(decoder, head, prompt_cache, mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``[prompt, candidate]``: the log-probability of each candidate's tokens after its first (all of one length),
    continuing each prompt from a copy of its cache (the decoder extends the cache it is given)."""
    batch, (count, length) = len(mask), tokens.shape
    cache = copy.deepcopy(prompt_cache)
    cache.batch_repeat_interleave(count)
    follow_positions = mask.sum(-1).repeat_interleave(count)[:, None] + torch.arange(length - 1, device=mask.device)
    hidden = decoder(
        input_ids=tokens[:, :-1].repeat(batch, 1),  # every token but the last predicts the next
        attention_mask=torch.cat(
            [mask.repeat_interleave(count, 0), torch.ones_like(tokens[:, 1:]).repeat(batch, 1)], -1
        ),
        position_ids=follow_positions,
        cache=cache,
        use_cache=True,
    ).last_hidden_state  # [B*G, length-1, H]
    logprobs = head(hidden).float().log_softmax(-1).gather(-1, tokens[:, 1:].repeat(batch, 1)[..., None])[..., 0]
    return logprobs.sum(-1).view(batch, count)


@torch.inference_mode()
def greedy_responses(model, prompts: list[list[int]], pad_id: int, eos_id: int, max_new_tokens: int) -> list[list[int]]:
    """Each prompt's greedy continuation (left-padded prompts in one batch), up to EOS (left out) or
    ``max_new_tokens``."""
    ids, mask = (tensor.to(next(model.parameters()).device) for tensor in left_padded(prompts, pad_id))
    generated = model.generate(
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        temperature=None,
        top_p=None,
        top_k=None,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
    )[:, ids.shape[1] :].tolist()
    return [row[: row.index(eos_id)] if eos_id in row else row for row in generated]


def parsed_label(text: str, responses: list[str]) -> int | None:
    """The label whose response string ``text`` is, ignoring case and surrounding or repeated whitespace; None if it
    is none of them (an unparsed generation counts as wrong)."""
    normalised = {" ".join(response.split()).casefold(): index for index, response in enumerate(responses)}
    return normalised.get(" ".join(text.split()).casefold())
