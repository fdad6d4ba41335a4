from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.graph import GraphContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, GraphRule, Invalid, Valid


class OutputHeadClasses(GraphRule):
    """## What it does
    A summary, off by default (`--select NN208`): the model's output shape, the number of
    classes it implies, and the loss found in the file — the facts NN103, NN107 and
    NN301 reason with.

    ## Why is this bad?
    It is not a problem; it lets you check that nnlint understood the task (a 10-class
    head trained with `CrossEntropyLoss`) before trusting the rules that depend on it.

    ## Example
    ```python
    self.head = nn.Linear(128, 10)      # with nn.CrossEntropyLoss() in the file
    ```

    ## Use instead
    Nothing to change. If the class count or loss is wrong, declare them:
    `[[tool.nnlint.models]] classes = 10, loss = "CrossEntropyLoss"`.

    ## References
    - nnlint README, "What the graph pass knows about your model".
    """

    code = "NN208"
    name = "output-head-classes"
    severity = Severity.INFO
    opt_in = True

    VALID = [
        Valid(
            """
            import torch.nn as nn

            class Broken(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(8, 16)
                    self.fc2 = nn.Linear(32, 4)

                def forward(self, x):
                    return self.fc2(self.fc1(x))
            """,
            note="no summary when the forward fails (NN201 speaks)",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn

            class Classifier(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(20, 10)

                def forward(self, x):
                    return self.fc(x)

            loss_fn = nn.CrossEntropyLoss()
            """,
            line=3,
            contains="10 classes",
        ),
    ]

    def check(self, ctx: GraphContext) -> Iterator[Finding]:
        if ctx.failure is not None or not ctx.output_shapes:
            return
        shapes = ", ".join("(" + ", ".join(map(str, s)) + ")" for s in ctx.output_shapes)
        parts = [f"{ctx.model_name}: output {shapes}"]
        if ctx.classes:
            parts.append(f"{ctx.classes} classes")
        parts.append(f"loss in the file: {ctx.loss_name}" if ctx.loss_name else "no loss found in the file")
        if ctx.fallback:
            parts.append("traced with hooks (fx could not trace it)")
        yield Finding(
            "; ".join(parts),
            line=ctx.model_line,
            evidence={
                "output_shapes": [list(s) for s in ctx.output_shapes],
                "classes": ctx.classes,
                "loss": ctx.loss_name,
                "inputs": ctx.inputs_desc,
            },
        )
