from __future__ import annotations

import math
from collections.abc import Iterator

from nnlint.contexts.probe import ProbeContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, ProbeRule, Valid

from .common import fmt

HE = {"relu", "relu6", "leaky_relu", "elu"}
GLOROT = {"tanh", "sigmoid"}
LECUN = {"selu"}


def expected_std(kind: str, fan_in: int, fan_out: int | None) -> list[tuple[float, str]] | None:
    """The weight std(s) a layer feeding ``kind`` may have, each with the rule it comes from."""
    if kind in HE:
        # He's fan_in mode preserves the forward scale, fan_out mode the backward one
        # (torchvision's choice for convolutions): both are right
        out = [(math.sqrt(2.0 / fan_in), f"He (Kaiming) std for fan_in {fan_in}")]
        if fan_out:
            out.append((math.sqrt(2.0 / fan_out), f"He (Kaiming) std for fan_out {fan_out}"))
        return out
    if kind in GLOROT:
        # Glorot balances fan-in and fan-out; LeCun (fan-in only) is its forward-pass
        # half: both preserve the variance of a symmetric activation, so either is fine
        out = [(math.sqrt(1.0 / fan_in), f"LeCun std for fan_in {fan_in}")]
        if fan_out:
            out.insert(0, (math.sqrt(2.0 / (fan_in + fan_out)), f"Glorot (Xavier) std for fans {fan_in}/{fan_out}"))
        return out
    if kind in LECUN:
        return [(math.sqrt(1.0 / fan_in), f"LeCun std for fan_in {fan_in}")]
    return None


#: normalization layers: with one in the model, a small init does not shrink the signal
#: for good (the next normalization restores its scale; GPT-2's std 0.02 convention)
NORMS = (
    "LayerNorm",
    "RMSNorm",
    "GroupNorm",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "LocalResponseNorm",
)


