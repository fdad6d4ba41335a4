from __future__ import annotations

import math
from collections.abc import Iterator

from nnlint.contexts.probe import ProbeContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, ProbeRule, Valid

from .common import fmt


class ActivationScaleDrift(ProbeRule):
    """## What it does
    Follows the standard deviation of the activations entering each weight layer (in
    execution order) on the probe batch, from the first layer's input to the last hidden
    activation (the input of the final layer). Fires when it changes by ≥ 100×
    (`max_change`) and the change is spread over the layers (geometric: no single layer
    accounts for more than `max_single_step` of it, so one pooling step does not count).

    ## Why is this bad?
    When every layer multiplies the scale by the same factor, deep networks end up with
    activations (and gradients) that explode or vanish exponentially with depth: layers are
    not fed normalized inputs, the effective learning rate differs wildly per layer, and
    training stalls or diverges. The fix is an init whose gain matches the activation, or
    normalization layers.

    ## Example
    ```python
    self.layers = nn.ModuleList([nn.Linear(64, 64) for _ in range(6)])
    for layer in self.layers:
        nn.init.normal_(layer.weight, std=0.5)   # ×2.8 per layer
    ```

    ## Use instead
    ```python
    for layer in self.layers:
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")  # scale preserved
    ```

    ## References
    - He et al., "Delving Deep into Rectifiers" (ICCV 2015): variance-preserving init.
    - Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
      networks" (AISTATS 2010).
    - Karpathy, "A Recipe for Training Neural Networks" (2019).
    """

    code = "NN307"
    name = "activation-scale-drift"
    severity = Severity.WARNING
    thresholds = {"max_change": 100.0, "max_single_step": 0.75}

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
                    self.bn = nn.BatchNorm2d(c)

                def forward(self, x):
                    return torch.relu(x + self.bn(self.conv(x)))

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.stem = nn.Conv2d(3, 16, 3, padding=1)
                    self.blocks = nn.Sequential(*[Block(16) for _ in range(4)])
                    self.fc = nn.Linear(16, 10)

                def forward(self, x):
                    x = self.blocks(torch.relu(self.stem(x)))
                    return self.fc(x.mean((2, 3)) * 0.01)

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(4, 3, 8, 8)}]
            """,
            note="one sharp change (a scaled pooling) is not a geometric drift",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(64, 64) for _ in range(6)])
                    for layer in self.layers:
                        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                    self.head = nn.Linear(64, 10)

                def forward(self, x):
                    for layer in self.layers:
                        x = torch.relu(layer(x))
                    return self.head(x)

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 64)}]
            """,
            note="He init keeps the scale",
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
                    self.layers = nn.ModuleList([nn.Linear(64, 64) for _ in range(6)])
                    for layer in self.layers:
                        nn.init.normal_(layer.weight, std=0.5)
                    self.head = nn.Linear(64, 10)

                def forward(self, x):
                    for layer in self.layers:
                        x = torch.relu(layer(x))
                    return self.head(x)

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 64)}]
            """,
            line=7,
            contains="std",
        ),
    ]

    def check(self, ctx: ProbeContext) -> Iterator[Finding]:
        layers = [l for l in ctx.layers if not l.embedding and l.in_std is not None]
        if len(layers) < 3:
            return
        stds = [l.in_std for l in layers if l.in_std is not None]
        if any(not (math.isfinite(s) and s > 0) for s in stds):
            return
        ref, last = stds[0], stds[-1]
        total = math.log10(last / ref)
        limit = math.log10(self.threshold["max_change"])
        if abs(total) < limit:
            return
        steps = [math.log10(b / a) for a, b in zip(stds, stds[1:])]
        if max(abs(s) for s in steps) > self.threshold["max_single_step"] * abs(total):
            return
        grow = total > 0
        # the layer whose output first carries the full drift
        at = layers[-2]
        for l in layers:
            if l.out_std is not None and l.out_std > 0 and math.isfinite(l.out_std):
                change = math.log10(l.out_std / ref)
                if (change >= limit) if grow else (change <= -limit):
                    at = l
                    break
        yield Finding(
            f"activation scale {'grows' if grow else 'shrinks'} geometrically: std {fmt(ref)} at the input of "
            f"{layers[0].module}, {fmt(last)} at the input of {layers[-1].module} ({fmt(last / ref)}x over "
            f"{len(layers) - 1} layers); {at.module} is where it crosses {fmt(self.threshold['max_change'])}x. Use an init "
            "whose gain matches the activation (He for ReLU, Glorot for tanh) or add normalization",
            module=at.module,
            evidence={
                "input_std": {l.module: l.in_std for l in layers[:24]},
                "change": last / ref,
                "steps_log10": steps[:24],
            },
        )
