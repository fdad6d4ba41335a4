from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.data import DataContext
from nnlint.diagnostics import Severity
from nnlint.rule import DataRule, Finding, Invalid, Valid

from ..probe.common import fmt


class UnnormalizedInput(DataRule):
    """## What it does
    Opt-in data probe: on the real batches you supply (`nnlint_examples()` key `data`, or
    `--data module:function`), checks each floating input: fires when its mean is far from
    zero (|mean| > `max_abs_mean`, 3), its std far from one (> `max_std`, 10, or <
    `min_std`, 0.001), or, for tabular `(N, features)` inputs, when feature scales differ by
    ≥ 100× (`feature_scale_ratio`).

    ## Why is this bad?
    Inits (He, Glorot) and default learning rates assume inputs of roughly zero mean and
    unit scale. Images in 0..255 or features in dollars next to features in fractions give
    huge first-layer activations and gradients dominated by the largest-scale features; the
    network trains slowly or not at all. It is one of the most common silent bugs.

    ## Example
    ```python
    def nnlint_examples():
        x = torch.randint(0, 256, (64, 1, 28, 28)).float()        # raw pixels
        return [{"model": Net(), "inputs": x[:8], "data": [(x, y)]}]
    ```

    ## Use instead
    ```python
    x = (x / 255.0 - 0.1307) / 0.3081                            # or transforms.Normalize
    ```

    ## References
    - "37 Reasons why your Neural Network is not working" (Slav Ivanov), #11 "standardize
      the features".
    - Karpathy, "A Recipe for Training Neural Networks" (2019): "become one with the data".
    - LeCun et al., "Efficient BackProp" (1998), section 4.3 "normalizing the inputs".
    """

    code = "NN501"
    name = "unnormalized-input"
    severity = Severity.WARNING
    thresholds = {"max_abs_mean": 3.0, "max_std": 10.0, "min_std": 0.001, "feature_scale_ratio": 100.0}

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
                return [{"model": Net(), "inputs": x[:8], "data": [(x[:16], y[:16]), (x[16:], y[16:])]}]
            """,
            note="standardized features",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(3, 4, 3)
                    self.fc = nn.Linear(4, 2)

                def forward(self, x):
                    return self.fc(self.conv(x).mean((2, 3)))

            def nnlint_examples():
                x = torch.rand(16, 3, 8, 8)
                y = torch.randint(0, 2, (16,))
                return [{"model": Net(), "inputs": x[:4], "data": [(x, y)]}]
            """,
            note="images scaled to [0, 1]",
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
                    self.conv = nn.Conv2d(1, 4, 3)
                    self.fc = nn.Linear(4, 10)

                def forward(self, x):
                    return self.fc(self.conv(x).mean((2, 3)))

            def nnlint_examples():
                x = torch.randint(0, 256, (16, 1, 8, 8)).float()
                y = torch.randint(0, 10, (16,))
                return [{"model": Net(), "inputs": x[:4], "data": [(x, y)]}]
            """,
            line=13,
            contains="255",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(3, 1)

                def forward(self, x):
                    return self.fc(x)

            def nnlint_examples():
                x = torch.randn(32, 3) * torch.tensor([1.0, 0.01, 500.0])
                y = torch.randn(32, 1)
                return [{"model": Net(), "inputs": x[:8], "data": [(x, y)], "loss": nn.MSELoss()}]
            """,
            line=12,
            contains="scale",
        ),
    ]

    def check(self, ctx: DataContext) -> Iterator[Finding]:
        for s in ctx.inputs:
            if s.mean is None or s.std is None or s.dtype.startswith(("int", "uint", "bool", "long")):
                continue
            problems = []
            if abs(s.mean) > self.threshold["max_abs_mean"]:
                problems.append(f"mean {fmt(s.mean)}")
            if s.std > self.threshold["max_std"]:
                problems.append(f"std {fmt(s.std)}")
            elif s.std < self.threshold["min_std"]:
                problems.append(f"std {fmt(s.std)} (almost constant)")
            ratio = None
            if s.feature_std and len(s.shape) == 2:
                nz = [v for v in s.feature_std if v > 0]
                if len(nz) >= 2:
                    ratio = max(nz) / min(nz)
                    if ratio >= self.threshold["feature_scale_ratio"]:
                        problems.append(
                            f"feature scales differing {fmt(ratio)}x (std from {fmt(min(nz))} to {fmt(max(nz))})"
                        )
            if not problems:
                continue
            hint = (
                "divide by 255 and normalize (e.g. transforms.Normalize)"
                if s.min is not None and s.min >= 0 and s.max is not None and 100 < s.max <= 255.0001
                else "standardize each feature (x - mean) / std"
            )
            yield Finding(
                f"{s.position} are not normalized: {', '.join(problems)} over {s.count} values in "
                f"{ctx.batches} batch(es), range [{fmt(s.min)}, {fmt(s.max)}]; {hint}",
                line=ctx.line,
                evidence={
                    "position": s.position,
                    "mean": s.mean,
                    "std": s.std,
                    "min": s.min,
                    "max": s.max,
                    "feature_scale_ratio": ratio,
                    "batches": ctx.batches,
                    "samples": ctx.samples,
                },
            )
