"""NN314 and NN209 on real small decoders: a GPT with a correct causal mask is silent, the
same GPT with the mask removed fires at its attention line, and a transformers decoder built
from a tiny config (nothing downloaded) is silent; so is a transformers encoder. NN209 (shape
algebra on the traced reshapes) stays silent on all of them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

import nnlint

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _load(rel: str):
    spec = importlib.util.spec_from_file_location(Path(rel).stem, ROOT / rel)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # inspect finds the class's file (the report's lines) through it
    spec.loader.exec_module(mod)
    return mod


def _nn314(model, inputs):
    return nnlint.check(model, inputs, select=["NN314"], device="cpu").by_code("NN314")


def test_small_gpt_with_and_without_the_causal_mask():
    torch.manual_seed(0)
    tokens = torch.randint(0, 101, (4, 13))
    assert not _nn314(_load("fixtures/probe/clean_causal_leak.py").MiniGPT(), tokens)
    (d,) = _nn314(_load("fixtures/probe/seed_causal_leak.py").MiniGPT(), tokens)
    assert d.line == 27 and "(t, t+k) = (0, 1)" in d.message, d.message
    assert d.evidence["leak"] == 1 and d.evidence["leak_grad"] > 0


def test_nanogpt_with_targets_is_silent():
    mod = _load("fixtures/graph/nanogpt.py")
    torch.manual_seed(0)
    model = mod.GPT(mod.GPTConfig(block_size=16, vocab_size=101, n_layer=2, n_head=2, n_embd=32, dropout=0.0))
    idx = torch.randint(0, 101, (4, 13))
    assert not _nn314(model, (idx, torch.randint(0, 101, (4, 13))))


def test_transformers_decoder_and_encoder_are_silent():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=101))
    assert not _nn314(gpt2, torch.randint(0, 101, (4, 13)))
    bert = transformers.BertModel(transformers.BertConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=2,
                                                          intermediate_size=37, vocab_size=101))
    assert not _nn314(bert, torch.randint(0, 101, (4, 13)))


def test_transformers_decoder_that_sees_the_future_fires(monkeypatch):
    """The same tiny GPT-2 with its causal masking switched off (no mask, is_causal=False)."""
    transformers = pytest.importorskip("transformers")
    from transformers.models.gpt2 import modeling_gpt2

    torch.manual_seed(0)
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=101))
    monkeypatch.setattr(modeling_gpt2, "create_causal_mask", lambda *a, **k: None)
    for block in gpt2.transformer.h:
        block.attn.is_causal = False
    (d,) = _nn314(gpt2, torch.randint(0, 101, (4, 13)))
    assert "(t, t+k) = (0, 1)" in d.message and "GPT2LMHeadModel" in d.message, d.message


def test_nn209_is_silent_on_real_decoders():
    transformers = pytest.importorskip("transformers")
    mod = _load("fixtures/graph/nanogpt.py")
    torch.manual_seed(0)
    nano = mod.GPT(mod.GPTConfig(block_size=16, vocab_size=101, n_layer=2, n_head=2, n_embd=32, dropout=0.0))
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=101))
    mini = _load("fixtures/probe/clean_causal_leak.py").MiniGPT()
    for model in (nano, gpt2, mini):
        report = nnlint.check(model, torch.randint(0, 101, (4, 13)), select=["NN209"], device="cpu")
        assert not report.by_code("NN209") and not report.errors, str(report)
