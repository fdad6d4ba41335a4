from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.data import DataContext
from nnlint.diagnostics import Severity
from nnlint.rule import DataRule, Finding, Invalid, Valid

from ..probe.common import fmt


class ClassImbalance(DataRule):
    """## What it does
    Opt-in data probe: counts the integer class labels in the batches you supply and
    reports when the most frequent class is ≥ 10× (`ratio`) as frequent as the rarest one
    present.

    ## Why is this bad?
    With a strong imbalance a model reaches a low loss and high accuracy by predicting the
    majority class, and the rare classes — often the ones that matter — are not learned.
    It is not a bug by itself, but the loss, sampler and metrics should account for it.

    ## Example
    ```python
    y = torch.tensor([0] * 95 + [1] * 5)
    ```

    ## Use instead
    ```python
    loss = nn.CrossEntropyLoss(weight=1.0 / counts)          # or a WeightedRandomSampler
    ```

    ## References
    - "37 Reasons why your Neural Network is not working" (Slav Ivanov), #15 "dataset
      imbalance".
    - Karpathy, "A Recipe for Training Neural Networks" (2019): "become one with the data".
    """

    code = "NN503"
    name = "class-imbalance"
    severity = Severity.INFO
    thresholds = {"ratio": 10.0}

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(16, 4)

                def forward(self, x):
                    return self.fc(x)

            def nnlint_examples():
                x = torch.randn(64, 16)
                y = torch.arange(64) % 4
                return [{"model": Net(), "inputs": x[:8], "data": [(x[:32], y[:32]), (x[32:], y[32:])]}]
            """,
            note="balanced",
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
                    self.fc = nn.Linear(16, 2)

                def forward(self, x):
                    return self.fc(x)

            def nnlint_examples():
                x = torch.randn(100, 16)
                y = torch.tensor([0] * 95 + [1] * 5)
                return [{"model": Net(), "inputs": x[:8], "data": [(x, y)]}]
            """,
            line=12,
            contains="19",
        ),
    ]

    def check(self, ctx: DataContext) -> Iterator[Finding]:
        counts = ctx.class_counts
        if not ctx.target_integer or len(counts) < 2:
            return
        top = max(counts, key=counts.__getitem__)
        low = min(counts, key=counts.__getitem__)
        ratio = counts[top] / counts[low]
        if ratio < self.threshold["ratio"]:
            return
        total = sum(counts.values())
        yield Finding(
            f"class imbalance: class {top} has {counts[top]} of {total} labels, class {low} only {counts[low]} "
            f"({fmt(ratio)}x); weight the loss, resample, and track per-class metrics",
            line=ctx.line,
            evidence={
                "counts": {str(k): v for k, v in sorted(counts.items())[:100]},
                "ratio": ratio,
                "batches": ctx.batches,
            },
        )
