from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from nnlint import fixes
from nnlint.analysis.syntax import arg_expr, short_expr
from nnlint.analysis.value_flow import flow
from nnlint.contexts.source import SourceContext, normalize_torch_name
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

# name -> index of the positional `dim` argument
SOFTMAX_FUNCS = {
    "torch.nn.functional.softmax": 1,
    "torch.nn.functional.log_softmax": 1,
    "torch.nn.functional.softmin": 1,
    "torch.softmax": 1,
    "torch.log_softmax": 1,
    "torch.special.softmax": 1,
    "torch.special.log_softmax": 1,
}
SOFTMAX_MODULES = {"torch.nn.Softmax": 0, "torch.nn.LogSoftmax": 0, "torch.nn.Softmin": 0}
LAST_NAMES = {"softmax", "log_softmax", "softmin", "Softmax", "LogSoftmax", "Softmin"}


class SoftmaxDim(SourceRule):
    """## What it does
    Flags `nn.Softmax()` / `nn.LogSoftmax()` / `F.softmax(x)` / `F.log_softmax(x)` called
    without `dim`, and a softmax over `dim=0` applied to a tensor whose dim 0 is known to be
    the batch: a DataLoader batch or a model's output on one, a tensor flattened with
    `x.view(x.size(0), -1)` / `torch.flatten(x, 1)`, a BatchNorm2d/Conv feature map
    flattened for the classifier, or the input-derived tensor inside a `forward` that the
    file calls on such a batch.

    ## Why is this bad?
    Without `dim`, PyTorch picks one from the number of dimensions (dim 0 for 0-, 1- and
    3-D inputs, dim 1 otherwise) and warns that this implicit choice is deprecated: a
    sequence batch `(N, T, C)` is then normalised over the batch. With `dim=0` on a
    batch-first tensor the probabilities of each class sum to 1 across the samples of the
    batch instead of across the classes of each sample: every prediction depends on the
    other samples in the batch, and the loss trains the wrong thing.

    ## Example
    ```python
    self.softmax = nn.Softmax()
    probs = F.softmax(logits, dim=0)     # logits: (batch, classes)
    ```

    ## Use instead
    ```python
    self.softmax = nn.Softmax(dim=-1)
    probs = F.softmax(logits, dim=-1)
    ```

    ## References
    - PyTorch docs, `torch.nn.functional.softmax` ("dim (int) - A dimension along which
      softmax will be computed") and the "Implicit dimension choice for softmax has been
      deprecated" warning.
    - PyTorch docs, `torch.nn.Softmax` ("dim (int) - A dimension along which Softmax will be
      computed (so every slice along dim will sum to 1)").
    - Andrej Karpathy, "A Recipe for Training Neural Networks" (2019): use backprop to chart
      dependencies, the check that catches ops mixing information across the batch.
    """

    code = "NN108"
    name = "softmax-dim"
    fix_applicability = "unsafe"
    fix_summary = "pass `dim=-1` (no dim given) or `dim=1` (dim 0 on a batch); the fix says which it chose"
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
                    self.fc = nn.Linear(10, 4)
                    self.sm = nn.Softmax(dim=1)
                    self.lsm = nn.LogSoftmax(1)

                def forward(self, x):
                    logits = self.fc(x)
                    a = F.softmax(logits, dim=-1)
                    b = F.log_softmax(logits, 1)
                    c = logits.softmax(-1)
                    d = torch.softmax(logits, dim=1)
                    return self.sm(logits), self.lsm(logits), a, b, c, d
            """,
            note="dim given: keyword, positional, method, module",
        ),
        Valid(
            """
            import torch
            import torch.nn.functional as F

            scores = torch.randn(10)
            weights = F.softmax(scores, dim=0)
            """,
            note="dim=0 on a 1-D tensor",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Policy(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(4, 128)
                    self.fc2 = nn.Linear(128, 2)

                def forward(self, state):
                    x = F.relu(self.fc1(state))
                    return F.softmax(self.fc2(x), dim=0)
            """,
            note="dim=0 on an input-derived tensor that may be a single (1-D) state",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class AttnRNN(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.rnn = nn.GRU(32, 64)
                    self.attn = nn.Linear(64, 1)

                def forward(self, x):
                    out, _ = self.rnn(x)
                    w = F.softmax(self.attn(out), dim=0)
                    return (w * out).sum(0)

            def run(model, loader):
                for x, y in loader:
                    model(x)
            """,
            note="softmax over time of a sequence-first RNN output",
        ),
        Valid(
            """
            from scipy.special import softmax
            import torch

            probs = softmax(torch.randn(3, 4).numpy())
            """,
            note="not torch's softmax",
        ),
        Valid(
            """
            import torch.nn.functional as F

            def sample(logits, tau=1.0):
                return F.gumbel_softmax(logits, tau=tau)
            """,
            note="gumbel_softmax has dim=-1 by default",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(10, 4)
                    self.softmax = nn.Softmax()

                def forward(self, x):
                    return self.softmax(self.fc(x))
            """,
            line=7,
            contains="dim=-1",
        ),
        Invalid(
            """
            import torch.nn.functional as F

            def predict(model, x):
                return F.softmax(model(x))
            """,
            line=4,
        ),
        Invalid(
            """
            import torch

            def scores(logits):
                return torch.nn.functional.log_softmax(logits, dtype=torch.float32)
            """,
            line=4,
        ),
        Invalid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(1, 8, 3)
                    self.fc = nn.Linear(8 * 26 * 26, 10)

                def forward(self, x):
                    x = F.relu(self.conv(x))
                    x = x.view(x.size(0), -1)
                    return F.softmax(self.fc(x), dim=0)
            """,
            line=13,
            contains="dim=0",
        ),
        Invalid(
            """
            from torch import nn

            model = nn.Sequential(
                nn.Linear(784, 10),
                nn.Softmax(dim=0),
            )

            def evaluate(loader):
                for images, labels in loader:
                    probs = model(images)
            """,
            line=5,
            contains="batch",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class MLP(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(20, 3)

                def forward(self, x):
                    return self.fc(x).softmax(0)

            model = MLP()
            out = model(torch.randn(32, 20))
            """,
            line=10,
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        reported: set[int] = set()
        for call, _ in ctx.calls:
            func = call.func
            last = (
                func.attr.value
                if isinstance(func, cst.Attribute)
                else func.value
                if isinstance(func, cst.Name)
                else None
            )
            if last not in LAST_NAMES:
                continue
            q = ctx.qualname(func)
            if q is None or not q.startswith("torch"):
                continue
            q = normalize_torch_name(q)
            if q in SOFTMAX_FUNCS:
                index = SOFTMAX_FUNCS[q]
            elif q in SOFTMAX_MODULES:
                index = SOFTMAX_MODULES[q]
            else:
                continue
            if any(a.star for a in call.args):
                continue
            dim = arg_expr(call, index, "dim")
            if dim is not None and not (isinstance(dim, cst.Name) and dim.value == "None"):
                continue
            reported.add(id(call))
            short = q.rsplit(".", 1)[-1]
            spelled = f"nn.{short}()" if short[0].isupper() else f"{short}(...)"
            yield Finding(
                f"{spelled} without dim: PyTorch picks the dimension from the input's rank (dim 0 for "
                "1-D and 3-D inputs), which normalises across the batch of an (N, T, C) tensor; pass "
                "dim=-1 (the class dimension) explicitly",
                node=call,
                fix=self._fix(ctx, call, index, "-1", "the last dimension"),
            )
        fl = flow(ctx)
        for d in fl.dims:
            if id(d.node) in reported or not fl.dim0_on_batch(d):
                continue
            reported.add(id(d.node))
            subject = "its input"
            if isinstance(d.node, cst.Call) and d.display[:1].islower():
                func = d.node.func
                method = isinstance(func, cst.Attribute) and not (ctx.qualname(func) or "").startswith("torch")
                inp = func.value if method and isinstance(func, cst.Attribute) else arg_expr(d.node, 0, "input")
                if inp is not None:
                    subject = f"`{short_expr(ctx, inp)}`"
            why = (
                f" (in {d.cls}.forward, which this file runs on batches)"
                if d.val.batched == "input"
                else " (dim 0 is the batch here)"
            )
            yield Finding(
                f"{d.display} over dim=0 of {subject}{why} normalises across the samples of the "
                "batch, not across the classes of each sample: use dim=1 (or dim=-1)",
                node=d.node,
                model=d.cls,
                fix=self._dim_fix(ctx, d.node),
            )

    def _dim_fix(self, ctx: SourceContext, node: cst.CSTNode):
        if not isinstance(node, cst.Call):
            return None
        q = normalize_torch_name(ctx.qualname(node.func) or "")
        index = SOFTMAX_FUNCS.get(q, SOFTMAX_MODULES.get(q))
        if index is None and isinstance(node.func, cst.Attribute) and node.func.attr.value in LAST_NAMES:
            index = 0  # x.softmax(0): the method's first argument
        if index is None or arg_expr(node, index, "dim") is None:
            return None
        return self._fix(ctx, node, index, "1", "the dimension after the batch")

    def _fix(self, ctx: SourceContext, call: cst.Call, index: int, value: str, what: str):
        """Unsafe: the right dimension depends on the tensor's layout; the fix says which it chose."""
        dim = arg_expr(call, index, "dim")
        edit = fixes.add_keyword(ctx, call, "dim", value) if dim is None else fixes.replace(ctx, dim, value)
        return self.make_fix(f"pass dim={value} ({what}; check that it holds the classes)", edit)
