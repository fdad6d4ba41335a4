from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from nnlint.analysis.structure import Op, structure
from nnlint.analysis.syntax import arg, has_star, line_of
from nnlint.analysis.torch_kinds import short
from nnlint.contexts.source import SourceContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

# index of `bias` among the positional parameters of each layer
_BIAS_INDEX = {"Linear": 2, "LazyLinear": 1}
_BN_AFTER_LINEAR = {"BatchNorm1d", "LazyBatchNorm1d", "SyncBatchNorm"}


def bias_enabled(ctx: SourceContext, call: cst.Call) -> bool | None:
    """True when the layer built by ``call`` has a bias (the default), False when
    ``bias=False``, None when it cannot be told (a variable, ``**kwargs``)."""
    name = short(ctx.qualname(call.func))
    if name in _BIAS_INDEX:
        index = _BIAS_INDEX[name]
    else:
        index = 6 if name.startswith("Lazy") else 7  # Conv*/ConvTranspose*(..., groups, bias)
    value = arg(call, index, "bias")
    if value is None:
        return None if has_star(call) else True
    if isinstance(value, cst.Name) and value.value == "True":
        return True
    if isinstance(value, cst.Name) and value.value in ("False", "None"):
        return False
    return None


def describe(ctx: SourceContext, op: Op) -> str:
    kind = short(ctx.qualname(op.ctor.func)) if op.ctor is not None else op.label
    return f"self.{op.attr} ({kind})" if op.attr else f"{kind} (line {line_of(ctx, op.node)})"


class BiasBeforeNorm(SourceRule):
    """## What it does
    Flags a `Conv*d`/`Linear` layer that keeps its bias (`bias=True`, the default) while its
    output goes straight into a BatchNorm (or, after a convolution, an InstanceNorm), in an
    `nn.Sequential(...)` or in `forward` (`self.bn1(self.conv1(x))`,
    `x = self.conv1(x); x = self.bn1(x)`).

    ## Why is this bad?
    BatchNorm subtracts the per-channel (per-feature) mean of its input, so a per-channel
    constant added just before it cancels out exactly: the bias gets no gradient, never
    changes the output and only costs parameters, memory and optimizer state. BatchNorm's own
    `beta` already provides the shift. This is why ResNet and friends build their
    convolutions with `bias=False`.

    A LayerNorm or GroupNorm after the layer is deliberately not flagged: they subtract a mean
    over features (or groups of channels), which removes only the average of the bias, not
    the per-channel differences.

    ## Example
    ```python
    self.conv1 = nn.Conv2d(3, 64, 3, padding=1)
    self.bn1 = nn.BatchNorm2d(64)
    ...
    x = F.relu(self.bn1(self.conv1(x)))
    ```

    ## Use instead
    ```python
    self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    ```

    ## References
    - Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing
      Internal Covariate Shift", ICML 2015, section 3.2 ("the bias b can be ignored since its
      effect will be canceled by the subsequent mean subtraction").
    - PyTorch, "Performance Tuning Guide": "Disable bias for convolutions directly followed
      by a batch norm".
    - torchvision `resnet.py` (`conv3x3(..., bias=False)` before every BatchNorm2d).
    """

    code = "NN115"
    name = "bias-before-norm"
    severity = Severity.INFO

    VALID = [
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(3, 16, 3, bias=False)
                    self.bn1 = nn.BatchNorm2d(16)

                def forward(self, x):
                    return self.bn1(self.conv1(x))
            """,
            note="bias=False",
        ),
        Valid(
            """
            import torch.nn as nn

            net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.BatchNorm2d(16))
            """,
            note="a nonlinearity sits between conv and norm: the bias is not cancelled",
        ),
        Valid(
            """
            import torch.nn as nn

            class Block(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(32, 32, 3, padding=1)
                    self.gn = nn.GroupNorm(8, 32)

                def forward(self, x):
                    return self.gn(self.conv(x))
            """,
            note="GroupNorm removes only a per-group mean of the bias",
        ),
        Valid(
            """
            from torch import nn

            class Embed(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.proj = nn.Linear(64, 128)
                    self.norm = nn.LayerNorm(128)

                def forward(self, x):
                    return self.norm(self.proj(x))
            """,
            note="LayerNorm after Linear re-centres over features, per-feature bias differences survive",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(3, 16, 3)
                    self.bn = nn.BatchNorm2d(16)

                def forward(self, x):
                    y = self.conv(x)
                    return self.bn(y), y.mean()
            """,
            note="the biased output is also used elsewhere",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self, use_bias):
                    super().__init__()
                    self.fc = nn.Linear(10, 10, bias=use_bias)
                    self.bn = nn.BatchNorm1d(10)

                def forward(self, x):
                    x = self.fc(x)
                    x = self.bn(x)
                    return x
            """,
            note="bias chosen by a variable: unknown",
        ),
        Valid(
            """
            import torch.nn as nn

            net = nn.Sequential(nn.BatchNorm1d(10), nn.Linear(10, 10))
            """,
            note="norm before the layer",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(3, 64, 3, padding=1)
                    self.bn1 = nn.BatchNorm2d(64)

                def forward(self, x):
                    return F.relu(self.bn1(self.conv1(x)))
            """,
            line=7,
            contains="bias=False",
        ),
        Invalid(
            """
            from torch.nn import BatchNorm2d, Conv2d, ReLU, Sequential

            features = Sequential(
                Conv2d(3, 32, 3),
                BatchNorm2d(32),
                ReLU(),
            )
            """,
            line=4,
        ),
        Invalid(
            """
            import torch

            class Head(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = torch.nn.Linear(128, 64, True)
                    self.bn = torch.nn.BatchNorm1d(64)

                def forward(self, x):
                    x = self.fc(x)
                    x = self.bn(x)
                    return torch.relu(x)
            """,
            line=6,
            contains="self.fc",
        ),
        Invalid(
            """
            from torch import nn

            class Gen(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.up = nn.Sequential(nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.InstanceNorm2d(32), nn.ReLU())

                def forward(self, z):
                    return self.up(z)
            """,
            line=6,
        ),
        Invalid(
            """
            import torch.nn as nn

            class ConvBNReLU(nn.Sequential):
                def __init__(self, cin, cout):
                    super().__init__(
                        nn.Conv2d(cin, cout, 3, padding=1),
                        nn.BatchNorm2d(cout),
                        nn.ReLU(inplace=True),
                    )
            """,
            line=6,
            note="an nn.Sequential subclass built in super().__init__",
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        seen: set[int] = set()
        for chain in structure(ctx).chains():
            ops = chain.ops
            for layer, norm in zip(ops, ops[1:]):
                if layer.ctor is None or norm.ctor is None or id(layer.node) in seen:
                    continue
                norm_name = short(ctx.qualname(norm.ctor.func))
                if layer.kind == "conv":
                    if norm.kind not in ("batchnorm", "instancenorm"):
                        continue
                elif layer.kind == "linear":
                    if norm_name not in _BN_AFTER_LINEAR:
                        continue
                else:
                    continue
                if bias_enabled(ctx, layer.ctor) is not True:
                    continue
                seen.add(id(layer.node))
                yield Finding(
                    f"{describe(ctx, layer)} has a bias but feeds {describe(ctx, norm)} directly, whose mean "
                    f"subtraction cancels it (wasted parameters): pass bias=False",
                    node=layer.node,
                    model=chain.cls.name if chain.cls else None,
                )
