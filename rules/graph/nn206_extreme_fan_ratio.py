from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.graph import GNode, GraphContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, GraphRule, Invalid, Valid


class ExtremeFanRatio(GraphRule):
    """## What it does
    Finds `Linear`/`Conv*d` layers whose input width and output width differ by a factor
    of `ratio` (default 1000) or more, in either direction.

    ## Why is this bad?
    The "insane input to output neurons ratio": squeezing 100,000 features into 10 units
    (or blowing 4 up into 8,000) in one step discards almost everything or adds nothing
    but parameters; it usually means a wrong flatten size or a missing hidden layer.
    Default initialisations are also badly scaled for such fan-in/fan-out.

    ## Example
    ```python
    self.fc = nn.Linear(64 * 56 * 56, 10)   # 200,704 inputs -> 10 outputs
    ```

    ## Use instead
    ```python
    self.pool = nn.AdaptiveAvgPool2d(1)
    self.fc = nn.Linear(64, 10)
    ```

    Not reported: a final head with one or two outputs (regression, binary) and layers
    fed one or two scalars (a time or position embedding).

    ## References
    - Seed article, "Silent bugs in neural network code" (insane input/output ratio).
    - Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward
      neural networks" (fan-in/fan-out scaling).
    """

    code = "NN206"
    name = "extreme-fan-ratio"
    severity = Severity.WARNING
    thresholds = {"ratio": 1000.0}

    VALID = [
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(4096, 512)
                    self.fc2 = nn.Linear(512, 1)

                def forward(self, x):
                    return self.fc2(self.fc1(x).relu())
            """,
            note="a one-output regression head",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Classifier(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.features = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(),
                                                  nn.Conv2d(64, 1000, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(7))
                    self.fc = nn.Linear(1000 * 7 * 7, 10)

                def forward(self, x):
                    return self.fc(torch.flatten(self.features(x), 1))
            """,
            note="the flatten of a 1000×7×7 feature map: in_features is that map's size by construction",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20000, 10)
                    self.fc2 = nn.Linear(10, 10)

                def forward(self, x):
                    return self.fc2(self.fc1(x).relu())
            """,
            line=6,
            contains="2000",
        ),
    ]

    def check(self, ctx: GraphContext) -> Iterator[Finding]:
        if ctx.failure is not None:
            return
        import torch.nn as nn

        limit = float(self.threshold["ratio"])
        heads = _heads(ctx)
        for q, mod in ctx.modules.items():
            if isinstance(mod, nn.Linear):
                fan_in, fan_out, unit = mod.in_features, mod.out_features, "features"
            elif isinstance(mod, nn.modules.conv._ConvNd) and not isinstance(mod, nn.modules.conv._ConvTransposeNd):
                fan_in, fan_out, unit = mod.in_channels, mod.out_channels, "channels"
            else:
                continue
            if fan_in <= 0 or fan_out <= 0:
                continue
            ratio = fan_in / fan_out
            if 1 / limit < ratio < limit:
                continue
            if fan_out <= 2 and q in heads or fan_in <= 2:
                continue
            if isinstance(mod, nn.Linear) and _flattens_feature_map(ctx, q, fan_in):
                continue
            direction = f"{ratio:,.0f}× narrower" if ratio >= limit else f"{1 / ratio:,.0f}× wider"
            yield Finding(
                f"{ctx.describe_module(q)}: its output is {direction} than its input ({fan_in:,} → {fan_out:,} "
                f"{unit}; limit {limit:,.0f}×): a wrong flatten size or a missing intermediate layer?",
                module=q,
                evidence={"fan_in": fan_in, "fan_out": fan_out, "ratio": ratio},
            )


def _heads(ctx: GraphContext) -> set[str]:
    """Modules whose output is the model's output (through reshapes only)."""
    out: set[str] = set()
    if ctx.output is None:
        return out
    for n in ctx.tensor_inputs(ctx.nodes[ctx.output]) if ctx.nodes[ctx.output].inputs else []:
        node: GNode | None = n
        while node is not None and ctx.kind(node) == "pass":
            ins = ctx.tensor_inputs(node)
            node = ins[0] if len(ins) == 1 else None
        if node is not None and node.op == "call_module":
            out.add(node.target)
    return out


FLATTENS = {"flatten", "view", "reshape", "Flatten"}


def _flattens_feature_map(ctx: GraphContext, q: str, in_features: int) -> bool:
    """The Linear reads a flatten of the previous feature map and its in_features is that
    map's size (``Linear(1000·7·7 → 10)`` after a 1000×7×7 map): the width is right by
    construction, the classifier head of a CNN."""
    for n in ctx.nodes:
        if n.op != "call_module" or n.target != q:
            continue
        _prev, path = ctx.producer_through_pass(n)
        for p in path:
            name = p.module_type if p.op == "call_module" else str(p.target)
            if name not in FLATTENS:
                continue
            ins = ctx.tensor_inputs(p)
            shape = ins[0].shape if ins else None
            if shape and len(shape) >= 3:
                size = 1
                for d in shape[1:]:
                    size *= int(d)
                if size == in_features and _downsampled(ctx, shape):
                    return True
    return False


def _downsampled(ctx: GraphContext, shape) -> bool:
    """The flattened map is smaller, spatially, than the model's input (the network pooled
    or strided down to it, as a CNN's classifier head does); a full-resolution map
    flattened straight into a few units is still flagged."""
    positions = 1
    for d in shape[2:]:
        positions *= int(d)
    for i in ctx.placeholders:
        s = ctx.nodes[i].shape
        if s and len(s) == len(shape):
            full = 1
            for d in s[2:]:
                full *= int(d)
            return positions < full
    return False
