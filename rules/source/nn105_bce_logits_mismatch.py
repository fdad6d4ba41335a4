from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from nnlint import fixes
from nnlint.analysis.value_flow import describe, flow, loss_name
from nnlint.contexts.source import SourceContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid


class BceLogitsMismatch(SourceRule):
    """## What it does
    Flags `BCELoss` / `F.binary_cross_entropy` fed raw logits (the output of a
    Linear/Conv layer, or of a model whose `forward` ends in one, with no sigmoid after it),
    and `BCEWithLogitsLoss` / `F.binary_cross_entropy_with_logits` fed values that already
    went through a sigmoid.

    ## Why is this bad?
    `BCELoss` expects probabilities in [0, 1]: on raw logits it computes `log` of negative
    numbers or of values above 1 (NaN, or a runtime error on CUDA), or trains on a
    meaningless objective. `BCEWithLogitsLoss` applies the sigmoid itself: given sigmoid
    outputs it squashes twice, so its predictions live in [0.5, 0.73], the loss never gets
    near zero and the gradients vanish.

    ## Example
    ```python
    out = model(x)                      # forward ends in nn.Linear(64, 1)
    loss = nn.BCELoss()(out, y)

    probs = torch.sigmoid(model(x))
    loss = nn.BCEWithLogitsLoss()(probs, y)
    ```

    ## Use instead
    ```python
    logits = model(x)
    loss = nn.BCEWithLogitsLoss()(logits, y)   # numerically stable
    probs = torch.sigmoid(logits)              # only for predictions
    ```

    ## References
    - PyTorch docs, `torch.nn.BCEWithLogitsLoss`: "This loss combines a Sigmoid layer and
      the BCELoss in one single class ... more numerically stable".
    - PyTorch docs, `torch.nn.BCELoss` (inputs are probabilities).
    - Slav Ivanov, "37 Reasons why your Neural Network is not working" (section "Verify loss
      input").
    """

    code = "NN105"
    name = "bce-logits-mismatch"
    fix_applicability = "unsafe"
    fix_summary = "swap `BCELoss` ↔ `BCEWithLogitsLoss` (`F.binary_cross_entropy` ↔ `..._with_logits`) where the loss is built; not with `pos_weight=`"
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(64, 1)

                def forward(self, x):
                    return self.fc(x)

            model = Net()
            criterion = nn.BCEWithLogitsLoss()

            def step(x, y):
                return criterion(model(x), y.float())
            """,
            note="BCEWithLogitsLoss on raw logits",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(64, 1)

                def forward(self, x):
                    return torch.sigmoid(self.fc(x))

            model = Net()
            criterion = nn.BCELoss()

            def step(x, y):
                return criterion(model(x), y)
            """,
            note="BCELoss after sigmoid",
        ),
        Valid(
            """
            import torch
            import torch.nn.functional as F

            def step(model, x, y):
                logits = model(x)
                probs = logits.sigmoid()
                probs = torch.clamp(probs, 1e-7, 1 - 1e-7)
                return F.binary_cross_entropy(probs, y)
            """,
            note="clamped probabilities are still probabilities",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Gated(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(32, 8)
                    self.gate = nn.Linear(32, 8)

                def forward(self, x):
                    return self.fc(x) * torch.sigmoid(self.gate(x))

            def step(model, x, y):
                return F.binary_cross_entropy_with_logits(model(x), y)
            """,
            note="a sigmoid gate inside the model: the output is not a sigmoid output",
        ),
        Valid(
            """
            import torch.nn as nn

            head = nn.Sequential(nn.Linear(128, 10), nn.Sigmoid())
            bce = nn.BCELoss()

            def step(feats, multi_hot):
                return bce(head(feats), multi_hot.float())
            """,
            note="multi-label head ending in Sigmoid with BCELoss",
        ),
        Valid(
            """
            import torch.nn.functional as F

            def step(model, x, y):
                out = model(x)
                return F.binary_cross_entropy(out, y)
            """,
            note="the model is not in this file: unknown, stay silent",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(64, 1)

                def forward(self, x):
                    return self.fc(x)

            model = Net()
            criterion = nn.BCELoss()

            def step(x, y):
                out = model(x)
                return criterion(out, y)
            """,
            line=16,
            contains="BCEWithLogitsLoss",
        ),
        Invalid(
            """
            import torch
            from torch import nn

            model = nn.Sequential(nn.Linear(20, 1), nn.Sigmoid())
            loss_fn = nn.BCEWithLogitsLoss()

            for x, y in loader:
                loss = loss_fn(model(x), y)
            """,
            line=8,
            contains="double sigmoid",
        ),
        Invalid(
            """
            import torch
            import torch.nn.functional as F

            def step(logits, y):
                probs = torch.sigmoid(logits)
                return F.binary_cross_entropy_with_logits(probs, y)
            """,
            line=6,
            contains="`probs` went through sigmoid (line 5)",
        ),
        Invalid(
            """
            import torch.nn as nn
            import torch.nn.functional as fn

            class Seg(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = nn.Conv2d(3, 16, 3, padding=1)
                    self.out = nn.Conv2d(16, 1, 1)

                def forward(self, x):
                    return self.out(fn.relu(self.body(x)))

            def dice_bce(model, img, mask):
                pred = model(img)
                return fn.binary_cross_entropy(pred, mask)
            """,
            line=15,
            contains="raw logits",
        ),
        Invalid(
            """
            import torch.nn as nn

            class SegHead(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(16, 1, 1)
                    self.up = nn.Upsample(scale_factor=4, mode="bilinear")

                def forward(self, x):
                    return self.up(self.conv(x))

            model = SegHead()
            criterion = nn.BCELoss()

            def step(x, mask):
                return criterion(model(x), mask)
            """,
            line=16,
            contains="BCEWithLogitsLoss",
            note="the conv's logits pass through nn.Upsample first: still logits",
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        seen: set[int] = set()
        for u in flow(ctx).losses:
            v = u.input
            if id(u.call) in seen:
                continue
            if u.kind == "bce" and v.tag == "logits":
                msg = (
                    f"{describe(ctx, u.input_expr, v, verb='is raw logits from')} with no sigmoid, but "
                    f"{loss_name(u)} expects probabilities: use BCEWithLogitsLoss on the logits "
                    "(numerically stable), or apply torch.sigmoid first"
                )
            elif u.kind == "bcewl" and v.tag == "sigmoid":
                msg = (
                    f"{describe(ctx, u.input_expr, v)} and is passed to {loss_name(u)}, which applies "
                    "sigmoid itself (double sigmoid): pass the logits, or use BCELoss on the probabilities"
                )
            else:
                continue
            seen.add(id(u.call))
            yield Finding(msg, node=u.call, model=v.model, fix=self._fix(ctx, u))

    def _fix(self, ctx: SourceContext, u):
        """Swap BCELoss <-> BCEWithLogitsLoss (F.binary_cross_entropy <-> ..._with_logits) where
        the loss is built or called; not when pos_weight= (BCELoss has none) is passed."""
        names = {
            "BCELoss": "BCEWithLogitsLoss",
            "BCEWithLogitsLoss": "BCELoss",
            "binary_cross_entropy": "binary_cross_entropy_with_logits",
            "binary_cross_entropy_with_logits": "binary_cross_entropy",
        }
        call = u.ctor if isinstance(u.ctor, cst.Call) else u.call
        if not isinstance(call.func, cst.Attribute) or call.func.attr.value not in names:
            return None
        if any(a.keyword is not None and a.keyword.value == "pos_weight" for a in call.args):
            return None
        new = names[call.func.attr.value]
        return self.make_fix(f"use {new}", fixes.replace(ctx, call.func.attr, new))
