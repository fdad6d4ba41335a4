from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.graph import GraphContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, GraphRule, Invalid, Valid

IDEMPOTENT = {"relu", "relu6", "hardtanh"}


class DoubleActivation(GraphRule):
    """## What it does
    Finds the same activation applied twice in a row in the traced forward: `relu∘relu`,
    `sigmoid∘sigmoid`, `softmax∘softmax` (through nothing but reshapes or dropout) — for
    example an `nn.ReLU()` at the end of a block that the caller follows with `F.relu`.

    ## Why is this bad?
    For ReLU it is dead weight; for sigmoid/tanh the second one squashes values into a
    narrow band (sigmoid∘sigmoid lies in (0.5, 0.73)) and shrinks gradients; a softmax of
    a softmax is close to uniform, so the model cannot become confident and the loss
    plateaus.

    ## Example
    ```python
    self.block = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
    ...
    x = F.relu(self.block(x))
    ```

    ## Use instead
    ```python
    x = self.block(x)
    ```

    ## References
    - Seed article, "Silent bugs in neural network code" (duplicated activations).
    - PyTorch forums, "Softmax applied twice" (CrossEntropyLoss already applies log-softmax).
    """

    code = "NN205"
    name = "double-activation"
    severity = Severity.WARNING

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(8, 16)
                    self.gate = nn.Linear(8, 16)
                    self.fc2 = nn.Linear(16, 4)

                def forward(self, x):
                    h = F.relu(self.fc1(x))
                    h = F.max_pool1d(h.unsqueeze(1), 1).squeeze(1).relu()
                    g = torch.sigmoid(self.gate(x))
                    return torch.sigmoid(self.fc2(h * g))
            """,
            note="relu, pool, relu; two sigmoids on different paths",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.block = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
                    self.fc = nn.Linear(16, 4)

                def forward(self, x):
                    x = F.relu(self.block(x))
                    return self.fc(x)
            """,
            line=11,
            contains="relu",
        ),
    ]

    def check(self, ctx: GraphContext) -> Iterator[Finding]:
        if ctx.failure is not None:
            return
        for n in ctx.nodes:
            kind = ctx.activation(n)
            if kind is None:
                continue
            prev, _ = ctx.producer_through_pass(n)
            if prev is None or ctx.activation(prev) != kind:
                continue
            if kind in ("softmax", "log_softmax"):
                d1, d2 = _dim(ctx, prev), _dim(ctx, n)
                if d1 is not None and d2 is not None and d1 != d2:
                    continue
            first = _name(ctx, prev)
            second = _name(ctx, n)
            why = (
                "the second does nothing"
                if kind in IDEMPOTENT
                else "the second flattens the distribution towards uniform"
                if kind == "softmax"
                else "the second squashes the values again and shrinks their gradients"
            )
            yield Finding(
                f"{kind} applied twice in a row ({first}, then {second}): {why}; drop one of them",
                line=ctx.best_line(n),
                module=n.target if n.op == "call_module" else n.scope,
                evidence={"activation": kind, "first": prev.target, "second": n.target},
            )


def _dim(ctx: GraphContext, n):
    if n.op == "call_module":
        return getattr(ctx.module(n.target), "dim", None)
    return n.args.get("dim")


def _name(ctx: GraphContext, n) -> str:
    if n.op == "call_module":
        return f"{n.target} ({n.module_type})"
    return f"{n.target}() at line {n.line}" if n.line else f"{n.target}()"
