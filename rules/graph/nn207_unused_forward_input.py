from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.graph import GraphContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, GraphRule, Invalid, Valid


class UnusedForwardInput(GraphRule):
    """## What it does
    Finds an argument of `forward` that never influences any output: no path in the
    traced graph leads from it to what the model returns (its shape being read counts as
    a use).

    ## Why is this bad?
    The caller believes the model uses it — an attention mask that is never applied, a
    second modality that is ignored, `lengths` that never reach the RNN — and nothing
    fails: the model just silently trains without that information.

    ## Example
    ```python
    def forward(self, x, mask):
        return self.fc(x)          # mask is ignored
    ```

    ## Use instead
    ```python
    def forward(self, x, mask):
        return self.fc(x * mask)
    ```

    ## References
    - Seed article, "Silent bugs in neural network code" (inputs that never reach the output).
    - torch.fx documentation: placeholders with no users.
    """

    code = "NN207"
    name = "unused-forward-input"
    severity = Severity.WARNING

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class TwoInput(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.img = nn.Linear(16, 8)
                    self.tab = nn.Linear(4, 8)
                    self.head = nn.Linear(16, 2)

                def forward(self, image, table):
                    return self.head(torch.cat([self.img(image), self.tab(table)], dim=1))
            """,
            note="two inputs, both used",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn

            class TwoInput(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.img = nn.Linear(16, 8)
                    self.tab = nn.Linear(4, 8)
                    self.head = nn.Linear(8, 2)

                def forward(self, image, table):
                    return self.head(self.img(image).relu())
            """,
            line=10,
            contains="'table'",
        ),
    ]

    def check(self, ctx: GraphContext) -> Iterator[Finding]:
        if ctx.failure is not None or ctx.output is None:
            return
        live = ctx.live
        line = ctx.forward_line()
        seen: set[str] = set()
        for idx in ctx.placeholders:
            n = ctx.nodes[idx]
            name = n.target
            if idx in live or name in seen or name.startswith("_") or name.startswith("unused"):
                continue
            if any(ctx.nodes[i].target == name and i in live for i in ctx.placeholders):
                continue
            seen.add(name)
            yield Finding(
                f"forward's argument '{name}' never influences the output of {ctx.model_name}: it is ignored "
                "(use it, or drop it from the signature)",
                line=line,
                evidence={"argument": name, "shape": list(n.shape) if n.shape else None},
            )
