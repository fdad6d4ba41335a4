from __future__ import annotations

from collections.abc import Iterator
from itertools import permutations
from math import prod

from nnlint.contexts.graph import GraphContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, GraphRule, Invalid, Valid

RESHAPES = {"view", "reshape", "_unsafe_view", "_reshape_alias"}
#: permutations tried when looking for the layout to suggest (rank ≤ 6: ≤ 720 each way)
MAX_RANK = 6


def is_regrouping(src: tuple[int, ...], dst: tuple[int, ...]) -> bool:
    """True when ``src`` -> ``dst`` only splits and merges neighbouring dimensions: there
    is a common refinement, i.e. the running products of both shapes (size-1 dims
    dropped), merged and sorted, form a chain in which each divides the next."""
    a = [d for d in src if d != 1]
    b = [d for d in dst if d != 1]
    if prod(a) != prod(b):
        return True  # not a pure reshape (or an unknown size): not ours to judge
    cuts = set()
    for dims in (a, b):
        p = 1
        for d in dims:
            p *= d
            cuts.add(p)
    chain = sorted(cuts)
    return all(y % x == 0 for x, y in zip(chain, chain[1:]))


def _suggest(src: tuple[int, ...], dst: tuple[int, ...], method: str) -> str | None:
    """The layout to use: a permute alone, a view followed by a permute, or a permute
    followed by the reshape, whichever moves the fewest dimensions."""
    if len(dst) <= MAX_RANK and sorted(src) == sorted(dst) and len(set(src)) == len(src):
        order = [src.index(d) for d in dst]
        return f".permute({', '.join(map(str, order))})"
    best: tuple[int, str] | None = None
    if len(dst) <= MAX_RANK:
        for perm in permutations(range(len(dst))):
            shape = tuple(dst[i] for i in perm)
            if shape == dst or not is_regrouping(src, shape):
                continue
            inverse = [perm.index(i) for i in range(len(perm))]
            moved = sum(1 for i, j in enumerate(inverse) if i != j)
            text = f".{method}({', '.join(map(str, shape))}).permute({', '.join(map(str, inverse))})"
            if len(set(shape)) == len(shape) and (best is None or moved < best[0]):
                best = (moved, text)
    if len(src) <= MAX_RANK:
        for perm in permutations(range(len(src))):
            shape = tuple(src[i] for i in perm)
            if shape == src or not is_regrouping(shape, dst):
                continue
            moved = sum(1 for i, j in enumerate(perm) if i != j)
            text = f".permute({', '.join(map(str, perm))}).reshape({', '.join(map(str, dst))})"
            if len(set(shape)) == len(shape) and (best is None or moved < best[0]):
                best = (moved, text)
    return best[1] if best else None


