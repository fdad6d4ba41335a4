from __future__ import annotations

from collections.abc import Iterator

from nnlint import fixes
from nnlint.analysis.value_flow import describe, flow, loss_name
from nnlint.contexts.source import SourceContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid


class SoftmaxBeforeCrossEntropy(SourceRule):
    """## What it does
    Flags values that went through `softmax`/`log_softmax` (an explicit call, or the tail
    of the model: `nn.Softmax` as the last layer of a `Sequential`, a `forward` that returns
    `F.softmax(...)`) and are then passed to `CrossEntropyLoss` / `F.cross_entropy`. The
    value is followed through assignments, `nn.Sequential` definitions and from a model's
    `forward` to the loss call in the same file.

    ## Why is this bad?
    `CrossEntropyLoss` expects unnormalized logits: it applies `log_softmax` itself. Fed
    probabilities, it computes `log_softmax(softmax(x))`: the inputs are squeezed into
    [0, 1], the loss can no longer approach zero and the gradients shrink, so training
    stalls or converges to a worse model. The loss at initialisation still looks normal
    (close to ln k), which is why this bug survives so long. A `log_softmax` before it is
    redundant (and usually a sign that `NLLLoss` was meant).

    ## Example
    ```python
    class Net(nn.Module):
        def forward(self, x):
            return F.softmax(self.fc(x), dim=1)

    loss = F.cross_entropy(model(x), y)
    ```

    ## Use instead
    ```python
    class Net(nn.Module):
        def forward(self, x):
            return self.fc(x)          # logits

    logits = model(x)
    loss = F.cross_entropy(logits, y)
    probs = logits.softmax(dim=1)      # only for reporting
    ```

    ## References
    - PyTorch docs, `torch.nn.CrossEntropyLoss`: "The input is expected to contain the
      unnormalized logits for each class".
    - Slav Ivanov, "37 Reasons why your Neural Network is not working" (section "Verify loss
      input": NLLLoss wants log-softmax input, CrossEntropyLoss does not).
    - Andrej Karpathy, "A Recipe for Training Neural Networks" (2019).
    """

    code = "NN104"
    name = "softmax-before-cross-entropy"
    fix_applicability = "unsafe"  # the model's other callers may want the activation
    fix_summary = (
        "drop the trailing softmax/log_softmax (the call, the `self.act(...)` wrapper or the `nn.Sequential` element)"
    )
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(20, 5)

                def forward(self, x):
                    return self.fc(x)

            def evaluate(model, x, y):
                logits = model(x)
                probs = logits.softmax(-1)
                acc = (probs.argmax(1) == y).float().mean()
                return F.cross_entropy(logits, y), acc
            """,
            note="the softmax branch is only used for metrics",
        ),
        Valid(
            """
            import math
            import torch.nn as nn
            import torch.nn.functional as F

            class Attention(nn.Module):
                def __init__(self, d):
                    super().__init__()
                    self.qkv = nn.Linear(d, 3 * d)
                    self.proj = nn.Linear(d, d)

                def forward(self, x):
                    q, k, v = self.qkv(x).chunk(3, dim=-1)
                    att = F.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1)
                    return self.proj(att @ v)

            class GPT(nn.Module):
                def __init__(self, d, vocab_size):
                    super().__init__()
                    self.attn = Attention(d)
                    self.lm_head = nn.Linear(d, vocab_size, bias=False)

                def forward(self, x, targets=None):
                    x = self.attn(x)
                    logits = self.lm_head(x)
                    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
            note="attention softmax inside a block, final Linear before the loss",
        ),
        Valid(
            """
            import torch.nn.functional as F

            def distill(student_logits, teacher_logits, T=2.0):
                soft = F.softmax(teacher_logits / T, dim=-1)
                return F.cross_entropy(student_logits / T, soft)
            """,
            note="softmax on the target (soft labels), not on the input",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(20, 5)

                def forward(self, x):
                    logits = self.fc(x)
                    if self.training:
                        return logits
                    return F.softmax(logits, dim=-1)

            def step(model, x, y):
                return F.cross_entropy(model(x), y)
            """,
            note="probabilities only on one path: not provably softmax",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            criterion = nn.CrossEntropyLoss()

            def step(model_out, y):
                loss = criterion(model_out, y)
                model_out = F.softmax(model_out, dim=1)
                return loss, model_out
            """,
            note="softmax applied after the loss (statement order)",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 64)
                    self.fc2 = nn.Linear(64, 5)

                def forward(self, x):
                    x = F.softmax(self.fc1(x), dim=-1)
                    return self.fc2(x)

            model = Net()
            loss_fn = nn.CrossEntropyLoss()

            def step(x, y):
                return loss_fn(model(x), y)
            """,
            note="a softmax inside the network, followed by a Linear: the output is logits",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            model = nn.Sequential(nn.Linear(10, 4), nn.LogSoftmax(dim=1))

            def step(x, y):
                return F.nll_loss(model(x), y)
            """,
            note="log_softmax with NLLLoss is the right pairing",
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
                    self.fc1 = nn.Linear(20, 64)
                    self.fc2 = nn.Linear(64, 5)

                def forward(self, x):
                    x = F.relu(self.fc1(x))
                    return F.softmax(self.fc2(x), dim=1)

            def evaluate_loss(model, x, y):
                out = model(x)
                return F.cross_entropy(out, y)
            """,
            line=16,
            contains="pass the logits",
        ),
        Invalid(
            """
            from torch import nn
            from torch.nn import CrossEntropyLoss

            model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10), nn.Softmax(dim=1))
            criterion = CrossEntropyLoss()

            def train(loader, opt):
                for x, y in loader:
                    opt.zero_grad()
                    loss = criterion(model(x), y)
                    loss.backward()
                    opt.step()
            """,
            line=10,
            contains="Softmax (line 4)",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Classifier(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.head = nn.Linear(32, 3)

                def forward(self, x):
                    return self.head(x)

            model = Classifier()
            criterion = nn.CrossEntropyLoss()
            x, y = torch.randn(8, 32), torch.randint(0, 3, (8,))
            logits = model(x)
            probs = logits.softmax(-1)
            loss = criterion(probs, y)
            """,
            line=17,
            contains="`probs` went through softmax (line 16)",
        ),
        Invalid(
            """
            import torch

            class Net(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = torch.nn.Linear(16, 4)
                    self.sm = torch.nn.LogSoftmax(dim=1)
                    self.criterion = torch.nn.CrossEntropyLoss()

                def forward(self, x):
                    return self.sm(self.fc(x))

                def training_step(self, batch, batch_idx):
                    x, y = batch
                    out = self(x)
                    return self.criterion(out, y)
            """,
            line=16,
            contains="log_softmax",
        ),
        Invalid(
            """
            import torch
            import torch.nn.functional

            def loss_of(logits, y):
                probs = torch.nn.functional.softmax(logits, dim=-1)
                return torch.nn.CrossEntropyLoss()(probs, y)
            """,
            line=6,
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        seen: set[int] = set()
        for u in flow(ctx).losses:
            v = u.input
            if u.kind != "ce" or v.tag not in ("softmax", "log_softmax") or id(u.call) in seen:
                continue
            seen.add(id(u.call))
            what = describe(ctx, u.input_expr, v)
            fix = f"drop it from the end of {v.model} and pass the logits" if v.model else "pass the logits"
            if v.tag == "softmax":
                tail = (
                    f"and is passed to {loss_name(u)}, which applies log_softmax itself: "
                    f"{fix} (keep softmax for reporting only)"
                )
            else:
                tail = (
                    f"and is passed to {loss_name(u)}, which applies log_softmax itself (redundant "
                    f"log_softmax): {fix}, or use NLLLoss on log_softmax outputs"
                )
            edit = fixes.drop_call(ctx, v.at)
            yield Finding(
                f"{what} {tail}",
                node=u.call,
                model=v.model,
                fix=self.make_fix(f"drop the {v.act or v.tag}", *edit) if edit else None,
            )
