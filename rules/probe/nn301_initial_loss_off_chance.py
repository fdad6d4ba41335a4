from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.probe import ProbeContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, ProbeRule, Valid

from .common import fmt, name


class InitialLossOffChance(ProbeRule):
    """## What it does
    With a k-class CrossEntropy/NLL head, compares the loss at initialisation with the loss
    of a uniform guess, ln k (k = 10 → 2.302). Without declared targets it uses the loss
    averaged over every possible target (exact, where one draw of random targets on a small
    batch scatters widely). Fires when it lies
    outside [0.5·ln k, 1.5·ln k] (configurable: `low`, `high`).

    ## Why is this bad?
    A freshly initialised classifier knows nothing, so its predicted distribution should be
    close to uniform and its loss close to -log(1/k). A loss far above it means the logits
    are already huge (a badly scaled last layer or init), so the first steps are spent
    undoing the init ("hockey stick" loss curves) or diverge; far below it on random targets
    usually means the outputs are not logits at all (e.g. `NLLLoss` on raw scores).

    ## Example
    ```python
    self.head = nn.Linear(64, 10)
    self.head.weight.data *= 100      # logits ~ ±30: initial loss ≈ 35, not 2.3
    ```

    ## Use instead
    ```python
    self.head = nn.Linear(64, 10)     # default init; or nn.init.zeros_(self.head.weight)
    ```

    ## References
    - Karpathy, "A Recipe for Training Neural Networks" (2019): "verify loss @ init ...
      -log(1/n_classes)", "init well".
    - "37 Reasons why your Neural Network is not working" (Slav Ivanov), #27 "check the
      initial loss".
    """

    code = "NN301"
    name = "initial-loss-off-chance"
    severity = Severity.WARNING
    thresholds = {"low": 0.5, "high": 1.5}

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 64)
                    self.head = nn.Linear(64, 10)

                def forward(self, x):
                    return self.head(torch.relu(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20), "loss": nn.CrossEntropyLoss()}]
            """,
            note="default init: loss ≈ ln 10",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 64)
                    self.head = nn.Linear(64, 10)
                    nn.init.zeros_(self.head.weight)

                def forward(self, x):
                    return self.head(torch.relu(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20), "loss": nn.CrossEntropyLoss()}]
            """,
            note="zero-initialised head: exactly ln k",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Regressor(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 64)
                    self.out = nn.Linear(64, 3)
                    self.out.weight.data *= 100

                def forward(self, x):
                    return self.out(torch.relu(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Regressor(), "inputs": torch.randn(8, 20), "loss": nn.MSELoss()}]
            """,
            note="a regression loss has no chance level",
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
                    self.head = nn.Linear(64, 10)
                    self.head.weight.data *= 100

                def forward(self, x):
                    return self.head(torch.relu(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20), "loss": nn.CrossEntropyLoss()}]
            """,
            line=8,
            contains="ln 10 = 2.3",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 64)
                    self.head = nn.Linear(64, 10)

                def forward(self, x):
                    return self.head(torch.relu(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20), "loss": nn.NLLLoss()}]
            """,
            line=8,
            contains="below",
        ),
    ]

    def check(self, ctx: ProbeContext) -> Iterator[Finding]:
        loss = ctx.loss
        if loss is None or loss.kind not in ("cross_entropy", "nll") or not loss.classes or loss.classes < 2:
            return
        chance = loss.chance
        value = loss.value
        if chance is None or value != value:  # NaN: NN302's business
            return
        # random targets are a guess: judge the loss averaged over every target (what the
        # draw estimates, noisily on a small batch), never one draw
        guessed = loss.expected is not None and loss.expected == loss.expected
        if guessed and loss.expected is not None:
            value = loss.expected
        lo, hi = self.threshold["low"] * chance, self.threshold["high"] * chance
        if lo <= value <= hi:
            return
        where = name(ctx, ctx.final_layer)
        k = loss.classes
        if value > hi:
            why = (
                f"{fmt(value / chance)}x above: the logits are already large at init; scale the last layer "
                f"down (default or zero init of {where}) so predictions start near uniform"
            )
        else:
            why = (
                "below it: the outputs are probably not logits (e.g. NLLLoss without "
                "log_softmax, or a loss that ignores most targets)"
            )
        yield Finding(
            f"initial {'NLL' if loss.kind == 'nll' else 'cross-entropy'} loss {fmt(value)} "
            f"{'averaged over all targets' if guessed else 'on the batch targets'} is "
            f"far from chance ln {k} = {chance:.3f} — {why}",
            module=ctx.final_layer,
            evidence={
                "loss": value,
                "loss_on_batch": loss.value,
                "over_all_targets": guessed,
                "chance": chance,
                "classes": k,
                "ratio": value / chance,
                "range": [lo, hi],
                "loss_kind": loss.kind,
                "loss_source": loss.source,
            },
        )
