from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.probe import ProbeContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, ProbeRule, Valid

from .common import fmt, name


class OutputCollapse(ProbeRule):
    """## What it does
    Fires when the model's output at init is the same for every sample of a batch of
    different random inputs (largest per-unit std across the batch ≤ `rtol` × its mean
    magnitude), or has extreme magnitude (|output| ≥ 50, `max_abs`). A deliberately
    zero-initialised head (constant zero output) is not reported.

    ## Why is this bad?
    Constant outputs mean the input does not reach the output: dead units, a saturated
    stack, a detached or overwritten path, or a bias-only head. Extreme logits at init make
    softmax one-hot, the loss huge and the first gradients enormous: training starts by
    undoing the init, if it recovers at all.

    ## Example
    ```python
    self.fc2 = nn.Linear(64, 10)
    self.fc2.weight.data *= 1000          # logits ~ ±500 at init
    ```

    ## Use instead
    ```python
    self.fc2 = nn.Linear(64, 10)          # default init: logits ~ ±0.5
    ```

    ## References
    - Karpathy, "A Recipe for Training Neural Networks" (2019): "init well", "verify loss
      @ init", "input-independent baseline".
    - "37 Reasons why your Neural Network is not working" (Slav Ivanov), #1 "check your
      input data ... the same output for every input".
    """

    code = "NN311"
    name = "output-collapse"
    severity = Severity.WARNING
    thresholds = {"max_abs": 50.0, "rtol": 1e-5}

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
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            note="default init",
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
                    nn.init.zeros_(self.head.bias)

                def forward(self, x):
                    return self.head(torch.relu(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            note="zero-initialised head: constant zero output on purpose",
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
                    self.head.weight.data *= 1000

                def forward(self, x):
                    return self.head(torch.relu(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            line=8,
            contains="extreme",
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
                    self.fc1.bias.data.fill_(-100.0)

                def forward(self, x):
                    return self.head(torch.relu(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            line=8,
            contains="same",
        ),
    ]

    def check(self, ctx: ProbeContext) -> Iterator[Finding]:
        out = ctx.output
        if out is None or out.nonfinite:
            return
        head = next((l for l in ctx.layers if l.module == ctx.final_layer), None)
        where = name(ctx, ctx.final_layer)
        logits = ctx.loss is not None and ctx.loss.kind in ("cross_entropy", "nll", "bce_logits")
        what = "logits" if logits else "outputs"
        evidence = {
            "abs_max": out.abs_max,
            "mean_abs": out.mean_abs,
            "batch_std_max": out.batch_std_max,
            "shape": list(out.shape),
        }
        if out.abs_max >= self.threshold["max_abs"]:
            yield Finding(
                f"extreme {what} at init: |{what[:-1]}| up to {fmt(out.abs_max)} (mean {fmt(out.mean_abs)}) from "
                f"{where}; scale its weights down (default or zero init) so the initial predictions are soft",
                module=ctx.final_layer,
                evidence=evidence,
            )
            return
        if out.batch_std_max is None or ctx.input_varies is False:
            return
        if head is not None and head.zero_init:
            return
        scale = max(out.mean_abs, 1e-12)
        if out.batch_std_max <= self.threshold["rtol"] * scale:
            yield Finding(
                f"the {what} are the same for every sample in the batch (largest std across samples "
                f"{fmt(out.batch_std_max)} vs magnitude {fmt(out.mean_abs)}): the input does not reach {where} "
                "— look for dead or saturated units, a detached/overwritten path, or a bias-only output",
                module=ctx.final_layer,
                evidence=evidence,
            )
