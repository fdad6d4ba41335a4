from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nnlint.contexts.probe import ProbeContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, ProbeRule, Valid

from .common import activation_site


class SaturatedActivation(ProbeRule):
    """## What it does
    Measures, for every sigmoid and tanh (modules and functional calls), the fraction of its
    outputs that lie within 1% of the bounds (sigmoid < 0.01 or > 0.99, |tanh| > 0.99) on
    the probe batch. Fires when it is ≥ 50% (`saturated_fraction`). Mask constants (`-inf`,
    `-1e9`) in the input are left out.

    ## Why is this bad?
    In saturation the derivative is ~0 (sigmoid'(x) ≤ 0.25 everywhere, ~0 at the bounds):
    the unit passes almost no gradient and learns extremely slowly. At init it means the
    pre-activations are far too large: a weight scale meant for ReLU, unnormalized inputs,
    or a missing normalization layer.

    ## Example
    ```python
    self.fc1 = nn.Linear(20, 64)
    nn.init.normal_(self.fc1.weight, std=5.0)
    ...
    x = torch.tanh(self.fc1(x))     # |pre-activation| ~ 20: 90% saturated
    ```

    ## Use instead
    ```python
    self.fc1 = nn.Linear(20, 64)
    nn.init.xavier_uniform_(self.fc1.weight, gain=nn.init.calculate_gain("tanh"))
    ```

    ## References
    - Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
      networks" (AISTATS 2010): saturation of sigmoid top layers.
    - Karpathy, "Yes you should understand backprop" (2016).
    - "37 Reasons why your Neural Network is not working" (Slav Ivanov), #32.
    """

    code = "NN306"
    name = "saturated-activation"
    severity = Severity.WARNING
    thresholds = {"saturated_fraction": 0.5}

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class MultiLabel(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 64)
                    self.fc2 = nn.Linear(64, 5)

                def forward(self, x):
                    return torch.sigmoid(self.fc2(torch.tanh(self.fc1(x))))

            def nnlint_examples():
                return [{"model": MultiLabel(), "inputs": torch.randn(8, 20)}]
            """,
            note="default init: tanh and sigmoid in their linear range",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Gated(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.proj = nn.Linear(16, 16)
                    self.gate = nn.Linear(16, 16)
                    self.out = nn.Linear(16, 4)

                def forward(self, x):
                    pad = torch.arange(x.size(1)) >= 3
                    g = self.gate(x).masked_fill(pad[None, :, None], -1e9)
                    h = self.proj(x) * torch.sigmoid(g)
                    return self.out(h.sum(1))

            def nnlint_examples():
                return [{"model": Gated(), "inputs": torch.randn(8, 12, 16)}]
            """,
            note="sigmoid gate fed a padding mask",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class LSTMClassifier(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.lstm = nn.LSTM(16, 32, batch_first=True)
                    self.fc = nn.Linear(32, 4)

                def forward(self, x):
                    _, (h, _) = self.lstm(x)
                    return self.fc(h[-1])

            def nnlint_examples():
                return [{"model": LSTMClassifier(), "inputs": torch.randn(8, 12, 16)}]
            """,
            note="recurrent gates",
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
                    nn.init.normal_(self.fc1.weight, std=5.0)

                def forward(self, x):
                    return self.fc2(torch.tanh(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            line=7,
            contains="saturated",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 64)
                    self.act = nn.Sigmoid()
                    self.fc2 = nn.Linear(64, 10)
                    self.fc1.weight.data.normal_(0, 5.0)

                def forward(self, x):
                    return self.fc2(self.act(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            line=8,
        ),
    ]

    def check(self, ctx: ProbeContext) -> Iterator[Finding]:
        worst: dict[tuple, Any] = {}  # the probe's activation records, by site
        for act in ctx.activations:
            if act.kind not in ("sigmoid", "tanh") or act.saturated_frac is None:
                continue
            if act.saturated_frac < self.threshold["saturated_fraction"]:
                continue
            module, line, _ = activation_site(act)
            key = (module, line)
            if key not in worst or act.saturated_frac > worst[key].saturated_frac:
                worst[key] = act
        for (module, line), act in worst.items():
            _, _, label = activation_site(act)
            yield Finding(
                f"saturated {act.kind}: {act.saturated_frac:.0%} of {label}'s outputs are within 1% of its bounds, "
                "where its gradient is ~0; scale the weights before it down (Glorot/Xavier init for "
                f"{act.kind}) or normalize its input",
                module=module,
                line=line,
                evidence={
                    "saturated_fraction": act.saturated_frac,
                    "activation": act.kind,
                    "input_from": act.producer,
                    "masked_fraction": act.masked_frac,
                    "batch": ctx.batch_size,
                },
            )
