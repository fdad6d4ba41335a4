from __future__ import annotations

from typing import Any, Iterator

from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, ProbeRule, Valid

from ._common import activation_site


class DeadRelu(ProbeRule):
    """## What it does
    Measures, for every ReLU (an `nn.ReLU`/`nn.ReLU6` module or a functional `F.relu`,
    `torch.relu`, `x.relu()`), the fraction of its units whose input is negative for every
    sample of the probe batch. Fires when it is ≥ 50% (`dead_fraction`). Inputs that are
    mask constants (exact zeros from padding, `-inf`, `-1e9`) are left out.

    ## Why is this bad?
    A unit that is zero for every input passes no gradient: it never recovers, and the
    layer before it gets no gradient through it either. At init this is caused by large
    negative biases, a bad weight scale, or an input distribution far from the one the
    layer was initialised for.

    ## Example
    ```python
    self.fc1 = nn.Linear(784, 128)
    nn.init.constant_(self.fc1.bias, -100.0)
    ...
    x = F.relu(self.fc1(x))          # 100% of units dead
    ```

    ## Use instead
    ```python
    self.fc1 = nn.Linear(784, 128)   # default bias init (or zeros), normalized inputs
    ```

    ## References
    - Karpathy, "Yes you should understand backprop" (2016), "dead ReLUs"; and "A Recipe
      for Training Neural Networks" (2019).
    - He et al., "Delving Deep into Rectifiers" (ICCV 2015).
    """

    code = "NN305"
    name = "dead-relu"
    severity = Severity.WARNING
    thresholds = {"dead_fraction": 0.5}

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 64)
                    self.fc2 = nn.Linear(64, 10)

                def forward(self, x):
                    return self.fc2(F.relu(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            note="default init: about half the units active per sample",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Pooler(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.proj = nn.Linear(16, 16)
                    self.out = nn.Linear(16, 4)

                def forward(self, x):
                    h = self.proj(x)
                    pad = torch.arange(x.size(1)) >= 2
                    h = h.masked_fill(pad[None, :, None], float("-inf"))
                    return self.out(torch.relu(h).amax(1))

            def nnlint_examples():
                return [{"model": Pooler(), "inputs": torch.randn(8, 10, 16)}]
            """,
            note="the ReLU's input is mostly a padding mask (-inf)",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(3, 8, 3, padding=1)
                    self.bn = nn.BatchNorm2d(8)
                    self.act = nn.ReLU(inplace=True)
                    self.fc = nn.Linear(8, 10)

                def forward(self, x):
                    return self.fc(self.act(self.bn(self.conv(x))).mean((2, 3)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(4, 3, 8, 8)}]
            """,
            note="in-place ReLU after BatchNorm",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 64)
                    self.fc2 = nn.Linear(64, 10)
                    nn.init.constant_(self.fc1.bias, -100.0)

                def forward(self, x):
                    return self.fc2(F.relu(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            line=8,
            contains="100%",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 64)
                    self.act = nn.ReLU()
                    self.fc2 = nn.Linear(64, 10)
                    self.fc1.bias.data.fill_(-100.0)

                def forward(self, x):
                    return self.fc2(self.act(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            line=8,
            contains="dead",
        ),
    ]

    def check(self, ctx) -> Iterator[Finding]:
        worst: dict[tuple, Any] = {}  # the probe's activation records, by site
        for act in ctx.activations:
            if act.kind not in ("relu", "relu6") or act.dead_frac is None:
                continue
            if act.dead_frac < self.t["dead_fraction"]:
                continue
            module, line, label = activation_site(act)
            key = (module, line)
            if key not in worst or act.dead_frac > worst[key].dead_frac:
                worst[key] = act
        for (module, line), act in worst.items():
            _, _, label = activation_site(act)
            yield Finding(
                f"dead ReLU: {act.dead_frac:.0%} of {label}'s {act.units} units are negative for every sample in "
                f"the batch of {ctx.batch_size}, so they output 0 and pass no gradient; check the bias and weight "
                "init of the layer before it and that its inputs are normalized",
                module=module,
                line=line,
                evidence={"dead_fraction": act.dead_frac, "units": act.units, "batch": ctx.batch_size,
                          "activation": act.kind, "input_from": act.producer, "masked_fraction": act.masked_frac,
                          "call": act.call},
            )