class InitScaleMismatch(ProbeRule):
    """## What it does
    For every Linear/Conv layer whose output goes straight into an activation, compares
    the layer's weight scale (root mean square, so a constant fill counts) with the std the
    activation needs: He √(2/fan_in) (or √(2/fan_out)) for the ReLU family, Glorot √(2/(fan_in+fan_out)) (or
    LeCun √(1/fan_in)) for tanh/sigmoid, LeCun for SELU. Fires when it is off by ≥ 4×
    (`max_ratio`) in either direction. PyTorch's default init (≈ 0.4× He) passes.
    Zero-initialised weights, GELU/SiLU (transformer MLPs use small inits with
    normalization by convention) and layers followed by a normalization are not judged,
    and in a model with normalization layers (LayerNorm, BatchNorm, GroupNorm ...) only a
    scale that is too large is: a small one (GPT-2's std 0.02) is rescaled by the next norm.

    ## Why is this bad?
    A weight scale off by a factor r multiplies every activation's scale by ≈ r per layer:
    the signal explodes or dies with depth, ReLUs die or tanh/sigmoid saturate, and the
    gradients follow. Matching the init to the activation is what keeps deep networks
    trainable.

    ## Example
    ```python
    self.fc1 = nn.Linear(256, 64)
    nn.init.normal_(self.fc1.weight, std=1.0)    # He std would be 0.088: 11× too large
    ...
    x = F.relu(self.fc1(x))
    ```

    ## Use instead
    ```python
    nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")
    ```

    ## References
    - He et al., "Delving Deep into Rectifiers: Surpassing Human-Level Performance on
      ImageNet Classification" (ICCV 2015).
    - Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
      networks" (AISTATS 2010).
    - Klambauer et al., "Self-Normalizing Neural Networks" (NeurIPS 2017), LeCun init for SELU.
    """

    code = "NN308"
    name = "init-scale-mismatch"
    severity = Severity.WARNING
    thresholds = {"max_ratio": 4.0}

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class Block(nn.Module):
                def __init__(self, d=32):
                    super().__init__()
                    self.ln = nn.LayerNorm(d)
                    self.c_fc = nn.Linear(d, 4 * d)
                    self.act = nn.ReLU()
                    self.c_proj = nn.Linear(4 * d, d)
                    for lin in (self.c_fc, self.c_proj):
                        nn.init.normal_(lin.weight, mean=0.0, std=0.02)
                        nn.init.zeros_(lin.bias)

                def forward(self, x):
                    return x + self.c_proj(self.act(self.c_fc(self.ln(x))))

            def nnlint_examples():
                return [{"model": Block(), "inputs": torch.randn(4, 16, 32)}]
            """,
            note="GPT-2-style std 0.02 in a pre-LayerNorm residual block: small on purpose",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(256, 64)
                    self.fc2 = nn.Linear(64, 32)
                    self.fc3 = nn.Linear(32, 10)
                    nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")
                    nn.init.xavier_uniform_(self.fc2.weight)

                def forward(self, x):
                    return self.fc3(torch.tanh(self.fc2(F.relu(self.fc1(x)))))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 256)}]
            """,
            note="He for ReLU, Glorot for tanh, PyTorch default for the head",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(3, 16, 3, padding=1)
                    nn.init.normal_(self.conv.weight, std=1.0)
                    self.bn = nn.BatchNorm2d(16)
                    self.fc = nn.Linear(16, 10)

                def forward(self, x):
                    return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(4, 3, 8, 8)}]
            """,
            note="BatchNorm between the layer and the ReLU makes the scale irrelevant",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class MLP(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.ln = nn.LayerNorm(64)
                    self.fc = nn.Linear(64, 256)
                    self.proj = nn.Linear(256, 64)
                    nn.init.normal_(self.fc.weight, std=0.02)
                    nn.init.normal_(self.proj.weight, std=0.02)

                def forward(self, x):
                    return x + self.proj(F.gelu(self.fc(self.ln(x))))

            def nnlint_examples():
                return [{"model": MLP(), "inputs": torch.randn(8, 64)}]
            """,
            note="GPT-2-style small init before GELU",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.pw = nn.Conv2d(3, 32, 1)
                    self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
                    self.fc = nn.Linear(32, 10)
                    for conv in (self.pw, self.dw):
                        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")

                def forward(self, x):
                    x = torch.relu(self.dw(torch.relu(self.pw(x))))
                    return self.fc(x.mean((2, 3)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(4, 3, 8, 8)}]
            """,
            note="Kaiming in fan_out mode (torchvision's choice), depthwise conv included",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class SqueezeHead(nn.Module):
                def __init__(self, num_classes=10):
                    super().__init__()
                    self.features = nn.Sequential(nn.Conv2d(3, 32, 3, stride=2), nn.ReLU(),
                                                  nn.Conv2d(32, 64, 3), nn.ReLU())
                    final_conv = nn.Conv2d(64, num_classes, 1)
                    self.classifier = nn.Sequential(nn.Dropout(0.5), final_conv, nn.ReLU(inplace=True),
                                                    nn.AdaptiveAvgPool2d(1))
                    for m in self.modules():
                        if isinstance(m, nn.Conv2d):
                            if m is final_conv:
                                nn.init.normal_(m.weight, mean=0.0, std=0.01)
                            else:
                                nn.init.kaiming_uniform_(m.weight)

                def forward(self, x):
                    return torch.flatten(self.classifier(self.features(x)), 1)

            def nnlint_examples():
                return [{"model": SqueezeHead(), "inputs": torch.randn(8, 3, 32, 32)}]
            """,
            note="SqueezeNet: the final logit conv is initialised small on purpose",
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
                    self.fc1 = nn.Linear(256, 64)
                    self.fc2 = nn.Linear(64, 10)
                    nn.init.normal_(self.fc1.weight, std=1.0)

                def forward(self, x):
                    return self.fc2(F.relu(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 256)}]
            """,
            line=8,
            contains="He",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(64, 64)
                    self.act = nn.Tanh()
                    self.fc2 = nn.Linear(64, 10)
                    nn.init.normal_(self.fc1.weight, std=0.001)

                def forward(self, x):
                    return self.fc2(self.act(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 64)}]
            """,
            line=7,
            contains="too small",
        ),
    ]

    def check(self, ctx: ProbeContext) -> Iterator[Finding]:
        limit = self.threshold["max_ratio"]
        normalized = any(m.type.endswith(NORMS) for m in ctx.modules.values())
        last = max((lay.order for lay in ctx.layers if not lay.embedding), default=None)
        for layer in ctx.layers:
            if layer.embedding or layer.zero_init or not layer.feeds or not layer.fan_in:
                continue
            if layer.type not in ("Linear", "Conv1d", "Conv2d", "Conv3d", "Bilinear") and not layer.type.startswith(
                "Conv"
            ):
                continue
            exp = expected_std(layer.feeds, layer.fan_in, layer.fan_out)
            if exp is None or layer.weight_rms <= 0 or not math.isfinite(layer.weight_rms):
                continue
            ratios = [layer.weight_rms / std for std, _ in exp]
            ratio = min(ratios, key=lambda r: abs(math.log(r)))
            if 1 / limit < ratio < limit:
                continue
            if ratio < 1 and normalized:
                continue  # small on purpose (std 0.02 under LayerNorm): the next norm rescales
            if ratio < 1 and layer.order == last:
                continue  # the final (logit) layer initialised small on purpose (SqueezeNet's std 0.01)
            ref, scheme = exp[ratios.index(ratio)]
            direction = "too large" if ratio > 1 else "too small"
            yield Finding(
                f"{layer.module}'s weight scale {fmt(layer.weight_rms)} is {fmt(max(ratio, 1 / ratio))}x {direction} "
                f"for the {layer.feeds} that follows (the {scheme} is {fmt(ref)}); "
                f"use nn.init.{'kaiming_normal_(w, nonlinearity=' + repr('relu') + ')' if layer.feeds in HE else 'xavier_uniform_(w)' if layer.feeds in GLOROT else 'kaiming_normal_(w, nonlinearity=' + repr('linear') + ')'}",
                module=layer.module,
                evidence={
                    "weight_rms": layer.weight_rms,
                    "expected_std": ref,
                    "ratio": ratio,
                    "activation": layer.feeds,
                    "fan_in": layer.fan_in,
                    "fan_out": layer.fan_out,
                    "scheme": scheme,
                    "normalized_model": normalized,
                },
            )
