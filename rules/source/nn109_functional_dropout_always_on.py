from __future__ import annotations

from collections.abc import Iterator

from nnlint import fixes
from nnlint.contexts.source import SourceContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

DROPOUTS = (
    "torch.nn.functional.dropout",
    "torch.nn.functional.dropout1d",
    "torch.nn.functional.dropout2d",
    "torch.nn.functional.dropout3d",
    "torch.nn.functional.alpha_dropout",
    "torch.nn.functional.feature_alpha_dropout",
)


class FunctionalDropoutAlwaysOn(SourceRule):
    """## What it does
    Flags `F.dropout(x, ...)` inside a module's `forward` that does not pass
    `training=self.training`.

    ## Why is this bad?
    `torch.nn.functional.dropout` defaults to `training=True`: unlike `nn.Dropout`, it does
    not follow `model.eval()`, so the model keeps dropping units at evaluation and inference
    time. Validation scores get noisy and worse, silently.

    ## Example
    ```python
    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.dropout(x, p=0.5)
        return self.fc2(x)
    ```

    ## Use instead
    ```python
    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.dropout(x, p=0.5, training=self.training)  # or self.drop = nn.Dropout(0.5)
        return self.fc2(x)
    ```

    ## References
    - PyTorch docs, `torch.nn.functional.dropout` (`training=True` by default).
    - "Pitfalls of F.dropout", PyTorch forums; Karpathy, "A Recipe for Training Neural Networks".
    """

    code = "NN109"
    name = "functional-dropout-always-on"
    severity = Severity.ERROR
    fix_applicability = "safe"
    fix_summary = "pass `training=self.training`"

    VALID = [
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def forward(self, x):
                    return F.dropout(x, p=0.5, training=self.training)
            """,
            note="training= passed",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def forward(self, x):
                    return F.dropout(x, 0.5, self.training)
            """,
            note="training passed positionally",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.drop = nn.Dropout(0.5)

                def forward(self, x):
                    return self.drop(x)
            """,
            note="the module form follows eval()",
        ),
        Valid(
            """
            import torch.nn.functional as F

            def augment(x):
                return F.dropout(x, 0.1)
            """,
            note="outside a module's forward (data augmentation helper)",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def forward(self, x):
                    return F.dropout(x, p=0.2, training=False)
            """,
            note="explicitly off",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def forward(self, x):
                    x = F.dropout(x, p=0.5)
                    return x
            """,
            line=6,
            contains="training=self.training",
        ),
        Invalid(
            """
            import torch
            from torch.nn import functional as fn

            class Net(torch.nn.Module):
                def forward(self, x):
                    return fn.dropout2d(x)
            """,
            line=6,
        ),
        Invalid(
            """
            import torch

            class Net(torch.nn.Module):
                def forward(self, x):
                    return torch.nn.functional.dropout(x, 0.3, inplace=False)
            """,
            line=5,
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        for call, func in ctx.calls:
            if func is None or func.cls is None or func.name != "forward" or not ctx.is_module_class(func.cls):
                continue
            q = ctx.qualname(call)
            if q not in DROPOUTS:
                continue
            if any(a.keyword is not None and a.keyword.value == "training" for a in call.args):
                continue
            positional = [a for a in call.args if a.keyword is None and a.star == ""]
            if len(positional) >= 3:  # dropout(input, p, training, inplace)
                continue
            short = q.rsplit(".", 1)[-1]
            yield Finding(
                f"F.{short} without training= is active in eval mode too; pass training=self.training "
                f"or use nn.{'Dropout' if short == 'dropout' else short.title()} as a submodule",
                node=call,
                model=func.cls.name,
                fix=self.make_fix(
                    "pass training=self.training", fixes.add_keyword(ctx, call, "training", "self.training")
                ),
            )
