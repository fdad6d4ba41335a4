from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.probe import Extra, ProbeContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, ProbeRule, Valid

from .common import fmt


class NondeterministicForward(ProbeRule):
    """## What it does
    Runs two eval-mode forwards with the same torch seed and the same input and compares
    the outputs; reports when they differ (relative difference above `rtol`), naming the
    first module whose output differed.

    ## Why is this bad?
    A forward that is not a function of its input and the torch seed uses randomness torch
    does not control (Python `random`, NumPy), hidden state that changes across calls, or
    nondeterministic kernels. Runs cannot be reproduced, evaluation is noisy, and
    `torch.manual_seed` does not help.

    ## Example
    ```python
    def forward(self, x):
        return x + random.gauss(0, 0.1)     # Python RNG, also in eval mode
    ```

    ## Use instead
    ```python
    def forward(self, x):
        if self.training:
            x = x + 0.1 * torch.randn_like(x)
        return x
    ```

    ## References
    - PyTorch docs, "Reproducibility" (`torch.use_deterministic_algorithms`).
    - Karpathy, "A Recipe for Training Neural Networks" (2019): "fix random seed".
    """

    code = "NN313"
    name = "nondeterministic-forward"
    severity = Severity.INFO
    needs = frozenset({Extra.SECOND_FORWARD})
    thresholds = {"rtol": 1e-6}

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 64)
                    self.drop = nn.Dropout(0.5)
                    self.fc2 = nn.Linear(64, 10)

                def forward(self, x):
                    x = x + 0.1 * torch.randn_like(x)
                    return self.fc2(self.drop(torch.relu(self.fc1(x))))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            note="torch randomness follows the seed; dropout is off in eval mode",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import random
            import torch
            import torch.nn as nn

            class Jitter(nn.Module):
                def forward(self, x):
                    return x + random.gauss(0.0, 0.1)

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 64)
                    self.jitter = Jitter()
                    self.fc2 = nn.Linear(64, 10)

                def forward(self, x):
                    return self.fc2(self.jitter(torch.relu(self.fc1(x))))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            line=13,
            contains="jitter",
        ),
    ]

    def check(self, ctx: ProbeContext) -> Iterator[Finding]:
        sf = ctx.second_forward
        if not sf or not sf.get("compared"):
            return
        rel = sf.get("rel_diff", 0.0)
        if not rel or rel != rel or rel <= self.threshold["rtol"]:
            return
        first = sf.get("first_module")
        where = f"; first differing output: {first or ctx.model_name}" if first is not None else ""
        yield Finding(
            f"two eval-mode forwards with the same seed and input differ (max difference {fmt(sf.get('max_abs_diff'))}, "
            f"relative {fmt(rel)}){where}: randomness outside torch's seed (Python random, NumPy), state that "
            "changes between calls, or nondeterministic kernels",
            module=first or None,
            evidence=dict(sf),
        )
