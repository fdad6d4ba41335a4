from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from nnlint.analysis.init_sites import Layers, Resolver, class_layers, init_sites, weight_owner
from nnlint.analysis.structure import layer_uses
from nnlint.analysis.syntax import arg, name_tokens, number, positional, words
from nnlint.contexts.source import SourceContext, normalize_torch_name
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

_INIT_CONST = {
    "torch.nn.init.constant_": None,
    "torch.nn.init.constant": None,
    "torch.nn.init.ones_": 1.0,
    "torch.nn.init.zeros_": 0.0,
}
_CONST_TENSORS = {
    "torch.ones": 1.0,
    "torch.zeros": 0.0,
    "torch.ones_like": 1.0,
    "torch.zeros_like": 0.0,
    "torch.full": None,
    "torch.full_like": None,
}
#: layers whose weights are a matrix of units (a norm's weight is a per-channel scale)
_WEIGHTED = {"linear", "conv"}
#: names of layers that end a residual branch or a network: zero-init there is a known
#: good practice (Goyal et al. 2017, Fixup, GPT-2's c_proj, DiT/ControlNet zero layers)
_LAST_WORDS = {
    "proj",
    "out",
    "output",
    "final",
    "last",
    "zero",
    "zeros",
    "gate",
    "gating",
    "modulation",
    "adaln",
    "res",
    "residual",
    "skip",
    "head",
    "classifier",
    "logits",
    "lora",
    "b",
}


def _single_unit(ctx: SourceContext, ctor: cst.Call) -> bool:
    """``nn.Linear(n, 1)`` / ``nn.Conv2d(c, 1, k)``: a layer with one output unit."""
    name = (ctx.qualname(ctor.func) or "").rsplit(".", 1)[-1]
    out = (
        arg(ctor, 0, "out_features" if "Linear" in name else "out_channels")
        if name.startswith("Lazy")
        else arg(ctor, 1, "out_features" if "Linear" in name else "out_channels")
    )
    return number(out) == 1


