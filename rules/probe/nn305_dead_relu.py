from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from nnlint.contexts.probe import ProbeContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, ProbeRule, Valid

from .common import activation_site


def chance_of_dead(act) -> float:
    """How likely this many dead units are for a healthy layer. A healthy unit's input is
    centred on zero; when that input hardly varies across the batch (globally pooled random
    images, a squeeze-excitation's few units) "negative for every sample" is the sign of one
    draw: probability 1/2 per unit. The binomial tail P(X >= dead | n, 1/2)."""
    n = round(act.units * (1 - act.masked_frac)) if act.units else 0
    if n <= 0:
        return 1.0
    k = min(n, round(act.dead_frac * n))
    if n > 1000:  # normal approximation
        z = (k - 0.5 - n / 2) / math.sqrt(n / 4)
        return 0.5 * math.erfc(z / math.sqrt(2))
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n


class DeadRelu(ProbeRule):
    """## What it does
    Measures, for every ReLU (an `nn.ReLU`/`nn.ReLU6` module or a functional `F.relu`,
    `torch.relu`, `x.relu()`), the fraction of its units whose input is negative for every
    sample of the probe batch. Fires when it is ≥ 50% (`dead_fraction`) and that many dead
    units would be improbable (p < 0.01, `chance_p`) even if every unit were a fair coin, as a
    healthy unit fed an input that hardly varies across the batch is: a layer of 8 units
    behind a global pooling of random images, half of them "dead" by chance, is no evidence.
    Inputs that are mask constants (exact zeros from padding, `-inf`, `-1e9`) are left out.

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
    thresholds = {"dead_fraction": 0.5, "chance_p": 0.01}

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
        Valid(
            """
            import torch
            import torch.nn as nn


            class SEBlock(nn.Module):
                def __init__(self, c=32, squeeze=8):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, padding=1)
                    self.bn = nn.BatchNorm2d(c)
                    self.pool = nn.AdaptiveAvgPool2d(1)
                    self.fc1 = nn.Conv2d(c, squeeze, 1)
                    self.act = nn.ReLU()
                    self.fc2 = nn.Conv2d(squeeze, c, 1)

                def forward(self, x):
                    y = torch.relu(self.bn(self.conv(x)))
                    s = torch.sigmoid(self.fc2(self.act(self.fc1(self.pool(y)))))
                    return y * s


            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.stem = nn.Conv2d(3, 32, 3, padding=1)
                    self.blocks = nn.Sequential(SEBlock(), SEBlock(), SEBlock())
                    self.head = nn.Linear(32, 10)

                def forward(self, x):
                    return self.head(self.blocks(self.stem(x)).mean((2, 3)))


            def nnlint_examples():
                torch.manual_seed(0)
                return [{"model": Net(), "inputs": torch.randn(8, 3, 32, 32)}]
            """,
            note="squeeze-excitation: 8 units fed globally pooled random images, half negative by chance (RegNet)",
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

    def check(self, ctx: ProbeContext) -> Iterator[Finding]:
        worst: dict[tuple, Any] = {}  # the probe's activation records, by site
        for act in ctx.activations:
            if act.kind not in ("relu", "relu6") or act.dead_frac is None:
                continue
            if act.dead_frac < self.threshold["dead_fraction"]:
                continue
            if chance_of_dead(act) > self.threshold["chance_p"]:
                continue  # so few units that healthy ones fed a near-constant input die this often by chance
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
                evidence={
                    "dead_fraction": act.dead_frac,
                    "units": act.units,
                    "batch": ctx.batch_size,
                    "activation": act.kind,
                    "input_from": act.producer,
                    "masked_fraction": act.masked_frac,
                    "call": act.call,
                },
            )
