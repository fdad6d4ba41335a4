from __future__ import annotations

from collections.abc import Iterator

from nnlint import fixes
from nnlint.analysis.syntax import line_of, short_expr
from nnlint.analysis.value_flow import flow, loss_name
from nnlint.contexts.source import SourceContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid


class ActivationOnLogits(SourceRule):
    """## What it does
    Flags a ReLU (or another non-identity activation: GELU, ELU, LeakyReLU, Softplus,
    Tanh...) applied after the final layer when that output feeds a loss that expects
    logits: `CrossEntropyLoss` / `F.cross_entropy` or `BCEWithLogitsLoss` /
    `F.binary_cross_entropy_with_logits`. The diagnostic points at the activation; the
    message names the loss call.

    ## Why is this bad?
    Logits must be free to take any real value. A ReLU clips every negative logit to 0, so
    the model cannot express "this class is unlikely" below the zero level, and a unit
    whose pre-activation is negative gets no gradient at all (it dies); a tanh bounds
    the logits to [-1, 1], so the predicted probabilities can never become confident and
    the loss plateaus. Training runs, but converges slowly to a worse model.

    ## Example
    ```python
    def forward(self, x):
        x = F.relu(self.fc1(x))
        return F.relu(self.fc2(x))      # final layer

    loss = nn.CrossEntropyLoss()(model(x), y)
    ```

    ## Use instead
    ```python
    def forward(self, x):
        x = F.relu(self.fc1(x))
        return self.fc2(x)              # raw logits
    ```

    ## References
    - PyTorch docs, `torch.nn.CrossEntropyLoss`: "The input is expected to contain the
      unnormalized logits for each class"; `torch.nn.BCEWithLogitsLoss`.
    - Slav Ivanov, "37 Reasons why your Neural Network is not working" (section "Verify loss
      input").
    - Andrej Karpathy, "A Recipe for Training Neural Networks" (2019).
    """

    code = "NN113"
    name = "activation-on-logits"
    fix_applicability = "unsafe"  # the model's other callers may want the activation
    fix_summary = "remove the activation after the final layer"
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(784, 128)
                    self.fc2 = nn.Linear(128, 10)

                def forward(self, x):
                    x = F.relu(self.fc1(x))
                    return self.fc2(x)

            model = Net()
            criterion = nn.CrossEntropyLoss()

            def step(x, y):
                return criterion(model(x), y)
            """,
            note="ReLU inside hidden layers, final Linear",
        ),
        Valid(
            """
            from torch import nn

            model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.GELU(), nn.Linear(32, 3))
            loss_fn = nn.CrossEntropyLoss()

            def step(x, y):
                return loss_fn(model(x), y)
            """,
            note="activations before the final Linear",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Regressor(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(16, 1)

                def forward(self, x):
                    return F.relu(self.fc(x))

            def step(model, x, y):
                return F.mse_loss(model(x), y)
            """,
            note="ReLU output with an MSE regression loss (non-negative targets)",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 64)
                    self.fc2 = nn.Linear(64, 64)
                    self.fc3 = nn.Linear(64, 5)
                    self.relu = nn.ReLU()

                def forward(self, x):
                    x = self.relu(self.fc1(x))
                    x = self.relu(self.fc2(x))
                    return self.fc3(x)

            net = Net()
            criterion = nn.CrossEntropyLoss()

            def step(x, y):
                return criterion(net(x), y)
            """,
            note="one shared ReLU module used only between hidden layers",
        ),
        Valid(
            """
            import torch
            import torch.nn.functional as F

            def step(model, x, y):
                feats = torch.relu(model.backbone(x))
                logits = model.head(feats)
                return F.cross_entropy(logits, y)
            """,
            note="activation on features, not on the logits",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(8, 1)

                def forward(self, x):
                    return torch.sigmoid(self.fc(x))

            model = Net()
            criterion = nn.BCELoss()

            def step(x, y):
                return criterion(model(x), y)
            """,
            note="sigmoid with BCELoss is the right pairing (and sigmoid is NN105's business)",
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
                    self.fc1 = nn.Linear(784, 128)
                    self.fc2 = nn.Linear(128, 10)

                def forward(self, x):
                    x = F.relu(self.fc1(x))
                    return F.relu(self.fc2(x))

            def train(model, loader, opt):
                criterion = nn.CrossEntropyLoss()
                for x, y in loader:
                    loss = criterion(model(x), y)
            """,
            line=12,
            contains="line 17",
        ),
        Invalid(
            """
            from torch import nn

            model = nn.Sequential(
                nn.Linear(10, 32),
                nn.ReLU(),
                nn.Linear(32, 5),
                nn.ReLU(),
            )
            criterion = nn.BCEWithLogitsLoss()

            def step(x, y):
                return criterion(model(x), y)
            """,
            line=7,
            contains="BCEWithLogitsLoss",
        ),
        Invalid(
            """
            import torch
            from torch.nn import CrossEntropyLoss, GELU, Linear, Module

            class Head(Module):
                def __init__(self, num_classes=7):
                    super().__init__()
                    self.proj = Linear(256, num_classes)
                    self.act = GELU()

                def forward(self, x):
                    return self.act(self.proj(x))

            head = Head()
            loss_fn = CrossEntropyLoss()
            loss = loss_fn(head(torch.randn(4, 256)), torch.randint(0, 7, (4,)))
            """,
            line=11,
            contains="GELU",
        ),
        Invalid(
            """
            import torch
            import torch.nn.functional as F

            def step(model, x, y):
                out = torch.tanh(model(x))
                return F.cross_entropy(out, y)
            """,
            line=5,
            contains="tanh",
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        seen: set[int] = set()
        for u in flow(ctx).losses:
            v = u.input
            if u.kind not in ("ce", "bcewl") or v.tag != "act" or v.at is None or id(v.at) in seen:
                continue
            seen.add(id(v.at))
            if v.model:
                what = f"{v.act} at the end of {v.model} makes the logits"
            else:
                what = f"{v.act} makes `{short_expr(ctx, u.input_expr)}`, the logits"
            bounded = (v.act or "").lower() in ("tanh", "hardtanh", "softsign", "hardsigmoid")
            effect = "squashes them into a bounded range" if bounded else "cuts off their negative range"
            yield Finding(
                f"{what} that reach {loss_name(u)} (line {line_of(ctx, u.call)}), which expects unbounded "
                f"logits: {v.act} {effect}; remove the activation after the final layer",
                node=v.at,
                model=v.model,
                fix=self._fix(ctx, v),
            )

    def _fix(self, ctx: SourceContext, v):
        edit = fixes.drop_call(ctx, v.at)
        return self.make_fix(f"remove the {v.act} after the final layer", *edit) if edit else None
