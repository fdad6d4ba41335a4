from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.graph import GraphContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, GraphRule, Invalid, Valid

from ._dead import data_dependent, dead_regions, region_exempt


class DeadComputation(GraphRule):
    """## What it does
    Finds operations in `forward` whose result never reaches any output of the model — a
    dead branch: computed from the input, then dropped. (Unused submodules are NN202.)

    ## Why is this bad?
    Usually a slip: the normalised, masked or activated tensor is computed and then the
    raw one is used (`h = F.relu(x)` ... `return self.fc(x)`). It also costs time and
    memory on every step.

    ## Example
    ```python
    def forward(self, x):
        h = self.fc1(x)
        a = torch.tanh(h)      # computed, never used
        return self.fc2(h)
    ```

    ## Use instead
    ```python
    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        return self.fc2(h)
    ```

    Not reported: values stored on `self`, logged, printed, appended or asserted; values
    used only under a flag (`if self.return_attn: return out, attn`); size and shape
    queries.

    ## References
    - Seed article, "Silent bugs in neural network code" (results computed and dropped).
    - torch.fx documentation, "Dead code elimination" (`Graph.eliminate_dead_code`).
    """

    code = "NN203"
    name = "dead-computation"
    severity = Severity.WARNING

    VALID = [
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(8, 16)
                    self.fc2 = nn.Linear(16, 4)

                def forward(self, x):
                    x = self.fc1(x)
                    x = F.relu(x)
                    return self.fc2(x)
            """,
            note="the activation's result is used (the look-alike of the discarded `F.relu(x)` statement)",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self, return_probs=False):
                    super().__init__()
                    self.fc = nn.Linear(8, 4)
                    self.return_probs = return_probs
                    self.last_norm = None

                def forward(self, x):
                    logits = self.fc(x)
                    probs = torch.softmax(logits, dim=-1)
                    self.last_norm = logits.norm()
                    if self.return_probs:
                        return logits, probs
                    return logits
            """,
            note="used only under a flag; stored on self",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(8, 16)
                    self.head = nn.Linear(4, 2)

                def forward(self, x):
                    h = self.fc(x)
                    assert h.shape[-1] % 4 == 0, "width must split into 4"
                    cls_tok, _ = h[:, :4], h[:, 4:].reshape(-1)
                    return self.head(cls_tok)
            """,
            note="a part of a tensor sliced off and discarded (`x, _ = unpack(x, ps, 'b * d')`): a view, no computation",
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
                    self.fc1 = nn.Linear(8, 16)
                    self.fc2 = nn.Linear(16, 2)

                def forward(self, x):
                    h = self.fc1(x)
                    a = torch.tanh(h)
                    return self.fc2(h)
            """,
            line=12,
            contains="tanh",
        ),
        Invalid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(8, 16)
                    self.fc2 = nn.Linear(16, 4)

                def forward(self, x):
                    x = self.fc1(x)
                    F.relu(x)
                    return self.fc2(x)
            """,
            line=12,
            contains="relu",
        ),
    ]

    def check(self, ctx: GraphContext) -> Iterator[Finding]:
        regions = dead_regions(ctx)
        if not regions:
            return
        from_input = data_dependent(ctx)
        for region in regions:
            if any(n.op == "call_module" for n in region):
                continue  # NN202 reports it
            if not any(n.idx in from_input for n in region) or region_exempt(ctx, region):
                continue
            if all(ctx.kind(n) == "pass" for n in region):
                continue  # a discarded element of a tuple (`out, _ = self.rnn(x)`), a reshape
            if not any(n.direct for n in region):
                continue  # inside a library helper the forward called (pad_packed_sequence's extras)
            first = next(n for n in region if n.line) if any(n.line for n in region) else region[0]
            ops = [n.target for n in region]
            more = f" (and {len(ops) - 1} more op{'s' * (len(ops) > 2)} after it)" if len(ops) > 1 else ""
            shape = f" of shape {tuple(first.shape)}" if first.shape is not None else ""
            yield Finding(
                f"the result{shape} of {first.target}() at line {first.line}{more} never reaches the output of "
                f"{ctx.model_name}: a dead computation (was it meant to be used or returned?)",
                line=first.line,
                module=first.scope or None,
                evidence={"ops": ops, "lines": sorted({n.line for n in region if n.line})},
            )
