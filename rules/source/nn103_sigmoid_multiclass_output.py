from __future__ import annotations

from collections.abc import Iterator

from nnlint.analysis.syntax import line_of
from nnlint.analysis.value_flow import flow, loss_name
from nnlint.contexts.source import SourceContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid


class SigmoidMulticlassOutput(SourceRule):
    """## What it does
    Flags an output head with k > 1 units that ends in a sigmoid when the file shows that
    the task is single-label multi-class: the sigmoid output goes to `CrossEntropyLoss` /
    `NLLLoss`, or the model's predictions are taken with `argmax` / `torch.max(out, 1)` and
    scored as single labels (`pred == y`, `pred.eq(target)`, an accuracy metric) while no
    binary (multi-label) loss appears in the file. The diagnostic points at the
    sigmoid; the message names the loss or the prediction.

    ## Why is this bad?
    A sigmoid scores each class independently: the k outputs do not compete and do not sum
    to 1. With a single-label loss the sigmoid squeezes the logits into (0, 1) before the
    loss's own softmax, so the predicted distribution is nearly uniform, the loss cannot
    decrease past a floor and gradients vanish for saturated units. The single-label
    pairing is raw logits with `CrossEntropyLoss` (softmax inside), or `log_softmax` with
    `NLLLoss`. A sigmoid head is right for multi-label tasks (several classes per sample,
    BCE loss), for gates and attention weights, and for a 1-unit binary head.

    ## Example
    ```python
    self.head = nn.Sequential(nn.Linear(128, 10), nn.Sigmoid())
    ...
    loss = nn.CrossEntropyLoss()(model(x), y)       # y: class indices
    ```

    ## Use instead
    ```python
    self.head = nn.Linear(128, 10)                   # logits
    ...
    loss = nn.CrossEntropyLoss()(model(x), y)
    ```

    ## References
    - PyTorch docs, `torch.nn.CrossEntropyLoss`: "The input is expected to contain the
      unnormalized logits for each class"; `torch.nn.BCEWithLogitsLoss` for multi-label.
    - Slav Ivanov, "37 Reasons why your Neural Network is not working" (section "Verify loss
      input": pass the loss what it expects).
    - Andrej Karpathy, "A Recipe for Training Neural Networks" (2019): verify the loss at
      init and the output layer.
    """

    code = "NN103"
    name = "sigmoid-multiclass-output"
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class ChestNet(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.features = nn.Linear(1024, 256)
                    self.head = nn.Linear(256, 14)

                def forward(self, x):
                    return torch.sigmoid(self.head(torch.relu(self.features(x))))

            model = ChestNet()
            criterion = nn.BCELoss()

            def step(x, labels):
                out = model(x)
                loss = criterion(out, labels.float())
                top = out.argmax(1)
                return loss, top
            """,
            note="multi-label: a sigmoid head with k outputs and BCELoss",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 6))
            criterion = nn.BCEWithLogitsLoss()

            def step(x, multi_hot):
                logits = model(x)
                loss = criterion(logits, multi_hot)
                probs = torch.sigmoid(logits)
                return loss, probs.argmax(dim=1)
            """,
            note="multi-label with BCEWithLogits; sigmoid only at prediction time",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class GatedNet(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(32, 64)
                    self.gate = nn.Linear(32, 64)
                    self.out = nn.Linear(64, 10)

                def forward(self, x):
                    h = self.fc(x) * torch.sigmoid(self.gate(x))
                    return self.out(h)

            def step(model, x, y):
                return F.cross_entropy(model(x), y)
            """,
            note="a sigmoid gate inside the network",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Binary(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(20, 1)

                def forward(self, x):
                    return torch.sigmoid(self.fc(x))

            model = Binary()
            criterion = nn.BCELoss()

            def step(x, y):
                out = model(x)
                return criterion(out, y), (out > 0.5).long()
            """,
            note="sigmoid on a 1-unit binary head",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class AttnPool(nn.Module):
                def __init__(self, d, k):
                    super().__init__()
                    self.score = nn.Linear(d, 8)
                    self.fc = nn.Linear(d, k)

                def forward(self, h):
                    w = torch.sigmoid(self.score(h))
                    pooled = (w.unsqueeze(-1) * h.unsqueeze(2)).sum(1).mean(1)
                    return self.fc(pooled)

            def step(model, h, y):
                out = model(h)
                return F.cross_entropy(out, y), out.argmax(-1)
            """,
            note="sigmoid attention weights, final Linear",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Tagger(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.head = nn.Sequential(nn.Linear(300, 20), nn.Sigmoid())

                def forward(self, x):
                    return self.head(x)

            tagger = Tagger()

            def step(x, multi_hot):
                p = tagger(x)
                loss = -(multi_hot * torch.log(p) + (1 - multi_hot) * torch.log(1 - p)).mean()
                top_tag = p.argmax(dim=1)
                return loss, top_tag
            """,
            note="multi-label with a hand-written BCE; argmax only to display the top tag",
        ),
        Valid(
            """
            import torch.nn as nn

            class Tagger(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.net = nn.Sequential(nn.Linear(300, 20), nn.Sigmoid())

                def forward(self, x):
                    return self.net(x)
            """,
            note="no loss and no prediction in the file: the task is unknown",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(784, 128)
                    self.fc2 = nn.Linear(128, 10)

                def forward(self, x):
                    x = torch.relu(self.fc1(x))
                    return torch.sigmoid(self.fc2(x))

            model = Net()
            criterion = nn.CrossEntropyLoss()

            def step(x, y):
                return criterion(model(x), y)
            """,
            line=12,
            contains="10 units",
        ),
        Invalid(
            """
            from torch import nn

            NUM_CLASSES = 5

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = nn.Sequential(nn.Linear(40, 64), nn.ReLU())
                    self.head = nn.Sequential(
                        nn.Linear(64, NUM_CLASSES),
                        nn.Sigmoid(),
                    )

                def forward(self, x):
                    return self.head(self.body(x))

            def evaluate(model, loader):
                correct = 0
                for x, y in loader:
                    pred = model(x).argmax(dim=1)
                    correct += (pred == y).sum().item()
                return correct
            """,
            line=11,
            contains="argmax",
        ),
        Invalid(
            """
            import torch
            import torch.nn.functional as F

            class Classifier(torch.nn.Module):
                def __init__(self, num_classes=100):
                    super().__init__()
                    self.classifier = torch.nn.Linear(512, num_classes)

                def forward(self, feats):
                    return self.classifier(feats).sigmoid()

            def train_step(model, feats, labels, opt):
                out = model(feats)
                loss = F.cross_entropy(out, labels)
                loss.backward()
            """,
            line=10,
            contains="F.cross_entropy (line 14)",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3), nn.Sigmoid())

            def evaluate(loader):
                correct = 0
                with torch.no_grad():
                    for x, labels in loader:
                        scores = model(x)
                        _, predicted = torch.max(scores, 1)
                        correct += (predicted == labels).sum().item()
                return correct
            """,
            line=4,
            contains="3 units",
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        fl = flow(ctx)
        binary_heads = {
            id(u.input.at) for u in fl.losses if u.kind in ("bce", "bcewl", "mse") and u.input.at is not None
        }
        any_binary_loss = any(u.kind in ("bce", "bcewl") for u in fl.losses)
        seen: set[int] = set()
        for u in fl.losses:
            v = u.input
            if u.kind not in ("ce", "nll") or v.tag != "sigmoid" or v.at is None or v.k == 1:
                continue
            if id(v.at) in seen or id(v.at) in binary_heads:
                continue
            seen.add(id(v.at))
            yield Finding(
                self._message(ctx, v, f"{loss_name(u)} (line {line_of(ctx, u.call)}) trains it as single-label"),
                node=v.at,
                model=v.model,
            )
        if any_binary_loss:
            return
        for p in fl.preds:
            v = p.val
            if not p.compared or v.tag != "sigmoid" or v.model is None or v.k is None or v.k < 2 or v.at is None:
                continue
            if id(v.at) in seen:
                continue
            seen.add(id(v.at))
            yield Finding(
                self._message(
                    ctx,
                    v,
                    f"its predictions are taken with argmax (line {line_of(ctx, p.node)}) "
                    "and scored as single labels, and no BCE loss is in the file",
                ),
                node=v.at,
                model=v.model,
            )

    @staticmethod
    def _message(ctx: SourceContext, v, why: str) -> str:
        units = f"{v.k} units" if v.k else "several units"
        owner = f" of {v.model}" if v.model else ""
        return (
            f"the output head{owner} has {units} and ends in {v.act}, but {why}: sigmoid scores the "
            "classes independently and squashes the logits; return raw logits for CrossEntropyLoss "
            "(or log_softmax for NLLLoss), and keep sigmoid for multi-label BCE setups"
        )