class AxisScramblingReshape(GraphRule):
    """## What it does
    Checks every `view`/`reshape` in the traced forward with shape algebra on the traced
    shapes: a reshape is clean when its input and output dimensions can be matched by
    consecutive groups whose sizes agree, each group a split of one dimension or a merge
    of neighbouring ones (flatten, head split, `transpose(...).contiguous().view(...)`,
    pixel shuffle, patchify). It fires when the only way to get the new shape is to
    regroup elements across dimensions: splitting heads with `q.view(B, H, T, D)` from
    `(B, T, H·D)`, turning `(B, C, T)` into `(T, B, C)` by `view`, `x.view(x.size(1), -1)`.
    The message gives both shapes and the layout to use (a `permute`, or a `view` then a
    `permute`).

    The check is exact only when the example sizes do not coincide: nnlint's guessed
    sequence length (13) is chosen not to divide or be divided by common batch, head and
    channel sizes; with inputs you declare whose batch, sequence and channel sizes are all
    powers of two, some scrambles look like legal splits and go unreported.

    ## Why is this bad?
    `view` and `reshape` never move data: they reinterpret the same memory in a new
    shape. `(B, T, H·D).view(B, H, T, D)` does not put heads on dim 1; it cuts the
    sequence-major memory into pieces of the new shape, so each "head" holds a mixture
    of positions and channels. Shapes match, the model runs and trains, and attention
    works on scrambled data: quality silently drops, or the model never learns.

    ## Example
    ```python
    q = self.q(x).view(B, self.n_head, T, C // self.n_head)
    ```

    ## Use instead
    ```python
    q = self.q(x).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
    ```
    and `x.permute(2, 0, 1)` (not `x.view(T, B, C)`) to go from `(B, C, T)` to `(T, B, C)`.

    ## References
    - PyTorch docs, `torch.Tensor.view`: "the returned tensor shares the same data";
      a view of a different shape "reinterprets" it
      (https://pytorch.org/docs/stable/generated/torch.Tensor.view.html).
    - PyTorch forums, "Difference between view, reshape and permute" (the classic
      `view` instead of `permute` bug).
    - Karpathy, nanoGPT `model.py`: `k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)`.
    """

    code = "NN209"
    name = "axis-scrambling-reshape"
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Attention(nn.Module):
                def __init__(self, dim=30, heads=3):
                    super().__init__()
                    self.heads = heads
                    self.qkv = nn.Linear(dim, 3 * dim)
                    self.proj = nn.Linear(dim, dim)

                def forward(self, x):
                    B, T, C = x.shape
                    q, k, v = self.qkv(x).split(C, dim=2)
                    q = q.view(B, T, self.heads, C // self.heads).transpose(1, 2)
                    k = k.view(B, T, self.heads, C // self.heads).transpose(1, 2)
                    v = v.view(B, T, self.heads, C // self.heads).transpose(1, 2)
                    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                    y = y.transpose(1, 2).contiguous().view(B, T, C)
                    return self.proj(y.reshape(B * T, C)).view(B, T, C)

            def nnlint_examples():
                return {"model": Attention(), "inputs": torch.randn(2, 7, 30)}
            """,
            note="head split with transpose, merge after transpose().contiguous(), flatten",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Patches(nn.Module):
                def __init__(self, p=5, c=3, dim=11):
                    super().__init__()
                    self.p = p
                    self.embed = nn.Linear(p * p * c, dim)
                    self.out = nn.Linear(dim, p * p * c)
                    self.up = nn.Conv2d(c, c * 4, 1)
                    self.shuffle = nn.PixelShuffle(2)

                def forward(self, x):
                    B, C, H, W = x.shape
                    p = self.p
                    t = x.view(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)
                    t = t.reshape(B, (H // p) * (W // p), p * p * C)
                    y = self.out(self.embed(t))
                    y = y.view(B, H // p, W // p, p, p, C).permute(0, 5, 1, 3, 2, 4).reshape(B, C, H, W)
                    z = self.up(y).view(B, C, 2, 2, H, W).permute(0, 1, 4, 2, 5, 3).reshape(B, C, 2 * H, 2 * W)
                    return self.shuffle(self.up(y)) + z

            def nnlint_examples():
                return {"model": Patches(), "inputs": torch.randn(2, 3, 35, 35)}
            """,
            note="patchify / unpatchify and a hand-written pixel shuffle",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Flat(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(3, 7, 3)
                    self.fc = nn.Linear(7 * 9 * 9, 5)

                def forward(self, x):
                    x = self.conv(x)
                    x = x.view(x.size(0), -1)
                    return self.fc(x.flatten(1)).unsqueeze(1).view(-1, 5)

            def nnlint_examples():
                return {"model": Flat(), "inputs": torch.randn(2, 3, 11, 11)}
            """,
            note="flatten for the classifier, unsqueeze and squeeze",
        ),
    ]

    INVALID = [
        Invalid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Attention(nn.Module):
                def __init__(self, dim=30, heads=3):
                    super().__init__()
                    self.heads = heads
                    self.q = nn.Linear(dim, dim)
                    self.k = nn.Linear(dim, dim)
                    self.v = nn.Linear(dim, dim)

                def forward(self, x):
                    B, T, C = x.shape
                    q = self.q(x).view(B, self.heads, T, C // self.heads)
                    k = self.k(x).view(B, T, self.heads, C // self.heads).transpose(1, 2)
                    v = self.v(x).view(B, T, self.heads, C // self.heads).transpose(1, 2)
                    y = F.scaled_dot_product_attention(q, k, v)
                    return y.transpose(1, 2).reshape(B, T, C)

            def nnlint_examples():
                return {"model": Attention(), "inputs": torch.randn(2, 7, 30)}
            """,
            line=15,
            contains=".view(2, 7, 3, 10).permute(0, 2, 1, 3)",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class ConvThenRNN(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv1d(5, 11, 3, padding=1)
                    self.rnn = nn.GRU(11, 4)

                def forward(self, x):
                    h = self.conv(x)
                    B, C, T = h.shape
                    h = h.view(T, B, C)
                    out, _ = self.rnn(h)
                    return out

            def nnlint_examples():
                return {"model": ConvThenRNN(), "inputs": torch.randn(2, 5, 13)}
            """,
            line=13,
            contains=".permute(2, 0, 1)",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Pool(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(3 * 5, 7)

                def forward(self, x):
                    return self.fc(x.view(x.size(1), -1))

            def nnlint_examples():
                return {"model": Pool(), "inputs": torch.randn(3, 2, 5)}
            """,
            line=10,
            contains="(3, 2, 5)",
        ),
    ]

    def check(self, ctx: GraphContext) -> Iterator[Finding]:
        if ctx.failure is not None:
            return
        seen: set[int | None] = set()
        for n in ctx.nodes:
            if n.target not in RESHAPES or n.shape is None or not n.in_shapes or n.op == "call_module":
                continue
            src, dst = tuple(n.in_shapes[0]), tuple(n.shape)
            if is_regrouping(src, dst):
                continue
            line = ctx.best_line(n)
            if line in seen and line is not None:
                continue  # one finding per line (a loop over heads, several calls)
            seen.add(line)
            method = "reshape" if n.target == "reshape" else "view"
            fix = _suggest(src, dst, method)
            how = f"use `x{fix}`" if fix else "move the dimensions next to each other with permute/transpose first"
            yield Finding(
                f"`{method}` regroups {src} into {dst} across dimensions: no split or merge of neighbouring "
                f"dimensions gives this shape, so elements of different positions/channels are mixed (view never "
                f"moves data). To reorder axes, {how}",
                line=line,
                module=n.scope or None,
                evidence={"input_shape": list(src), "output_shape": list(dst), "suggestion": fix},
            )
