from __future__ import annotations

import inspect
import os
import re
from collections.abc import Iterator
from typing import Any

from nnlint.contexts.probe import Extra, ProbeContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, ProbeRule, Valid

from .common import fmt

#: class names of autoregressive models
_CAUSAL_CLASS = re.compile(r"CausalLM|LMHead|GPT|Autoregressive|NextToken|CharLM|WordLM", re.IGNORECASE)
#: next-token targets in the file: y = x[:, 1:] beside x[:, :-1], or data[i + 1:i + 1 + block]
_SHIFT_NEXT = re.compile(r"\[\s*(?::\s*,|\.\.\.\s*,)?\s*1\s*:\s*\]|\[\s*\w+\s*\+\s*1\s*:")
_SHIFT_PREV = re.compile(r"\[\s*(?::\s*,|\.\.\.\s*,)?\s*:\s*-\s*1\s*\]|\[\s*\w+\s*:\s*\w+\s*\+\s*\w+\s*\]")
_SHIFT_NAMED = re.compile(r"shift_labels|shift_logits|next_token|targets\s*=\s*\w+\s*\[\s*:\s*,\s*1\s*:")


class CausalLeak(ProbeRule):
    """## What it does
    For an autoregressive model, measures whether an output position depends on later
    input positions: in eval mode, backpropagates output position t (and position 0) to
    the input — for token inputs, to the embedding output — and fires when any position
    after t gets a non-zero gradient. The finding names the first leaking pair (t, t+k),
    the gradient sizes, and the attention line (the `masked_fill` that applies the mask,
    or the `scaled_dot_product_attention` / `nn.MultiheadAttention` / encoder call).

    A model is taken as autoregressive when its class is a causal LM (`*ForCausalLM`,
    `*LMHeadModel`, `GPT*`), the class defined in your file has a `generate` method, the
    file builds next-token targets (`y = x[:, 1:]` beside `x[:, :-1]`, or
    `data[i + 1:i + 1 + block]`), or it is declared with
    `[tool.nnlint.thresholds.NN314] autoregressive = 1`. Encoders, bidirectional models
    and encoder-decoder models (whose decoder legitimately sees the whole source) are
    not judged.

    ## Why is this bad?
    A next-token model trained with attention that can see the future learns to copy the
    next token from its input instead of predicting it: the training loss drops to almost
    zero, and generation — where the future is not there — produces garbage. The usual
    causes: `scaled_dot_product_attention` without `is_causal=True` and without a mask, a
    mask built with the wrong triangle (`triu` instead of `tril`, or `diagonal` off by
    one), a mask that is created but never passed, or `nn.TransformerEncoder` used as a
    decoder without `mask=`/`is_causal=`.

    ## Example
    ```python
    y = F.scaled_dot_product_attention(q, k, v)
    ```

    ## Use instead
    ```python
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    ```
    or with a mask: `mask = torch.tril(torch.ones(T, T, dtype=torch.bool))` and
    `att.masked_fill(~mask, float("-inf"))`.

    ## References
    - Vaswani et al., "Attention Is All You Need" (2017), §3.2.3: "We need to prevent
      leftward information flow in the decoder".
    - PyTorch docs, `torch.nn.functional.scaled_dot_product_attention` (`is_causal`) and
      `nn.Transformer.generate_square_subsequent_mask`.
    - Karpathy, nanoGPT `model.py`: the causal mask `torch.tril(torch.ones(block_size, block_size))`.
    """

    code = "NN314"
    name = "causal-leak"
    severity = Severity.ERROR
    needs = frozenset({Extra.CAUSAL_JACOBIAN})
    thresholds = {"rtol": 1e-5, "autoregressive": 0.0}

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class TinyGPT(nn.Module):
                def __init__(self, vocab=37, dim=30, heads=3):
                    super().__init__()
                    self.heads = heads
                    self.tok = nn.Embedding(vocab, dim)
                    self.qkv = nn.Linear(dim, 3 * dim)
                    self.head = nn.Linear(dim, vocab)

                def forward(self, idx):
                    x = self.tok(idx)
                    B, T, C = x.shape
                    q, k, v = [t.view(B, T, self.heads, C // self.heads).transpose(1, 2)
                               for t in self.qkv(x).split(C, dim=2)]
                    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                    return self.head(x + y.transpose(1, 2).reshape(B, T, C))

                def generate(self, idx, n):
                    for _ in range(n):
                        idx = torch.cat([idx, self(idx)[:, -1].argmax(-1, keepdim=True)], dim=1)
                    return idx

            def nnlint_examples():
                return {"model": TinyGPT(), "inputs": torch.randint(0, 37, (4, 11))}
            """,
            note="a causal GPT: is_causal=True",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Tagger(nn.Module):
                def __init__(self, vocab=37, dim=30, tags=5):
                    super().__init__()
                    self.tok = nn.Embedding(vocab, dim)
                    layer = nn.TransformerEncoderLayer(dim, 3, 64, dropout=0.0, batch_first=True)
                    self.encoder = nn.TransformerEncoder(layer, 1)
                    self.head = nn.Linear(dim, tags)

                def forward(self, idx):
                    return self.head(self.encoder(self.tok(idx)))

            def nnlint_examples():
                return {"model": Tagger(), "inputs": torch.randint(0, 37, (4, 11))}
            """,
            note="a bidirectional encoder (token tagging) sees the whole sentence by design",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class CharLM(nn.Module):
                def __init__(self, vocab=37, dim=30, block=16):
                    super().__init__()
                    self.tok = nn.Embedding(vocab, dim)
                    self.q = nn.Linear(dim, dim)
                    self.k = nn.Linear(dim, dim)
                    self.head = nn.Linear(dim, vocab)
                    self.register_buffer("mask", torch.tril(torch.ones(block, block)))

                def forward(self, idx):
                    x = self.tok(idx)
                    T = x.size(1)
                    att = self.q(x) @ self.k(x).transpose(1, 2)
                    att = att.masked_fill(self.mask[:T, :T] == 0, float("-inf")).softmax(-1)
                    return self.head(att @ x)

            def nnlint_examples():
                return {"model": CharLM(), "inputs": torch.randint(0, 37, (4, 11))}
            """,
            note="tril mask applied with masked_fill",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Translator(nn.Module):
                def __init__(self, vocab=37, dim=30):
                    super().__init__()
                    self.tok = nn.Embedding(vocab, dim)
                    self.transformer = nn.Transformer(dim, 3, 1, 1, 64, dropout=0.0, batch_first=True)
                    self.head = nn.Linear(dim, vocab)

                def forward(self, src):
                    tgt = src[:, :-1]
                    mask = nn.Transformer.generate_square_subsequent_mask(tgt.size(1))
                    h = self.transformer(self.tok(src), self.tok(tgt), tgt_mask=mask)
                    return self.head(h)

                def generate(self, src):
                    return self(src).argmax(-1)

            def nnlint_examples():
                return {"model": Translator(), "inputs": torch.randint(0, 37, (4, 11))}
            """,
            note="encoder-decoder: the decoder sees the whole source by design",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class TinyGPT(nn.Module):
                def __init__(self, vocab=37, dim=30, heads=3):
                    super().__init__()
                    self.heads = heads
                    self.tok = nn.Embedding(vocab, dim)
                    self.qkv = nn.Linear(dim, 3 * dim)
                    self.head = nn.Linear(dim, vocab)

                def forward(self, idx):
                    x = self.tok(idx)
                    B, T, C = x.shape
                    q, k, v = [t.view(B, T, self.heads, C // self.heads).transpose(1, 2)
                               for t in self.qkv(x).split(C, dim=2)]
                    y = F.scaled_dot_product_attention(q, k, v)
                    return self.head(x + y.transpose(1, 2).reshape(B, T, C))

                def generate(self, idx, n):
                    for _ in range(n):
                        idx = torch.cat([idx, self(idx)[:, -1].argmax(-1, keepdim=True)], dim=1)
                    return idx

            def nnlint_examples():
                return {"model": TinyGPT(), "inputs": torch.randint(0, 37, (4, 11))}
            """,
            line=18,
            contains="(0, 1)",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Model(nn.Module):
                def __init__(self, vocab=37, dim=30, block=16):
                    super().__init__()
                    self.tok = nn.Embedding(vocab, dim)
                    self.q = nn.Linear(dim, dim)
                    self.k = nn.Linear(dim, dim)
                    self.head = nn.Linear(dim, vocab)
                    self.register_buffer("mask", torch.triu(torch.ones(block, block)))

                def forward(self, idx):
                    x = self.tok(idx)
                    T = x.size(1)
                    att = self.q(x) @ self.k(x).transpose(1, 2)
                    att = att.masked_fill(self.mask[:T, :T] == 0, float("-inf")).softmax(-1)
                    return self.head(att @ x)

            def get_batch(data, block=16):
                x, y = data[:, :-1], data[:, 1:]
                return x, y

            def nnlint_examples():
                return {"model": Model(), "inputs": torch.randint(0, 37, (4, 11))}
            """,
            line=17,
            contains="next-token targets",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class TinyCausalLM(nn.Module):
                def __init__(self, vocab=37, dim=30):
                    super().__init__()
                    self.tok = nn.Embedding(vocab, dim)
                    layer = nn.TransformerEncoderLayer(dim, 3, 64, dropout=0.0, batch_first=True)
                    self.blocks = nn.TransformerEncoder(layer, 1)
                    self.head = nn.Linear(dim, vocab)

                def forward(self, idx):
                    h = self.blocks(self.tok(idx))
                    return self.head(h)

            def nnlint_examples():
                return {"model": TinyCausalLM(), "inputs": torch.randint(0, 37, (4, 11))}
            """,
            line=13,
            contains="causal LM",
        ),
    ]

    def check(self, ctx: ProbeContext) -> Iterator[Finding]:
        res = ctx.causal_jacobian
        if not res or not res.get("measured") or res.get("leak") is None:
            return
        why = _autoregressive(ctx.model, ctx.path, self.threshold.get("autoregressive", 0.0))
        if why is None or _encoder_decoder(ctx.model):
            return
        per = res["per_position"]
        t, k = res["t"], res["leak"]
        scale = max(per) if per else 0.0
        if res["leak_grad"] <= self.threshold["rtol"] * scale:
            return
        att = res.get("attention") or {}
        wrt = "embedding output" if res.get("wrt") == "embedding" else "input"
        where = f" (the {att['op']} at line {att['line']})" if att.get("line") else ""
        yield Finding(
            f"causal leak at (t, t+k) = ({t}, {k}): output position {t} depends on {wrt} position {k} (gradient {fmt(res['leak_grad'])} vs "
            f"{fmt(res['self_grad'])} for its own position; {res['leaking_positions']} later positions leak), but the "
            f"model is autoregressive ({why}): in training each position can see the token it must predict, so the "
            f"loss collapses and generation fails{where}. Mask the future: `is_causal=True` in "
            f"scaled_dot_product_attention, a lower-triangular mask (`torch.tril`) applied to the scores, or "
            f"`mask=`/`is_causal=True` for nn.TransformerEncoder",
            line=att.get("line"),
            evidence={
                "t": t,
                "leak": k,
                "leak_grad": res["leak_grad"],
                "self_grad": res["self_grad"],
                "axis": res.get("axis"),
                "length": res.get("length"),
                "why": why,
                "per_position": per,
            },
        )


def _autoregressive(model: Any, path: str | None, declared: float) -> str | None:
    """Why the model counts as autoregressive, or None."""
    if declared >= 1:
        return "declared in [tool.nnlint.thresholds.NN314]"
    cls = type(model)
    if _CAUSAL_CLASS.search(cls.__name__):
        return f"a causal LM class, {cls.__name__}"
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "is_decoder", False) and not getattr(config, "is_encoder_decoder", False):
        return "its config says is_decoder"
    real = os.path.realpath(path) if path else None
    for klass in cls.__mro__:
        if "generate" in vars(klass):
            try:
                src = inspect.getsourcefile(klass)
            except (TypeError, OSError):
                src = None
            if src and real and os.path.realpath(src) == real:
                return f"{klass.__name__} has a generate method"
    text = _read(path)
    if text and (_SHIFT_NAMED.search(text) or (_SHIFT_NEXT.search(text) and _SHIFT_PREV.search(text))):
        return "the file builds next-token targets (inputs shifted by one)"
    return None


def _encoder_decoder(model: Any) -> bool:
    """Seq2seq models: the decoder's outputs depend on every source position by design."""
    import torch.nn as nn

    config = getattr(model, "config", None)
    if config is not None and getattr(config, "is_encoder_decoder", False):
        return True
    has_dec = False
    names = set()
    for name, m in model.named_modules():
        if isinstance(m, (nn.Transformer, nn.TransformerDecoder, nn.TransformerDecoderLayer)):
            has_dec = True
        names.add(name.rsplit(".", 1)[-1])
    return has_dec or ({"encoder", "decoder"} <= names)


def _read(path: str | None) -> str | None:
    if not path or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read(1_000_000)
    except (OSError, UnicodeDecodeError):
        return None
