from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.data import DataContext
from nnlint.diagnostics import Severity
from nnlint.rule import DataRule, Finding, Invalid, Valid

IGNORE_INDEX = -100  # CrossEntropyLoss/NLLLoss default ignore_index


class LabelOutOfRange(DataRule):
    """## What it does
    Opt-in data probe: checks integer targets in the batches you supply against the
    number of classes of the model's head (its output width, or `classes` declared in
    `nnlint_examples()`). Fires on targets < 0 (other than CrossEntropy's `ignore_index`
    -100) or ≥ the number of classes.

    ## Why is this bad?
    On CUDA an out-of-range class index is a device-side assert far from its cause; on the
    CPU an IndexError — or, with some losses and one-hot code, silently wrong targets. The
    classic causes are 1-based labels (1..k for a k-class head) and a head one class too
    small.

    ## Example
    ```python
    y = labels          # 1..10 read from a CSV
    self.fc = nn.Linear(64, 10)
    ```

    ## Use instead
    ```python
    y = labels - 1      # 0..9
    ```

    ## References
    - PyTorch docs, `torch.nn.CrossEntropyLoss` (targets in [0, C) or `ignore_index`).
    - "37 Reasons why your Neural Network is not working" (Slav Ivanov), #4 "the labels".
    """

    code = "NN502"
    name = "label-out-of-range"
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(16, 10)

                def forward(self, x):
                    return self.fc(x)

            def nnlint_examples():
                x = torch.randn(32, 16)
                y = torch.randint(0, 10, (32,))
                y[:4] = -100
                return [{"model": Net(), "inputs": x[:8], "data": [(x, y)]}]
            """,
            note="labels 0..9 and ignore_index -100",
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
                    self.fc = nn.Linear(16, 10)

                def forward(self, x):
                    return self.fc(x)

            def nnlint_examples():
                x = torch.randn(32, 16)
                y = torch.arange(32) % 10 + 1
                return [{"model": Net(), "inputs": x[:8], "data": [(x, y)]}]
            """,
            line=12,
            contains="10",
        ),
    ]

    def check(self, ctx: DataContext) -> Iterator[Finding]:
        t = ctx.target
        if t is None or not ctx.target_integer or t.min is None or t.max is None:
            return
        k = ctx.classes
        values = sorted(ctx.class_counts)
        negative = {v: c for v, c in ctx.negative_labels.items() if v != IGNORE_INDEX}
        too_big = k is not None and t.max >= k
        if not negative and not too_big:
            return
        parts = []
        if negative:
            parts.append(f"negative labels {sorted(negative)[:5]} ({sum(negative.values())} target(s))")
        if too_big and k is not None:
            over = [v for v in values if v >= k]
            parts.append(
                f"labels up to {int(t.max)} for {ctx.classes_source} (valid: 0..{k - 1}; "
                f"{sum(ctx.class_counts[v] for v in over)} target(s) out of range)"
            )
        hint = " — 1-based labels? subtract 1" if too_big and values and values[0] == 1 and t.max == k else ""
        yield Finding(
            f"targets out of range: {'; '.join(parts)}{hint}",
            line=ctx.line,
            evidence={
                "min": t.min,
                "max": t.max,
                "classes": k,
                "classes_source": ctx.classes_source,
                "labels_seen": values[:50],
                "negative_labels": {str(v): c for v, c in negative.items()},
            },
        )
