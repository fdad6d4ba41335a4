from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.probe import Extra, ProbeContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, ProbeRule, Valid

from .common import layer_norms, name


class NonFinite(ProbeRule):
    """## What it does
    Reports NaN or +Inf in any module's output, in the loss or in any gradient during one
    forward + backward on a random batch, and names the first module (in execution order)
    that produced it — and, when it is a line of your `forward`, that line. (`-inf` alone
    is how attention masks are written and is not reported.)

    ## Why is this bad?
    One non-finite value poisons every later activation, the loss and every weight it
    touches in the first optimizer step. The usual causes are visible at init: `log`/`sqrt`
    of non-positive values, division by a zero norm, overflowing weights, or an `exp`
    without max-subtraction.

    ## Example
    ```python
    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(torch.log(h))     # log of negative pre-activations: NaN
    ```

    ## Use instead
    ```python
    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(torch.log(F.softplus(h) + 1e-6))
    ```

    ## References
    - "37 Reasons why your Neural Network is not working" (Slav Ivanov), #35 "NaN".
    - PyTorch docs, `torch.autograd.detect_anomaly` (used by the probe only after a
      non-finite gradient is seen, to name the operation).
    """

    code = "NN302"
    name = "non-finite"
    severity = Severity.ERROR
    needs = frozenset({Extra.NONFINITE_ORIGIN})

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class TinyGPT(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.tok = nn.Embedding(50, 32)
                    self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
                    self.head = nn.Linear(32, 50)

                def forward(self, idx):
                    x = self.tok(idx)
                    t = idx.size(1)
                    mask = torch.triu(torch.full((t, t), float("-inf")), 1)
                    x, _ = self.attn(x, x, x, attn_mask=mask)
                    return self.head(x)

            def nnlint_examples():
                return [{"model": TinyGPT(), "inputs": torch.randint(0, 50, (4, 8))}]
            """,
            note="-inf causal mask inside attention",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 32)
                    self.fc2 = nn.Linear(32, 10)

                def forward(self, x):
                    return self.fc2(torch.log(F.softplus(self.fc1(x)) + 1e-6))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            note="log of a positive quantity",
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
                    self.fc1 = nn.Linear(20, 32)
                    self.fc2 = nn.Linear(32, 10)

                def forward(self, x):
                    h = self.fc1(x)
                    return self.fc2(torch.log(h))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            line=12,
            contains="log",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 32)
                    self.fc2 = nn.Linear(32, 10)
                    self.fc1.weight.data[0, 0] = float("nan")

                def forward(self, x):
                    return self.fc2(torch.relu(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            line=7,
            contains="fc1",
        ),
    ]

    def check(self, ctx: ProbeContext) -> Iterator[Finding]:
        nf = ctx.nonfinite
        if not nf:
            return
        phase = nf.get("phase", "")
        module = nf.get("module")
        line = nf.get("line")
        op = nf.get("op")
        evidence = {k: v for k, v in nf.items()}
        evidence["loss"] = ctx.loss.value if ctx.loss else None
        if phase == "backward":
            evidence["grad_norms"] = layer_norms(ctx)
        # a leaf module (Linear, Conv...) is reported at its `self.x = ...` line; functional
        # code in a forward (or a backward op) at the op's line in your file
        use_line = line if line and (not nf.get("leaf") or not module) else None
        what = {
            "forward": "NaN/Inf first appears in the output of",
            "loss": "the loss is non-finite after",
            "backward": "a NaN/Inf gradient first appears at",
        }.get(phase, "non-finite values at")
        at = name(ctx, module)
        detail = f" ({op}" + (f" at line {line}" if line else "") + ")" if op else (f" (line {line})" if line else "")
        hint = {
            "forward": "check log/sqrt/division of values that can be <= 0, overflowing weights, or exp without max-subtraction",
            "loss": "the logits or targets overflow the loss; check the last layer's scale and the targets",
            "backward": "a gradient overflows or divides by zero (sqrt/norm at 0, pow of negatives)",
        }.get(phase, "")
        yield Finding(
            f"{what} {at}{detail} on a random batch; {hint}",
            module=module or None,
            line=use_line,
            evidence=evidence,
        )
