"""A tiny random Llama-style decoder and a byte-level BPE tokenizer trained on a few sentences, built in-process."""

from __future__ import annotations

import torch

CORPUS = [
    "The cat sat on the mat and looked at the door.",
    "Question: What do plants need to grow?\nAnswer: sunlight and water",
    "She opened the window because the room was warm.",
    "He paid the bill with his card at the bank.",
    "Prices rose sharply after the announcement, analysts said.",
    "My card was declined when I tried to pay online.",
]


def tiny_tokenizer(padding_side: str = "right"):
    """Byte-level BPE (every text encodes; a space starts a word's token as in GPT-2), with BOS, EOS and a pad that
    is the EOS, as SmolLM2's."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="</s>", padding_side=padding_side
    )


def tiny_decoder(tokenizer, seed: int = 0, **overrides):
    """A random-init 2-layer LlamaForCausalLM over ``tokenizer``'s vocabulary, in eval mode."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        **overrides,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # larger weights than the 0.02 init: the tiny model's predictions then differ by token
        for parameter in model.parameters():
            if parameter.ndim == 2:
                parameter.normal_(0, 0.3)
    return model.eval()


class TokenIds:
    """What ``tiny_decoder`` reads of a tokenizer, for tests that feed token ids directly (pad 0, BOS 1, EOS 2)."""

    bos_token_id, eos_token_id, pad_token_id = 1, 2, 0

    def __init__(self, size: int):
        self.size = size

    def __len__(self) -> int:
        return self.size