class ConstantWeightInit(SourceRule):
    """## What it does
    Flags a Linear/Conv weight set to a constant: `.weight.data.fill_(c)`, `.weight.zero_()`,
    `nn.init.constant_(w, c)`, `nn.init.ones_(w)`/`zeros_(w)`, or
    `.weight.data = torch.ones(...)`/`torch.zeros(...)`/`torch.full(...)`.

    ## Why is this bad?
    With a constant weight every unit of the layer computes the same function of its input
    and receives the same gradient, so the units stay identical and the layer acts like a
    single unit (the symmetry is never broken). A large constant also explodes activations
    from the first step; zeros kill the gradient flowing to earlier layers. Weights need a
    random init scaled to the layer (PyTorch's default, `kaiming_*` or `xavier_*`).

    Not flagged: biases; norm-layer weights and biases (set to 1 and 0 on purpose, resolved
    from `isinstance(m, nn.BatchNorm2d)` guards or the attribute's constructor); and
    zero-init of the last layer of a residual branch or of the network (torchvision's
    `zero_init_residual`, GPT-2's `c_proj`, Fixup, DiT/ControlNet zero layers), which is a
    known good practice because the preceding random layers break the symmetry.

    ## Example
    ```python
    self.fc1 = nn.Linear(784, 256)
    self.fc2 = nn.Linear(256, 10)
    nn.init.constant_(self.fc1.weight, 0.5)
    ```

    ## Use instead
    ```python
    nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")
    nn.init.zeros_(self.fc1.bias)
    ```

    ## References
    - Goodfellow, Bengio & Courville, "Deep Learning", section 8.4 ("the need to break
      symmetry between different units").
    - Karpathy, "A Recipe for Training Neural Networks" (2019), "init well"; Slav Ivanov,
      "37 Reasons why your Neural Network is not working" (2017), "Check weights
      initialization".
    - Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour" (2017) and
      torchvision's `zero_init_residual`: zeroing the last BN of each residual branch is
      intended. Zhang, Dauphin & Ma, "Fixup Initialization" (ICLR 2019): zero-init of the
      last layer of each residual branch and of the classifier.
    - PyTorch docs, `torch.nn.init`.
    """

    code = "NN111"
    name = "constant-weight-init"
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(3, 16, 3)
                    self.bn = nn.BatchNorm2d(16)
                    for m in self.modules():
                        if isinstance(m, nn.Conv2d):
                            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                            nn.init.constant_(m.bias, 0)
                        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                            nn.init.constant_(m.weight, 1)
                            nn.init.constant_(m.bias, 0)
            """,
            note="torchvision-style init: biases and norm weights",
        ),
        Valid(
            """
            import torch.nn as nn

            class Bottleneck(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv3 = nn.Conv2d(16, 64, 1, bias=False)
                    self.bn3 = nn.BatchNorm2d(64)

            class ResNet(nn.Module):
                def __init__(self, zero_init_residual=False):
                    super().__init__()
                    self.layer1 = Bottleneck()
                    if zero_init_residual:
                        for m in self.modules():
                            if isinstance(m, Bottleneck):
                                nn.init.constant_(m.bn3.weight, 0)
                    nn.init.zeros_(self.layer1.bn3.weight)
            """,
            note="zero-init of the last BN of residual branches",
        ),
        Valid(
            """
            import torch.nn as nn

            class Block(nn.Module):
                def __init__(self, d):
                    super().__init__()
                    self.c_fc = nn.Linear(d, 4 * d)
                    self.c_proj = nn.Linear(4 * d, d)
                    nn.init.zeros_(self.c_proj.weight)

                def forward(self, x):
                    return x + self.c_proj(self.c_fc(x).relu())
            """,
            note="zero-init of a residual output projection",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(8, 8)
                    self.fc2 = nn.Linear(8, 2)
                    nn.init.zeros_(self.fc2.weight)

                def forward(self, x):
                    return self.fc2(self.fc1(x).relu())
            """,
            note="zero-init of the last layer only (the previous random layer breaks symmetry)",
        ),
        Valid(
            """
            import torch
            from torch import nn

            class Smooth(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.blur = nn.Conv2d(1, 1, 3, padding=1, bias=False)
                    self.blur.weight.data.fill_(1 / 9)
                    self.blur.weight.requires_grad = False
            """,
            note="a fixed (frozen) averaging filter",
        ),
        Valid(
            """
            import torch.nn as nn

            def weights_init(m):
                classname = m.__class__.__name__
                if classname.find('Conv') != -1:
                    nn.init.normal_(m.weight.data, 0.0, 0.02)
                elif classname.find('BatchNorm') != -1:
                    m.weight.data.fill_(1)
                    m.bias.data.fill_(0)
            """,
            note="DCGAN init: the constant goes to BatchNorm weights",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.ln = nn.LayerNorm(8)
                    self.fc = nn.Linear(8, 8)
                    nn.init.ones_(self.ln.weight)
                    self.fc.bias.data.fill_(0.01)
                    nn.init.constant_(self.fc.bias, 0)
            """,
            note="LayerNorm weight and Linear bias",
        ),
        Valid(
            """
            import torch.nn as nn

            class Mix(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.alpha = nn.Linear(2, 1, bias=False)
                    nn.init.constant_(self.alpha.weight, 0.5)
            """,
            note="a single output unit (a learnable mixing weight): nothing to be symmetric with",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self, layer):
                    super().__init__()
                    self.layer = layer
                    nn.init.zeros_(self.layer.weight)
            """,
            note="the layer's type is unknown",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(784, 256)
                    self.fc2 = nn.Linear(256, 10)
                    self.fc1.weight.data.fill_(100)

                def forward(self, x):
                    return self.fc2(self.fc1(x).relu())
            """,
            line=8,
            contains="self.fc1",
        ),
        Invalid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
                    for m in self.modules():
                        if isinstance(m, nn.Linear):
                            nn.init.constant_(m.weight, 0.5)
            """,
            line=9,
            contains="0.5",
        ),
        Invalid(
            """
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(10, 32)
                    self.out = nn.Linear(32, 2)
                    nn.init.zeros_(self.fc.weight)

                def forward(self, x):
                    return self.out(self.fc(x).tanh())
            """,
            line=8,
        ),
        Invalid(
            """
            import torch

            class Net(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = torch.nn.Linear(4, 3)
                    self.fc.weight.data = torch.ones(3, 4)
            """,
            line=7,
            contains="torch.ones",
        ),
        Invalid(
            """
            import torch.nn as nn
            from torch.nn.init import ones_

            def init_weights(m):
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    ones_(m.weight)

            net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3))
            net.apply(init_weights)
            """,
            line=6,
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        def wanted(call: cst.Call) -> bool:
            func = call.func
            if isinstance(func, cst.Attribute) and func.attr.value in ("fill_", "zero_"):
                return weight_owner(func.value) is not None
            q = ctx.qualname(func)
            if q in _INIT_CONST:
                pos = positional(call)
                return bool(pos) and weight_owner(pos[0]) is not None
            return q in _CONST_TENSORS

        resolver = None
        seen: set[int] = set()
        for call, site, func in init_sites(ctx, wanted):
            found = self._constant(ctx, call, site.stmt)
            if found is None:
                continue
            weight, value, how = found
            if id(weight) in seen:
                continue
            seen.add(id(weight))
            owner = weight_owner(weight)
            if owner is None:  # _constant returns only `owner.weight` targets
                continue
            resolver = resolver or Resolver(ctx)
            layers = resolver.resolve(owner, site, func)
            if not layers.kinds or not layers.kinds <= _WEIGHTED:
                continue
            if layers.ctors and all(_single_unit(ctx, c) for c in layers.ctors):
                continue  # one output unit: no symmetry to break (a learnable scale)
            owner_code = ctx.code(owner).strip()
            which = ""
            if isinstance(owner, cst.Name) and layers.names and layers.names != [owner.value]:
                which = f" ({', '.join('self.' + n for n in layers.names)})"
            if (value is None or value == 0) and self._zero_ok(ctx, resolver, layers, site, func, owner_code):
                continue
            cls = resolver.enclosing_class(func) if func is not None else None
            scope = cls.node if cls is not None else func.node if func is not None else ctx.module
            if {"requires", "grad"} <= words(scope):
                continue  # the code freezes something: likely a fixed, hand-set filter
            kinds = "/".join(sorted("Conv" if k == "conv" else k.capitalize() for k in layers.kinds))
            target = f"every {kinds} weight" if layers.generic else f"{owner_code}.weight{which}"
            shown = "a constant" if value is None else f"the constant {value:g}"
            large = " and large constants blow activations up" if value is not None and abs(value) >= 1 else ""
            yield Finding(
                f"{target} is set to {shown} ({how}): all its units start identical and get identical "
                f"gradients, so the symmetry is never broken{large}; use a random init "
                f"(nn.init.kaiming_normal_ for ReLU layers, xavier_uniform_ for tanh) or keep PyTorch's default",
                node=site.stmt if how.startswith("=") else call,
                model=cls.name if cls else None,
            )

    def _constant(
        self, ctx: SourceContext, call: cst.Call, stmt
    ) -> tuple[cst.BaseExpression, float | None, str] | None:
        """(weight expression, constant or None when not a literal, how it was set)."""
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "zero_":
            return func.value, 0.0, ".zero_()"
        if isinstance(func, cst.Attribute) and func.attr.value == "fill_":
            pos = positional(call)
            return func.value, number(pos[0]) if pos else None, f".fill_({ctx.code(pos[0]) if pos else ''})"
        q = ctx.qualname(func)
        if q in _INIT_CONST:
            value = _INIT_CONST[q]
            if value is None:
                value = number(arg(call, 1, "val"))
            return positional(call)[0], value, f"{ctx.code(func)}"
        if q in _CONST_TENSORS and isinstance(stmt, cst.Assign):
            value = _CONST_TENSORS[q]
            if value is None:
                value = number(arg(call, 1, "fill_value"))
            rhs: cst.BaseExpression | None = stmt.value
            if isinstance(rhs, cst.Call) and normalize_torch_name(ctx.qualname(rhs.func) or "") in (
                "torch.nn.Parameter",
                "torch.nn.parameter.Parameter",
            ):
                inner = positional(rhs)
                rhs = inner[0] if inner else None
            if rhs is not call:
                return None
            for t in stmt.targets:
                if weight_owner(t.target) is not None:
                    return t.target, value, f"= {ctx.code(func)}(...)"
        return None

    def _zero_ok(self, ctx: SourceContext, resolver: Resolver, layers: Layers, site, func, owner_code: str) -> bool:
        """Zero-init that is (or may be) the known-good last-layer kind."""
        if func is not None and "zero" in func.name.lower():
            return True
        for test, _positive in site.guards:
            # `if zero_init_residual:`, `if name.startswith('head'):`: a chosen layer
            if words(test) & _LAST_WORDS:
                return True
        if name_tokens(owner_code) & _LAST_WORDS:
            return True
        uses = layer_uses(resolver.st)
        if layers.generic:
            scope = resolver.scope_classes(func)
            if scope is None:
                # applied to a model we cannot see: zeroing can be deliberate (an
                # accumulator for weight averaging); only non-zero constants are judged
                return True
            covered = [c for cls in scope for c in class_layers(resolver.st, cls, layers.kinds)]
            # zeroing every layer of the kind is only harmless when there is just one
            return len(covered) <= 1
        if not layers.ctors:
            return True
        for ctor in layers.ctors:
            found = uses.get(id(ctor))
            if not found:
                return True  # not seen in any sequence: cannot tell whether it is the last
            if not any(u.followed for u in found):
                return True
        return False
