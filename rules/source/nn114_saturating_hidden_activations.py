from __future__ import annotations

from collections.abc import Iterator

from nnlint.analysis.structure import Op, structure
from nnlint.analysis.torch_kinds import AFFINE_KINDS, SATURATING, short
from nnlint.contexts.source import SourceContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid


def saturating_runs(ops: list[Op]) -> Iterator[tuple[list[Op], list[Op]]]:
    """Maximal runs ``affine (dropout*) sat (dropout*) affine ...`` where every activation
    between two affine layers is sigmoid/tanh: (affine layers, hidden activations)."""
    i, n = 0, len(ops)
    while i < n:
        if ops[i].kind not in AFFINE_KINDS:
            i += 1
            continue
        layers, acts = [ops[i]], []
        j = i + 1
        while True:
            k = j
            while k < n and ops[k].kind == "dropout":
                k += 1
            if k < n and ops[k].kind == "act" and ops[k].act in SATURATING:
                act = ops[k]
                k += 1
                while k < n and ops[k].kind == "dropout":
                    k += 1
                if k < n and ops[k].kind in AFFINE_KINDS:
                    acts.append(act)
                    layers.append(ops[k])
                    j = k + 1
                    continue
            break
        yield layers, acts
        i = j


class SaturatingHiddenActivations(SourceRule):
    """## What it does
    Flags a stack of 4 or more Linear/Conv layers whose hidden activations are all sigmoid
    or tanh, with no normalization layer and no residual connection between them, in an
    `nn.Sequential(...)` or in a `forward` chain (`torch.tanh(self.fc2(torch.tanh(self.fc1(x))))`).

    ## Why is this bad?
    sigmoid's derivative is at most 0.25 and tanh's at most 1, and both are ~0 once a unit
    saturates. Backpropagation multiplies one such factor per layer, so in a deep plain stack
    the gradient reaching the first layers shrinks geometrically (the vanishing-gradient
    problem): early layers barely learn and training stalls. ReLU-family activations, or a
    normalization layer (BatchNorm/LayerNorm) or residual connections between the layers,
    keep the gradient alive. Gates (LSTM/GRU, `x * torch.sigmoid(g)`, GLU/SiLU), attention
    and a sigmoid/tanh on the output layer are fine and not flagged.

    ## Example
    ```python
    self.net = nn.Sequential(
        nn.Linear(784, 256), nn.Sigmoid(),
        nn.Linear(256, 256), nn.Sigmoid(),
        nn.Linear(256, 256), nn.Sigmoid(),
        nn.Linear(256, 10),
    )
    ```

    ## Use instead
    ```python
    self.net = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(),
        nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, 10),
    )
    ```

    ## References
    - Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
      networks", AISTATS 2010 (saturation of sigmoid/tanh in deep nets).
    - Hochreiter et al., "Gradient Flow in Recurrent Nets: the Difficulty of Learning
      Long-Term Dependencies", 2001.
    - Karpathy, "Yes you should understand backprop" (2016): the sigmoid/tanh vanishing
      gradient; "A Recipe for Training Neural Networks" (2019).
    """

    code = "NN114"
    name = "saturating-hidden-activations"
    severity = Severity.WARNING
    thresholds = {"min_layers": 4}

    VALID = [
        Valid(
            """
            import torch.nn as nn

            net = nn.Sequential(
                nn.Linear(784, 256), nn.Tanh(),
                nn.Linear(256, 256), nn.Tanh(),
                nn.Linear(256, 10),
            )
            """,
            note="shallow: 3 layers",
        ),
        Valid(
            """
            import torch.nn as nn

            net = nn.Sequential(
                nn.Linear(784, 256), nn.BatchNorm1d(256), nn.Sigmoid(),
                nn.Linear(256, 256), nn.BatchNorm1d(256), nn.Sigmoid(),
                nn.Linear(256, 256), nn.BatchNorm1d(256), nn.Sigmoid(),
                nn.Linear(256, 10),
            )
            """,
            note="normalization between the layers",
        ),
        Valid(
            """
            import torch.nn as nn

            net = nn.Sequential(
                nn.Linear(784, 256), nn.ReLU(),
                nn.Linear(256, 256), nn.ReLU(),
                nn.Linear(256, 256), nn.ReLU(),
                nn.Linear(256, 1), nn.Sigmoid(),
            )
            """,
            note="sigmoid only at the output layer",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class GatedMLP(nn.Module):
                def __init__(self, d):
                    super().__init__()
                    self.fc1 = nn.Linear(d, d)
                    self.gate = nn.Linear(d, d)
                    self.fc2 = nn.Linear(d, d)
                    self.fc3 = nn.Linear(d, d)

                def forward(self, x):
                    h = self.fc1(x) * torch.sigmoid(self.gate(x))
                    h = self.fc2(h) * torch.sigmoid(self.gate(h))
                    return self.fc3(h)
            """,
            note="sigmoid gates",
        ),
        Valid(
            """
            import torch.nn as nn

            class Seq(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.lstm = nn.LSTM(32, 64, num_layers=4)
                    self.out = nn.Linear(64, 10)

                def forward(self, x):
                    h, _ = self.lstm(x)
                    return self.out(h.tanh())
            """,
            note="recurrent gates, tanh before the output layer",
        ),
        Valid(
            """
            import torch
            from torch import nn

            class ResMLP(nn.Module):
                def __init__(self, d):
                    super().__init__()
                    self.fc1 = nn.Linear(d, d)
                    self.fc2 = nn.Linear(d, d)
                    self.fc3 = nn.Linear(d, d)
                    self.fc4 = nn.Linear(d, d)

                def forward(self, x):
                    x = x + torch.tanh(self.fc1(x))
                    x = x + torch.tanh(self.fc2(x))
                    x = x + torch.tanh(self.fc3(x))
                    return self.fc4(x)
            """,
            note="residual connections around each layer",
        ),
        Valid(
            """
            import torch.nn as nn

            class Block(nn.Module):
                def __init__(self, d):
                    super().__init__()
                    self.f = nn.Sequential(
                        nn.Linear(d, d), nn.Tanh(), nn.Linear(d, d), nn.Tanh(),
                        nn.Linear(d, d), nn.Tanh(), nn.Linear(d, d),
                    )

                def forward(self, x):
                    return x + self.f(x)
            """,
            note="residual branch",
        ),
        Valid(
            """
            import torch.nn as nn

            class Attn(nn.Module):
                def __init__(self, d):
                    super().__init__()
                    self.q = nn.Linear(d, d)
                    self.k = nn.Linear(d, d)
                    self.v = nn.Linear(d, d)
                    self.o = nn.Linear(d, d)

                def forward(self, x):
                    a = (self.q(x) @ self.k(x).transpose(-2, -1)).softmax(-1)
                    return self.o(a @ self.v(x))
            """,
            note="attention",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn

            net = nn.Sequential(
                nn.Linear(784, 256),
                nn.Sigmoid(),
                nn.Linear(256, 256),
                nn.Sigmoid(),
                nn.Linear(256, 256),
                nn.Sigmoid(),
                nn.Linear(256, 10),
            )
            """,
            line=5,
            contains="sigmoid",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class MLP(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(32, 64)
                    self.fc2 = nn.Linear(64, 64)
                    self.fc3 = nn.Linear(64, 64)
                    self.fc4 = nn.Linear(64, 2)

                def forward(self, x):
                    x = torch.tanh(self.fc1(x))
                    x = torch.tanh(self.fc2(x))
                    x = torch.tanh(self.fc3(x))
                    return self.fc4(x)
            """,
            line=13,
            contains="fc1",
        ),
        Invalid(
            """
            from torch.nn import Conv2d, Sequential, Tanh, Dropout

            features = Sequential(
                Conv2d(1, 8, 3), Tanh(),
                Conv2d(8, 8, 3), Tanh(), Dropout(0.1),
                Conv2d(8, 8, 3), Tanh(),
                Conv2d(8, 8, 3), Tanh(),
            )
            """,
            line=4,
            contains="tanh",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class MLP(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.l1 = nn.Linear(8, 8)
                    self.l2 = nn.Linear(8, 8)
                    self.l3 = nn.Linear(8, 8)
                    self.l4 = nn.Linear(8, 1)

                def forward(self, x):
                    h = F.sigmoid(self.l1(x))
                    h = self.l2(h).sigmoid()
                    h = torch.nn.functional.sigmoid(self.l3(h))
                    return self.l4(h)
            """,
            line=14,
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        min_layers = int(self.threshold.get("min_layers", 4))
        st = structure(ctx)
        seen: set[int] = set()
        for chain in st.chains():
            if chain.origin == "sequential" and chain.cls is not None and st.class_has_residual(chain.cls):
                continue  # the Sequential may be a residual branch
            for layers, acts in saturating_runs(chain.ops):
                if len(layers) < min_layers or not acts:
                    continue
                if chain.cls is not None and chain.origin != "sequential" and st.class_has_residual(chain.cls):
                    # a Sequential attribute expanded inside forward: maybe a residual branch
                    branch = {id(e) for a in st.attrs(chain.cls).values() if a.elements for e in a.elements}
                    if all(id(op) in branch for op in layers):
                        continue
                first = acts[0]
                where = first.site if first.site is not None else first.node
                if id(where) in seen:
                    continue
                seen.add(id(where))
                act_names = sorted({a.act for a in acts if a.act})
                names = [
                    f"self.{op.attr}" if op.attr else short(ctx.qualname(op.ctor.func)) if op.ctor else op.label
                    for op in layers
                ]
                kind = (
                    "Conv"
                    if all(op.kind == "conv" for op in layers)
                    else "Linear"
                    if all(op.kind == "linear" for op in layers)
                    else "Linear/Conv"
                )
                yield Finding(
                    f"{'/'.join(act_names)} is the hidden activation of {len(layers)} stacked {kind} layers "
                    f"({names[0]} … {names[-1]}) with no normalization or residual between them: its gradient "
                    f"(≤{'0.25' if act_names == ['sigmoid'] else '1'} per layer, ~0 when saturated) vanishes in the "
                    f"first layers; use ReLU/GELU for hidden layers, or add BatchNorm/LayerNorm between them",
                    node=where,
                    model=chain.cls.name if chain.cls else None,
                    evidence={"layers": len(layers)},
                )
