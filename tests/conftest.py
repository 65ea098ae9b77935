"""Shared fixtures: a tiny randomly initialized Llama (seeded) and token batches for it."""

from __future__ import annotations

import numpy as np
import pytest

TINY_VOCAB = 256


@pytest.fixture(scope="session")
def tiny_llama():
    """LlamaForCausalLM: hidden 64, 2 layers, 4 heads (head_dim 16), 2 KV heads, MLP 128, vocab 256; float32, eval."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, intermediate_size=128, vocab_size=TINY_VOCAB,
                                      max_position_embeddings=256, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).float().eval()
    model.requires_grad_(False)
    return model


@pytest.fixture(scope="session")
def tiny_tokens() -> np.ndarray:
    """Seeded token ids [8, 32] for the tiny model, with some repetition so the loss has structure."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, TINY_VOCAB, size=(8, 16))
    return np.concatenate([base, base[:, ::-1]], axis=1).astype(np.int64)
