from __future__ import annotations

from collections.abc import Iterator

from nnlint.analysis.syntax import line_of, short_expr
from nnlint.analysis.value_flow import flow, loss_name
from nnlint.contexts.source import SourceContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid


class LossHeadMismatch(SourceRule):
    """## What it does
    Flags a loss that does not fit the output head it is given, where both the head's
    width (the `out_features` of its last Linear, or `out_channels` of its last Conv, from a
    literal, a module constant or a default argument) and the loss are in the file:

    - a binary loss (`BCELoss`, `BCEWithLogitsLoss`) on a head with k > 2 units and integer
      class-index targets (`torch.randint(0, k, (n,))`, `.long()`);
    - `CrossEntropyLoss` / `NLLLoss` on a 1-unit head;
    - `MSELoss` between a k > 1 unit head and integer class indices.

    ## Why is this bad?
    Each loss encodes a task. Class indices with a k-unit head mean single-label
    classification: a binary loss then compares every unit with the same index (or fails
    on shapes), `MSELoss` regresses the index as if class 7 were "more" than class 3 and
    broadcasts a (n,) target against (n, k) outputs. A softmax over a single unit is
    always 1: `CrossEntropyLoss` on a 1-unit head has zero loss and zero gradient, and the
    model learns nothing.

    ## Example
    ```python
    self.head = nn.Linear(128, 10)
    criterion = nn.BCEWithLogitsLoss()
    loss = criterion(model(x), labels.long())      # labels: class indices
    ```

    ## Use instead
    ```python
    self.head = nn.Linear(128, 10)
    criterion = nn.CrossEntropyLoss()
    loss = criterion(model(x), labels.long())
    # binary task: nn.Linear(128, 1) with BCEWithLogitsLoss and float targets
    ```

    ## References
    - PyTorch docs, `torch.nn.CrossEntropyLoss` (input `(N, C)`, target class indices in
      `[0, C)`), `torch.nn.BCEWithLogitsLoss` (target of the same shape as the input).
    - Slav Ivanov, "37 Reasons why your Neural Network is not working" (section "Verify loss
      input").
    - Andrej Karpathy, "A Recipe for Training Neural Networks" (2019).
    """

    code = "NN107"
    name = "loss-head-mismatch"
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            import torch.nn as nn

            class Tagger(nn.Module):
                def __init__(self, num_labels=10):
                    super().__init__()
                    self.fc = nn.Linear(128, num_labels)

                def forward(self, x):
                    return self.fc(x)

            def train(model, loader):
                criterion = nn.BCEWithLogitsLoss()
                for x, labels in loader:
                    loss = criterion(model(x), labels.float())
            """,
            note="multi-label with float (multi-hot) targets",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 1))
            criterion = nn.BCEWithLogitsLoss()
            x = torch.randn(32, 20)
            y = torch.randint(0, 2, (32,))
            loss = criterion(model(x).squeeze(1), y.float())
            """,
            note="binary loss with a 1-unit head",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(64, 2)

                def forward(self, x):
                    return self.fc(x)

            def step(model, x, y):
                return F.cross_entropy(model(x), y.long())
            """,
            note="CrossEntropy with k >= 2 (binary as 2 classes)",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            head = nn.Linear(256, 10)
            criterion = nn.BCEWithLogitsLoss()

            def step(feats, y):
                target = torch.zeros(y.size(0), 10).scatter_(1, y.unsqueeze(1), 1.0)
                return criterion(head(feats), target)
            """,
            note="one-hot float targets built with scatter_",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            head = nn.Linear(256, 10)

            def step(feats, y):
                return F.binary_cross_entropy_with_logits(head(feats), F.one_hot(y, 10).float())
            """,
            note="one-hot targets",
        ),
        Valid(
            """
            import torch.nn as nn

            class Classifier(nn.Module):
                def __init__(self, num_classes=10):
                    super().__init__()
                    self.head = nn.Linear(128, num_classes)

                def forward(self, x):
                    return self.head(x)

            model = Classifier(num_classes=1)
            criterion = nn.BCEWithLogitsLoss()

            def step(x, labels):
                return criterion(model(x), labels.long())
            """,
            note="the default width is overridden where the model is built",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Pointer(nn.Module):
                def __init__(self, d):
                    super().__init__()
                    self.score = nn.Linear(d, 1)

                def forward(self, h):
                    return self.score(h).squeeze(-1)

            def step(model, h, start_positions):
                return F.cross_entropy(model(h), start_positions)
            """,
            note="a 1-unit scorer squeezed to (N, T): CrossEntropy over positions",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
            loss = nn.MSELoss()(model(torch.randn(16, 8)), torch.randn(16, 1))
            """,
            note="regression: MSE on a 1-unit head with float targets",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 12))
            targets = torch.randint(0, 2, (16, 12)).float()
            loss = nn.BCEWithLogitsLoss()(model(torch.randn(16, 8)), targets)
            """,
            note="random multi-hot targets (a 2-D randint)",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Classifier(nn.Module):
                def __init__(self, num_classes: int = 10):
                    super().__init__()
                    self.body = nn.Sequential(nn.Linear(64, 128), nn.ReLU())
                    self.head = nn.Linear(128, num_classes)

                def forward(self, x):
                    return self.head(self.body(x))

            def train(model, loader, optimizer):
                criterion = nn.BCEWithLogitsLoss()
                for features, labels in loader:
                    logits = model(features)
                    loss = criterion(logits, labels.long())
            """,
            line=17,
            contains="CrossEntropyLoss",
        ),
        Invalid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(32, 1)

                def forward(self, x):
                    return self.fc(x)

            def step(model, x, y):
                return F.cross_entropy(model(x), y)
            """,
            line=13,
            contains="1 unit",
        ),
        Invalid(
            """
            import torch
            from torch import nn

            model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10))
            mse = nn.MSELoss()
            x = torch.randn(64, 20)
            y = torch.randint(0, 10, (64,))
            loss = mse(model(x), y.float())
            """,
            line=8,
            contains="class indices",
        ),
        Invalid(
            """
            import torch
            import torch.nn.functional as F
            from torch.nn import Linear, Module

            class Net(Module):
                def __init__(self):
                    super().__init__()
                    self.out = Linear(16, 4)

                def forward(self, x):
                    return torch.sigmoid(self.out(x))

            net = Net()
            labels = torch.tensor([0, 3, 1, 2])
            loss = F.binary_cross_entropy(net(torch.randn(4, 16)), labels)
            """,
            line=15,
            contains="4-unit",
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        seen: set[int] = set()
        for u in flow(ctx).losses:
            v, t = u.input, u.target
            if id(u.call) in seen or v.k is None:
                continue
            if u.kind in ("ce", "nll") and v.k == 1:
                problem = "one-unit"
            elif u.kind in ("bce", "bcewl") and v.k > 2 and t.target == "index":
                problem = "binary"
            elif u.kind == "mse" and v.k > 1 and t.target == "index":
                problem = "mse"
            else:
                continue
            seen.add(id(u.call))
            yield Finding(self._message(ctx, u, problem), node=u.call, model=v.model)

    @staticmethod
    def _message(ctx: SourceContext, u, problem: str) -> str:
        v = u.input
        name = f"`{short_expr(ctx, u.input_expr)}`"
        head = f"{short_expr(ctx, v.head)}, line {line_of(ctx, v.head)}" if v.head is not None else "its head"
        wide = f"a {v.k}-unit head ({head})" if v.head is not None else f"a {v.k}-unit head"
        owner = f" (the output of {v.model})" if v.model else ""
        tgt = f"`{short_expr(ctx, u.target_expr)}`" if u.target_expr is not None else "the targets"
        if problem == "one-unit":
            return (
                f"{name}{owner} has 1 unit ({head}) but {loss_name(u)} needs one score per class: a "
                "softmax over one unit is always 1, so the loss and its gradient are 0; use "
                "BCEWithLogitsLoss with float targets for a binary task, or give the head 2+ outputs"
            )
        if problem == "binary":
            return (
                f"{loss_name(u)} is a binary loss, but {name}{owner} comes from {wide} and {tgt} "
                f"holds integer class indices (single-label): use CrossEntropyLoss on the logits, or "
                "one-hot/multi-hot float targets if the task is multi-label"
            )
        return (
            f"{loss_name(u)} compares {name}{owner}, {wide}, with {tgt}, which holds integer "
            "class indices: regression on class indices treats classes as ordered numbers and "
            "broadcasts the shapes; use CrossEntropyLoss on the logits"
        )
