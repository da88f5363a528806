"""Response-only loss and label ranking equal the same quantities computed from one full forward pass."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from ftaudit.tasks.causal_lm.scoring import (
    greedy_responses,
    label_log_likelihoods,
    parsed_label,
    per_example_nll,
    response_loss,
)
from tests.probes.tiny_decoder import TokenIds, tiny_decoder

PAD = 0


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def model(request):
    """Llama (rotary positions: an offset cancels out) and GPT-2 (absolute positions: left padding must not shift
    them)."""
    torch.manual_seed(0)
    if request.param == "gpt2":
        return GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=32, n_layer=2, n_head=4, pad_token_id=PAD)).eval()
    return tiny_decoder(TokenIds(50)).eval()


def full_log_probs(model, ids: list[int]) -> torch.Tensor:
    """log p(token t+1 | tokens <= t) for each position of an unpadded sequence, from the full logits."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    return logits[:-1].log_softmax(-1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]


def test_the_response_loss_counts_response_tokens_only_and_ignores_padding(model):
    first, second = [5, 6, 7, 8, 9], [11, 12, 13]
    batch = {
        "input_ids": torch.tensor([first, second + [PAD, PAD]]),
        "attention_mask": torch.tensor([[1] * 5, [1] * 3 + [0, 0]]),
        "labels": torch.tensor([[-100, -100, -100, 8, 9], [-100, 12, 13, -100, -100]]),  # responses: 8 9 and 12 13
    }
    nll, tokens = per_example_nll(model, batch)
    expected = torch.stack([-full_log_probs(model, first)[2:].sum(), -full_log_probs(model, second)[0:].sum()])
    assert tokens.tolist() == [2, 2]
    torch.testing.assert_close(nll, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(response_loss(model, batch), expected.sum() / 4, rtol=1e-4, atol=1e-4)


def test_label_ranking_equals_summed_log_probs_of_each_prompt_and_label(model):
    prompts = [[3, 4, 5, 6], [7, 8]]  # different lengths: the shorter is left-padded
    candidates = [[20], [21, 22, 23], [24, 25]]  # different lengths too
    scores = label_log_likelihoods(model, prompts, candidates, PAD)
    for p, prompt in enumerate(prompts):
        for c, candidate in enumerate(candidates):
            expected = full_log_probs(model, prompt + candidate)[len(prompt) - 1 :].sum()
            torch.testing.assert_close(scores[p, c], expected, rtol=1e-4, atol=1e-4)


def greedy_by_hand(model, prompt: list[int], eos: int, steps: int) -> list[int]:
    ids = list(prompt)
    for _ in range(steps):
        with torch.no_grad():
            token = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
        if token == eos:
            break
        ids.append(token)
    return ids[len(prompt) :]


def test_greedy_answers_of_left_padded_prompts_equal_one_prompt_at_a_time(model):
    prompts = [[3, 4, 5, 6], [7, 8]]
    eos = int(model(input_ids=torch.tensor([prompts[1]])).logits[0, -1].argmax())  # the second stops at once
    answers = greedy_responses(model, prompts, PAD, eos, max_new_tokens=4)
    assert answers == [greedy_by_hand(model, prompt, eos, 4) for prompt in prompts]
    assert answers[1] == []  # EOS itself is left out


def test_a_free_answer_parses_to_the_label_whose_string_it_is():
    labels = ["card arrival", "Card linking", "top up failed"]
    assert parsed_label(" Card  Arrival\n", labels) == 0
    assert parsed_label("card linking", labels) == 1
    assert parsed_label("card", labels) is None  # a prefix of a label is not that label
    assert parsed_label("top up failed, sorry", labels) is None
