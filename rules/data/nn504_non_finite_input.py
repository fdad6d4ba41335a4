from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.data import DataContext
from nnlint.diagnostics import Severity
from nnlint.rule import DataRule, Finding, Invalid, Valid


class NonFiniteInput(DataRule):
    """## What it does
    Opt-in data probe: reports NaN or Inf values in the inputs or targets of the batches
    you supply.

    ## Why is this bad?
    A single NaN in a batch makes the loss NaN and, after one optimizer step, every weight
    it reaches. Missing values in a CSV, a division by a zero std during normalization or a
    log of zero in preprocessing are the usual sources.

    ## Example
    ```python
    x = (x - x.mean(0)) / x.std(0)       # a constant column: 0 / 0 = NaN
    ```

    ## Use instead
    ```python
    x = (x - x.mean(0)) / x.std(0).clamp_min(1e-8)
    ```

    ## References
    - "37 Reasons why your Neural Network is not working" (Slav Ivanov), #35 "NaN".
    - Karpathy, "A Recipe for Training Neural Networks" (2019): "become one with the data".
    """

    code = "NN504"
    name = "non-finite-input"
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(16, 3)

                def forward(self, x):
                    return self.fc(x)

            def nnlint_examples():
                x = torch.randn(32, 16)
                y = torch.randint(0, 3, (32,))
                return [{"model": Net(), "inputs": x[:8], "data": [(x, y)]}]
            """,
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
                    self.fc = nn.Linear(16, 3)

                def forward(self, x):
                    return self.fc(x)

            def nnlint_examples():
                x = torch.randn(32, 16)
                x[3, 5] = float("nan")
                y = torch.randint(0, 3, (32,))
                return [{"model": Net(), "inputs": torch.randn(8, 16), "data": [(x, y)]}]
            """,
            line=12,
            contains="NaN",
        ),
    ]

    def check(self, ctx: DataContext) -> Iterator[Finding]:
        bad = [(s.position, s.nonfinite, s.count) for s in ctx.inputs if s.nonfinite]
        if ctx.target is not None and ctx.target.nonfinite:
            bad.append(("target", ctx.target.nonfinite, ctx.target.count))
        if not bad:
            return
        what = "; ".join(f"{n} of {c} values in {pos}" for pos, n, c in bad)
        yield Finding(
            f"NaN/Inf in the data: {what}, over {ctx.batches} batch(es); one such value makes the loss and "
            "then every weight NaN — clean or impute it before training",
            line=ctx.line,
            evidence={"non_finite": {pos: n for pos, n, _ in bad}, "batches": ctx.batches},
        )
