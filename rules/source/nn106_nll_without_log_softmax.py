from __future__ import annotations

from collections.abc import Iterator

from nnlint.analysis.value_flow import describe, flow, loss_name
from nnlint.contexts.source import SourceContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid


class NllWithoutLogSoftmax(SourceRule):
    """## What it does
    Flags `NLLLoss` / `F.nll_loss` fed values that provably did not go through
    `log_softmax`: raw logits (a Linear/Conv output, or a model whose `forward` ends in
    one), `softmax` probabilities, sigmoid or ReLU-like outputs.

    ## Why is this bad?
    `NLLLoss` does not normalise anything: it returns `-input[target]`. It is only the
    negative log-likelihood when its input holds log-probabilities (`log_softmax`). On raw
    logits the loss is unbounded below: the model learns to push the target logit to
    infinity instead of learning the classes. On probabilities it maximises `p` rather than
    `log p`, a much weaker training signal.

    ## Example
    ```python
    def forward(self, x):
        return self.fc(x)

    loss = F.nll_loss(model(x), y)
    ```

    ## Use instead
    ```python
    def forward(self, x):
        return F.log_softmax(self.fc(x), dim=1)

    loss = F.nll_loss(model(x), y)     # or: F.cross_entropy(logits, y)
    ```

    ## References
    - PyTorch docs, `torch.nn.NLLLoss`: "The input given through a forward call is expected
      to contain log-probabilities of each class ... obtaining log-probabilities in a
      neural network is easily achieved by adding a LogSoftmax layer".
    - Slav Ivanov, "37 Reasons why your Neural Network is not working" (section "Verify loss
      input": NLLLoss and CrossEntropyLoss expect different inputs).
    """

    code = "NN106"
    name = "nll-without-log-softmax"
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
                    return F.log_softmax(self.fc2(x), dim=1)

            def train(args, model, device, train_loader, optimizer):
                for data, target in train_loader:
                    output = model(data)
                    loss = F.nll_loss(output, target)
            """,
            note="forward returns F.log_softmax (pytorch/examples MNIST)",
        ),
        Valid(
            """
            import torch.nn as nn

            model = nn.Sequential(nn.Linear(10, 4), nn.LogSoftmax(dim=1))
            criterion = nn.NLLLoss()

            def step(x, y):
                return criterion(model(x), y)
            """,
            note="Sequential ending in LogSoftmax",
        ),
        Valid(
            """
            import torch
            import torch.nn.functional as F

            def step(logits, y):
                probs = F.softmax(logits, dim=-1)
                return F.nll_loss(torch.log(probs + 1e-8), y)
            """,
            note="log of softmax probabilities is a log-probability",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(16, 4)

                def forward(self, x):
                    return self.fc(x)

            def step(model, x, y):
                out = model(x)
                out = F.log_softmax(out, dim=-1)
                return F.nll_loss(out, y)
            """,
            note="log_softmax applied in the training code",
        ),
        Valid(
            """
            import torch.nn.functional as F

            def step(model, x, y):
                return F.nll_loss(model(x), y)
            """,
            note="unknown model (not in this file): silent",
        ),
        Valid(
            """
            from torch import nn

            class Decoder(nn.Module):
                def __init__(self, hidden, vocab):
                    super().__init__()
                    self.out = nn.Linear(hidden, vocab)
                    self.log_softmax = nn.LogSoftmax(dim=1)

                def forward(self, h):
                    return self.log_softmax(self.out(h))

            decoder = Decoder(256, 1000)
            criterion = nn.NLLLoss()

            def step(h, y):
                return criterion(decoder(h), y)
            """,
            note="LogSoftmax module attribute (seq2seq tutorial style)",
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
                    return self.fc2(x)

            def train(model, train_loader, optimizer):
                for data, target in train_loader:
                    output = model(data)
                    loss = F.nll_loss(output, target)
            """,
            line=17,
            contains="log_softmax",
        ),
        Invalid(
            """
            from torch import nn

            model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 4), nn.Softmax(dim=1))
            criterion = nn.NLLLoss()

            def step(x, y):
                return criterion(model(x), y)
            """,
            line=7,
            contains="Softmax (line 3)",
        ),
        Invalid(
            """
            import torch
            from torch.nn.functional import nll_loss

            def step(logits, y):
                probs = logits.softmax(dim=-1)
                return nll_loss(probs, y)
            """,
            line=6,
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Tagger(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.proj = nn.Linear(64, 12)
                    self.loss = nn.NLLLoss()

                def forward(self, h, tags):
                    scores = self.proj(h)
                    return self.loss(scores.view(-1, 12), tags.view(-1))
            """,
            line=12,
            contains="raw logits",
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        seen: set[int] = set()
        for u in flow(ctx).losses:
            v = u.input
            if u.kind != "nll" or v.tag not in ("logits", "softmax", "sigmoid", "act") or id(u.call) in seen:
                continue
            seen.add(id(u.call))
            if v.tag == "logits":
                what = f"{describe(ctx, u.input_expr, v, verb='is raw logits from')} with no log_softmax"
            else:
                what = f"{describe(ctx, u.input_expr, v, verb='comes from')}, not log_softmax"
            if v.tag == "softmax":
                fix = "use log_softmax instead of softmax (or CrossEntropyLoss on the logits)"
            else:
                fix = "apply log_softmax(dim=1) first (or use CrossEntropyLoss on the logits)"
            yield Finding(f"{what}; {loss_name(u)} expects log-probabilities: {fix}", node=u.call, model=v.model)
