from __future__ import annotations

import math
import statistics
from collections.abc import Iterator

from nnlint.contexts.probe import ProbeContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, ProbeRule, Valid

from .common import fmt, gradient_layers, layer_norms


class VanishingGradient(ProbeRule):
    """## What it does
    After one backward pass on a random batch, compares each weight layer's gradient norm
    relative to its weight norm (‖∇W‖/‖W‖, the scale of an SGD update) from the last layer
    back to the first. Fires when the first layers' relative gradient is ≥ 3 orders of
    magnitude (`orders`) below the last layer's and small in itself (< 1e-3,
    `max_relative`: when every gradient is huge the problem is NN304's, not this one), and
    the decay comes with depth: the median layer of the first half is ≥ a quarter of those
    orders (`body_share`) below the median layer of the second half. A flat stack with one
    jump at a small-init head (transformer encoders' std-0.02 classifier) does not vanish.

    ## Why is this bad?
    The early layers barely move: the network trains as if only its last layers existed,
    and the loss plateaus. Typical causes are saturating activations (sigmoid/tanh) in a
    deep stack without normalization or residual connections, or a too-small init.

    ## Example
    ```python
    self.layers = nn.ModuleList([nn.Linear(32, 32) for _ in range(8)])
    ...
    for layer in self.layers:
        x = torch.sigmoid(layer(x))
    ```

    ## Use instead
    ```python
    for layer, norm in zip(self.layers, self.norms):
        x = x + F.relu(norm(layer(x)))   # ReLU, normalization and a residual path
    ```

    ## References
    - Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
      networks" (AISTATS 2010).
    - He et al., "Delving Deep into Rectifiers" (ICCV 2015).
    - Karpathy, "A Recipe for Training Neural Networks" (2019).
    """

    code = "NN303"
    name = "vanishing-gradient"
    severity = Severity.WARNING
    thresholds = {"orders": 3.0, "max_relative": 1e-3, "body_share": 0.25}

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class Bag(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.emb = nn.Embedding(5000, 32)
                    self.fc1 = nn.Linear(32, 32)
                    self.fc2 = nn.Linear(32, 4)

                def forward(self, idx):
                    return self.fc2(torch.relu(self.fc1(self.emb(idx).mean(1))))

            def nnlint_examples():
                return [{"model": Bag(), "inputs": torch.randint(0, 5000, (8, 6))}]
            """,
            note="embedding tables get tiny, sparse gradients by nature",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
                    self.bn1 = nn.BatchNorm2d(c)
                    self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
                    self.bn2 = nn.BatchNorm2d(c)
                    nn.init.zeros_(self.bn2.weight)

                def forward(self, x):
                    out = torch.relu(self.bn1(self.conv1(x)))
                    return torch.relu(x + self.bn2(self.conv2(out)))

            class ResNet(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.stem = nn.Conv2d(3, 8, 3, padding=1)
                    self.blocks = nn.Sequential(Block(8), Block(8), Block(8))
                    self.fc = nn.Linear(8, 10)

                def forward(self, x):
                    x = self.blocks(torch.relu(self.stem(x)))
                    return self.fc(x.mean((2, 3)))

            def nnlint_examples():
                return [{"model": ResNet(), "inputs": torch.randn(4, 3, 8, 8)}]
            """,
            note="zero-init residual: the branch gradients are exactly zero at step 0 by design",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(32, 32) for _ in range(8)])
                    self.norms = nn.ModuleList([nn.LayerNorm(32) for _ in range(8)])
                    self.head = nn.Linear(32, 10)

                def forward(self, x):
                    for layer, norm in zip(self.layers, self.norms):
                        x = x + torch.relu(norm(layer(x)))
                    return self.head(x)

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 32)}]
            """,
            note="deep, but normalized with residuals",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn


            class Block(nn.Module):
                def __init__(self, d=64):
                    super().__init__()
                    self.v = nn.Linear(d, d)
                    self.out = nn.Linear(d, d)
                    self.ln1 = nn.LayerNorm(d)
                    self.ff1 = nn.Linear(d, 4 * d)
                    self.ff2 = nn.Linear(4 * d, d)
                    self.ln2 = nn.LayerNorm(d)

                def forward(self, x):
                    x = self.ln1(x + self.out(self.v(x)))
                    return self.ln2(x + self.ff2(torch.relu(self.ff1(x))))


            class Encoder(nn.Module):
                def __init__(self, d=64, classes=2):
                    super().__init__()
                    self.emb = nn.Embedding(100, d)
                    self.blocks = nn.Sequential(Block(d), Block(d))
                    self.pre_classifier = nn.Linear(d, d)
                    self.classifier = nn.Linear(d, classes)
                    for m in self.modules():
                        if isinstance(m, (nn.Linear, nn.Embedding)):
                            nn.init.normal_(m.weight, std=0.02)

                def forward(self, ids):
                    h = self.blocks(self.emb(ids))[:, 0]
                    return self.classifier(torch.relu(self.pre_classifier(h)))


            def nnlint_examples():
                torch.manual_seed(0)
                return [{"model": Encoder(), "inputs": torch.randint(0, 100, (8, 16))}]
            """,
            note="std-0.02 encoder under LayerNorm: flat relative gradients through the stack, one jump at the small-init head (DistilBERT)",
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
                    self.layers = nn.ModuleList([nn.Linear(32, 32) for _ in range(8)])
                    self.head = nn.Linear(32, 10)

                def forward(self, x):
                    for layer in self.layers:
                        x = torch.sigmoid(layer(x))
                    return self.head(x)

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 32)}]
            """,
            line=7,
            contains="orders of magnitude",
        ),
    ]

    def check(self, ctx: ProbeContext) -> Iterator[Finding]:
        if not ctx.grads_available:
            return
        layers = gradient_layers(ctx)
        if len(layers) < 2:
            return
        first, last = layers[0], layers[-1]
        orders = math.log10(last.rel / first.rel)
        if orders < self.threshold["orders"] or first.rel >= self.threshold["max_relative"]:
            return
        # vanishing is a decay *with depth*: the typical (median) layer of the first half must
        # be a share of the orders below the typical layer of the second half. A stack whose layers all get the same relative gradient and a
        # single jump at the head (a small-init classifier over a normalized transformer, whose
        # head gradient scales with the objective nnlint chose) is not a gradient that vanishes
        half = len(layers) // 2
        body = math.log10(
            statistics.median(l.rel for l in layers[half:]) / statistics.median(l.rel for l in layers[:half])
        )
        if len(layers) >= 4 and body < self.threshold["body_share"] * orders:  # a trend needs two layers a half
            return
        # the first layer that already lost `orders` magnitudes, counting back from the head
        worst = next((l for l in layers if math.log10(last.rel / l.rel) >= self.threshold["orders"]), first)
        yield Finding(
            f"vanishing gradients: {worst.module}'s gradient relative to its weights is {fmt(worst.rel)}, "
            f"{orders:.1f} orders of magnitude below the last layer {last.module} ({fmt(last.rel)}); the early "
            "layers will barely train. Use ReLU-family activations, normalization or residual connections, "
            "and an init that matches the activation",
            module=worst.module,
            evidence={
                "relative_grad": {l.module: l.rel for l in layers[:24]},
                "grad_norms": layer_norms(ctx),
                "orders": orders,
                "first": first.module,
                "last": last.module,
                "orders_between_halves": body,
            },
        )
