from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.probe import Extra, ProbeContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, ProbeRule, Valid

from .common import fmt


class CannotOverfitBatch(ProbeRule):
    """## What it does
    Opt-in deep probe (`nnlint --overfit`, or select `NN312`): trains the model for N Adam
    steps (`overfit-steps`, default 30; lr 0.01) on one tiny batch (4 samples, fixed random
    targets) and fires when the loss does not fall below `max_final_ratio` (25%) of its
    starting value. The weights and buffers are restored afterwards.

    ## Why is this bad?
    Any reasonable model can memorise four samples. If it cannot, something structural is
    broken — an output activation that caps the logits (sigmoid before CrossEntropy), dead
    units, a detached path, a loss/target mismatch — and no amount of data or tuning will
    fix it. This is the cheapest end-to-end test of a model.

    ## Example
    ```python
    def forward(self, x):
        return torch.sigmoid(self.fc2(F.relu(self.fc1(x))))   # fed to CrossEntropyLoss
    ```

    ## Use instead
    ```python
    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))                  # raw logits
    ```

    ## References
    - Karpathy, "A Recipe for Training Neural Networks" (2019): "overfit one batch".
    - "37 Reasons why your Neural Network is not working" (Slav Ivanov), #28 "overfit a
      small subset of the data".
    """

    code = "NN312"
    name = "cannot-overfit-batch"
    severity = Severity.WARNING
    opt_in = True
    needs = frozenset({Extra.OVERFIT})
    thresholds = {"max_final_ratio": 0.25}

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 64)
                    self.fc2 = nn.Linear(64, 10)

                def forward(self, x):
                    return self.fc2(torch.relu(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20), "loss": nn.CrossEntropyLoss()}]
            """,
            config={"overfit": True},
            note="a plain MLP memorises 4 samples",
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
                    self.fc1 = nn.Linear(20, 64)
                    self.fc2 = nn.Linear(64, 10)

                def forward(self, x):
                    return torch.sigmoid(self.fc2(torch.relu(self.fc1(x))))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20), "loss": nn.CrossEntropyLoss()}]
            """,
            line=4,
            contains="steps",
            config={"overfit": True},
        ),
    ]

    def check(self, ctx: ProbeContext) -> Iterator[Finding]:
        of = ctx.overfit
        if not of or of.get("initial") is None or of.get("final") is None:
            return
        initial, final = of["initial"], of["final"]
        if not initial or initial != initial or initial <= 1e-6:
            return
        if final == final and final <= self.threshold["max_final_ratio"] * initial:
            return
        yield Finding(
            f"cannot overfit one batch: {of['steps']} {of['optimizer']} steps (lr {of['lr']}) on {of['samples']} "
            f"samples took the loss from {fmt(initial)} to {fmt(final)} (needs <= {fmt(self.threshold['max_final_ratio'] * initial)}); "
            "something structural stops learning — an output activation capping the logits, dead units, a "
            "detached path or a loss/target mismatch",
            evidence=dict(of),
        )
