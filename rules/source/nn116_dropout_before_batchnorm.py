from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from nnlint.analysis.structure import Op, structure
from nnlint.analysis.syntax import arg, line_of, number
from nnlint.analysis.torch_kinds import short
from nnlint.contexts.source import SourceContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid


def _label(ctx: SourceContext, op: Op) -> str:
    if op.attr:
        return f"self.{op.attr}"
    if op.ctor is not None:
        return f"{short(ctx.qualname(op.ctor.func))} (line {line_of(ctx, op.node)})"
    if isinstance(op.site, cst.Call):
        return f"{ctx.code(op.site.func)}(...)"
    return f"{short(op.label)}(...)"


class DropoutBeforeBatchNorm(SourceRule):
    """## What it does
    Flags a Dropout (`nn.Dropout*`, `F.dropout*`) whose output goes straight into a
    BatchNorm layer, in an `nn.Sequential(...)` or in `forward`.

    ## Why is this bad?
    In training, dropout zeroes units and rescales the survivors by `1/(1-p)`, which changes
    the variance of what BatchNorm sees; in eval mode dropout is the identity and the
    variance is different again. BatchNorm's running statistics, collected in training, no
    longer match its inputs at test time ("variance shift"), and the model gets worse in
    `eval()` than in `train()`. Put dropout after the BatchNorm (typically right before the
    next linear layer), or drop one of the two.

    ## Example
    ```python
    self.block = nn.Sequential(
        nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.5), nn.BatchNorm1d(256),
    )
    ```

    ## Use instead
    ```python
    self.block = nn.Sequential(
        nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.5),
    )
    ```

    ## References
    - Li, Chen, Hu & Yang, "Understanding the Disharmony between Dropout and Batch
      Normalization by Variance Shift", CVPR 2019.
    - PyTorch docs, `torch.nn.Dropout` and `torch.nn.BatchNorm1d` (running statistics are
      used in eval mode).
    """

    code = "NN116"
    name = "dropout-before-batchnorm"
    severity = Severity.WARNING

    VALID = [
        Valid(
            """
            import torch.nn as nn

            head = nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 10))
            """,
            note="dropout after batchnorm, before the next linear",
        ),
        Valid(
            """
            import torch.nn as nn

            head = nn.Sequential(nn.Dropout(0.2), nn.Linear(64, 64), nn.BatchNorm1d(64))
            """,
            note="dropout followed by a linear layer",
        ),
        Valid(
            """
            import torch.nn as nn

            class Block(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.drop = nn.Dropout(0.1)
                    self.ln = nn.LayerNorm(64)

                def forward(self, x):
                    return self.ln(self.drop(x))
            """,
            note="LayerNorm keeps no running statistics",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.drop = nn.Dropout(0.5)
                    self.bn = nn.BatchNorm1d(32)

                def forward(self, x):
                    y = self.drop(x)
                    return self.bn(x) + y
            """,
            note="the batchnorm reads the undropped input",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.bn = nn.BatchNorm2d(16)

                def forward(self, x):
                    x = self.bn(x)
                    return F.dropout(x, 0.5, training=self.training)
            """,
            note="dropout after batchnorm",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.bn = nn.BatchNorm1d(16)

                def forward(self, x):
                    return self.bn(F.dropout(x, 0.5, training=False))
            """,
            note="dropout switched off explicitly",
        ),
        Valid(
            """
            import torch.nn as nn

            def block(p=0.0):
                return nn.Sequential(nn.Linear(8, 8), nn.Dropout(p=0.0), nn.BatchNorm1d(8))
            """,
            note="p=0: dropout is the identity",
        ),
        Valid(
            """
            import torch.nn as nn
            from mylib.layers import Dropout

            block = nn.Sequential(nn.Linear(8, 8), Dropout(0.5), nn.BatchNorm1d(8))
            """,
            note="a Dropout that is not torch's (names resolve through imports)",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn

            block = nn.Sequential(
                nn.Linear(256, 256),
                nn.ReLU(),
                nn.Dropout(0.5),
                nn.BatchNorm1d(256),
            )
            """,
            line=6,
            contains="BatchNorm1d",
        ),
        Invalid(
            """
            import torch
            import torch.nn.functional as F

            class Net(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = torch.nn.Conv2d(3, 8, 3)
                    self.drop = torch.nn.Dropout2d(0.2)
                    self.bn = torch.nn.BatchNorm2d(8)

                def forward(self, x):
                    x = F.relu(self.conv(x))
                    x = self.drop(x)
                    x = self.bn(x)
                    return x
            """,
            line=13,
            contains="self.drop",
        ),
        Invalid(
            """
            from torch import nn
            from torch.nn import functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.bn = nn.BatchNorm1d(32)

                def forward(self, x):
                    return self.bn(F.dropout(x, p=0.3, training=self.training))
            """,
            line=10,
        ),
        Invalid(
            """
            from torch.nn import BatchNorm1d, Dropout, Linear, ReLU, Sequential

            mlp = Sequential(Linear(32, 32), ReLU(), Dropout(0.3), BatchNorm1d(32), Linear(32, 2))
            """,
            line=3,
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        seen: set[int] = set()
        for chain in structure(ctx).chains():
            ops = chain.ops
            for drop, norm in zip(ops, ops[1:]):
                if drop.kind != "dropout" or norm.kind != "batchnorm":
                    continue
                rate = (
                    arg(drop.ctor, 0, "p")
                    if drop.ctor is not None
                    else arg(drop.site, 1, "p")
                    if isinstance(drop.site, cst.Call)
                    else None
                )
                if number(rate) == 0:
                    continue  # p=0: an identity
                where = drop.site if drop.site is not None else drop.node
                if id(where) in seen:
                    continue
                seen.add(id(where))
                yield Finding(
                    f"{_label(ctx, drop)} feeds {_label(ctx, norm)} directly: dropout shifts the variance "
                    f"BatchNorm's running statistics are collected on, so eval() sees different statistics; "
                    f"move the dropout after the BatchNorm (before the next layer)",
                    node=where,
                    model=chain.cls.name if chain.cls else None,
                )
