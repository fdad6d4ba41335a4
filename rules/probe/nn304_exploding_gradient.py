from __future__ import annotations

import math
import statistics
from collections.abc import Iterator

from nnlint.contexts.probe import ProbeContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, ProbeRule, Valid

from .common import fmt, gradient_layers, layer_norms


class ExplodingGradient(ProbeRule):
    """## What it does
    After one backward pass on a random batch, fires when any weight layer's gradient norm
    is ≥ 1e4 (`max_norm`), or when the gradient relative to the weight norm grows ≥ 3
    orders of magnitude (`orders`) from the last layer back to the first, growing with depth
    (the first half's median layer ≥ a quarter of those orders above the second half's,
    `body_share`: a flat stack with one step at the head is not an explosion). Layers whose
    output goes straight into a BatchNorm are left out of that comparison: they are
    scale-invariant, so their relative gradient is large whenever their init is small. The evidence lists
    every layer's gradient norm.

    ## Why is this bad?
    The first optimizer step throws the weights far away (or to NaN); the loss jumps or
    diverges, and learning-rate tuning cannot fix it. The cause is almost always the init
    scale (weights set to a constant such as 100, or a custom init far from He/Glorot) or
    unnormalized activations that grow layer after layer.

    ## Example
    ```python
    self.conv1 = nn.Conv2d(1, 32, 3)
    self.conv1.weight.data.fill_(100)    # gradient norms ~1e5 at conv1
    ```

    ## Use instead
    ```python
    self.conv1 = nn.Conv2d(1, 32, 3)
    nn.init.kaiming_normal_(self.conv1.weight, nonlinearity="relu")
    ```

    ## References
    - "37 Reasons why your Neural Network is not working" (Slav Ivanov), #21 "exploding /
      vanishing gradients", #32 "weight initialization".
    - He et al., "Delving Deep into Rectifiers" (ICCV 2015).
    - Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
      networks" (AISTATS 2010).
    """

    code = "NN304"
    name = "exploding-gradient"
    severity = Severity.WARNING
    thresholds = {"orders": 3.0, "max_norm": 1e4, "body_share": 0.25}

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(1, 8, 3)
                    self.conv2 = nn.Conv2d(8, 16, 3)
                    self.fc = nn.Linear(16 * 12 * 12, 10)

                def forward(self, x):
                    x = F.relu(self.conv2(F.relu(self.conv1(x))))
                    return self.fc(F.max_pool2d(x, 2).flatten(1))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 1, 28, 28)}]
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
                    self.bn0 = nn.BatchNorm1d(20)
                    self.fc1 = nn.Linear(20, 64)
                    self.fc2 = nn.Linear(64, 1)

                def forward(self, x):
                    return self.fc2(torch.relu(self.fc1(self.bn0(x))))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20) * 1000}]
            """,
            note="large raw inputs, normalized by the first layer",
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
                    self.conv1 = nn.Conv2d(1, 8, 3)
                    self.conv2 = nn.Conv2d(8, 16, 3)
                    self.fc = nn.Linear(16 * 12 * 12, 10)
                    for layer in (self.conv1, self.conv2):
                        layer.weight.data.fill_(100)

                def forward(self, x):
                    x = F.relu(self.conv2(F.relu(self.conv1(x))))
                    return self.fc(F.max_pool2d(x, 2).flatten(1))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 1, 28, 28)}]
            """,
            line=10,
            contains="conv1",
            note="the constant-filled convs blow up the activations, and with them fc's gradient",
        ),
    ]

    def check(self, ctx: ProbeContext) -> Iterator[Finding]:
        if not ctx.grads_available:
            return
        big = [
            l
            for l in ctx.layers
            if l.grad_norm is not None and math.isfinite(l.grad_norm) and l.grad_norm >= self.threshold["max_norm"]
        ]
        evidence = {"grad_norms": layer_norms(ctx), "max_norm": self.threshold["max_norm"]}
        if big:
            first = big[0]  # in execution order: the explosion reaches furthest back here
            top = max(big, key=lambda l: l.grad_norm or 0.0)  # every grad_norm in big is a float
            others = ", ".join(f"{l.module} {fmt(l.grad_norm)}" for l in ctx.layers[:6] if l.grad_norm is not None)
            yield Finding(
                f"exploding gradients: {first.module}'s gradient norm is {fmt(first.grad_norm)} "
                f"(largest: {top.module} {fmt(top.grad_norm)}; per layer: {others}); one optimizer step will "
                "wreck the weights. Check the init scale (He/Glorot instead of constants) and normalize activations",
                module=first.module,
                evidence=evidence,
            )
            return
        # a layer right before a BatchNorm is scale-invariant: its relative gradient is
        # 1/‖W‖²-large when its init is small, and the norm undoes any blow-up of its output
        layers = [l for l in gradient_layers(ctx) if not getattr(l, "batch_normed", False)]
        if len(layers) < 2:
            return
        first, last = layers[0], layers[-1]
        orders = math.log10(first.rel / last.rel)
        half = len(layers) // 2
        # growth *with depth*: the first half's median layer is a share of the orders above the
        # second half's; a flat stack with one drop at the head (BatchNorm'd convs, whose
        # relative gradient is scale-free, under a large-init classifier) is no explosion
        body = math.log10(
            statistics.median(l.rel for l in layers[:half]) / statistics.median(l.rel for l in layers[half:])
        )
        # (a trend needs two layers a half: a 3-layer chain is judged end to end)
        if orders >= self.threshold["orders"] and (len(layers) < 4 or body >= self.threshold["body_share"] * orders):
            evidence.update(
                relative_grad={l.module: l.rel for l in layers[:24]}, orders=orders, orders_between_halves=body
            )
            yield Finding(
                f"exploding gradients: {first.module}'s gradient relative to its weights is {fmt(first.rel)}, "
                f"{orders:.1f} orders of magnitude above the last layer {last.module} ({fmt(last.rel)}); "
                "activations or weights grow layer after layer. Use an init matching the activation and normalization",
                module=first.module,
                evidence=evidence,
            )
