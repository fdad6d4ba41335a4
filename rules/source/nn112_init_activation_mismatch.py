from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from nnlint.analysis.init_sites import Resolver, class_layers, init_sites, weight_owner
from nnlint.analysis.structure import Use, layer_uses
from nnlint.analysis.syntax import arg, number, positional, string
from nnlint.analysis.torch_kinds import AFFINE_KINDS, RELU_FAMILY
from nnlint.contexts.source import SourceContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

_KAIMING = {
    "torch.nn.init.kaiming_normal_",
    "torch.nn.init.kaiming_uniform_",
    "torch.nn.init.kaiming_normal",
    "torch.nn.init.kaiming_uniform",
}
_XAVIER = {
    "torch.nn.init.xavier_normal_",
    "torch.nn.init.xavier_uniform_",
    "torch.nn.init.xavier_normal",
    "torch.nn.init.xavier_uniform",
}
_GAINED = {"torch.nn.init.orthogonal_", "torch.nn.init.orthogonal"}  # judged only with calculate_gain(...)
_NONLINEARITY = {
    "relu": "relu",
    "leaky_relu": "relu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "selu": "selu",
    "linear": "linear",
    "identity": "linear",
    "conv1d": "linear",
    "conv2d": "linear",
    "conv3d": "linear",
    "conv_transpose1d": "linear",
    "conv_transpose2d": "linear",
    "conv_transpose3d": "linear",
}
_MIN_DEPTH = 4


def act_family(act: str | None) -> str | None:
    if act in RELU_FAMILY:
        return "relu"
    if act in ("tanh", "sigmoid", "selu"):
        return act
    return None


class InitActivationMismatch(SourceRule):
    """## What it does
    Flags an explicit weight init whose gain is tuned for a different activation than the
    one that actually follows the layer.

    - Kaiming/He init (`kaiming_normal_`/`kaiming_uniform_`, whose default
      `nonlinearity='leaky_relu'` with `a=0` is ReLU's gain √2) on a layer followed by a
      hidden tanh/sigmoid;
    - Xavier/Glorot init (gain 1, derived for tanh/linear units) on layers followed by ReLU
      in a deep stack (≥ 4 Linear/Conv layers);
    - `nonlinearity=`/`calculate_gain(...)` naming a different activation than the one used
      (e.g. `nonlinearity='tanh'` before ReLU).

    Models without an explicit init are never flagged here (their defaults are measured by
    the probe, NN308), nor are gates (an SE block's sigmoid), output layers, or Xavier on a
    single projection.

    ## Why is this bad?
    Init schemes pick the weight variance so that activations and gradients keep their scale
    through the *specific* nonlinearity that follows. He init doubles the variance to make up
    for ReLU zeroing half its inputs; before tanh/sigmoid that pushes units into saturation.
    Glorot init before ReLU halves the signal at every layer, so in a deep stack the
    activations and gradients shrink geometrically. Either way the deep layers start
    badly scaled and training is slow or stalls.

    ## Example
    ```python
    self.fc1 = nn.Linear(128, 128)
    nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")
    ...
    x = torch.tanh(self.fc1(x))
    ```

    ## Use instead
    ```python
    nn.init.xavier_normal_(self.fc1.weight, gain=nn.init.calculate_gain("tanh"))
    ```

    ## References
    - He et al., "Delving Deep into Rectifiers: Surpassing Human-Level Performance on
      ImageNet Classification", ICCV 2015 (He/Kaiming init for ReLU).
    - Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
      networks", AISTATS 2010 (Xavier init for tanh/sigmoid).
    - PyTorch docs, `torch.nn.init.calculate_gain`, `kaiming_normal_`, `xavier_uniform_`.
    - Karpathy, "A Recipe for Training Neural Networks" (2019), "init well".
    """

    code = "NN112"
    name = "init-activation-mismatch"
    severity = Severity.WARNING

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class MLP(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(8, 8)
                    self.fc2 = nn.Linear(8, 2)

                def forward(self, x):
                    return self.fc2(torch.tanh(self.fc1(x)))
            """,
            note="no explicit init",
        ),
        Valid(
            """
            import torch.nn as nn

            class CNN(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.net = nn.Sequential(
                        nn.Conv2d(3, 8, 3), nn.ReLU(),
                        nn.Conv2d(8, 8, 3), nn.ReLU(),
                        nn.Conv2d(8, 8, 3), nn.ReLU(),
                        nn.Conv2d(8, 8, 3), nn.ReLU(),
                    )
                    for m in self.modules():
                        if isinstance(m, nn.Conv2d):
                            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            """,
            note="matching init (kaiming for ReLU)",
        ),
        Valid(
            """
            import torch.nn as nn

            net = nn.Sequential(nn.Linear(8, 8), nn.LeakyReLU(0.2), nn.Linear(8, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
            for layer in net:
                if isinstance(layer, nn.Linear):
                    nn.init.kaiming_uniform_(layer.weight, a=0.2, nonlinearity="leaky_relu")
            """,
            note="kaiming(leaky_relu) before LeakyReLU",
        ),
        Valid(
            """
            import torch
            from torch import nn

            class TanhNet(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.l1 = nn.Linear(8, 8)
                    self.l2 = nn.Linear(8, 8)
                    self.l3 = nn.Linear(8, 1)
                    for l in (self.l1, self.l2, self.l3):
                        nn.init.xavier_uniform_(l.weight)
                    nn.init.xavier_normal_(self.l1.weight, gain=nn.init.calculate_gain("tanh"))

                def forward(self, x):
                    x = torch.tanh(self.l1(x))
                    x = torch.sigmoid(self.l2(x))
                    return self.l3(x)
            """,
            note="xavier for tanh/sigmoid nets",
        ),
        Valid(
            """
            import torch.nn as nn

            class Attn(nn.Module):
                def __init__(self, d):
                    super().__init__()
                    self.qkv = nn.Linear(d, 3 * d)
                    self.proj = nn.Linear(d, d)
                    self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
                    nn.init.xavier_uniform_(self.qkv.weight)
                    nn.init.xavier_uniform_(self.proj.weight)
                    nn.init.xavier_uniform_(self.mlp[0].weight)
            """,
            note="xavier on attention projections and before GELU",
        ),
        Valid(
            """
            import torch.nn as nn

            class SE(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.fc1 = nn.Conv2d(c, c // 4, 1)
                    self.fc2 = nn.Conv2d(c // 4, c, 1)
                    self.relu = nn.ReLU()
                    self.gate = nn.Sigmoid()
                    for m in self.modules():
                        if isinstance(m, nn.Conv2d):
                            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

                def forward(self, x):
                    s = self.gate(self.fc2(self.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
                    return x * s
            """,
            note="kaiming before a sigmoid gate (SE block)",
        ),
        Valid(
            """
            import torch.nn as nn

            net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))
            nn.init.xavier_uniform_(net[0].weight)
            """,
            note="xavier before ReLU in a shallow net",
        ),
        Valid(
            """
            import math
            import torch
            import torch.nn as nn
            from torch.nn import init

            class TanhLayer(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.lin = nn.Linear(8, 8)
                    self.out = nn.Linear(8, 1)
                    init.kaiming_uniform_(self.lin.weight, a=math.sqrt(5))

                def forward(self, x):
                    return self.out(torch.tanh(self.lin(x)))
            """,
            note="a=sqrt(5): nn.Linear's own default init, not a ReLU gain",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(8, 1)
                    nn.init.kaiming_normal_(self.fc.weight)

                def forward(self, x):
                    return torch.sigmoid(self.fc(x))
            """,
            note="sigmoid on the output layer",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch
            import torch.nn as nn

            class MLP(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(128, 128)
                    self.fc2 = nn.Linear(128, 10)
                    nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")

                def forward(self, x):
                    return self.fc2(torch.tanh(self.fc1(x)))
            """,
            line=9,
            contains="tanh",
        ),
        Invalid(
            """
            from torch import nn

            class Deep(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.net = nn.Sequential(
                        nn.Linear(64, 64), nn.ReLU(),
                        nn.Linear(64, 64), nn.ReLU(),
                        nn.Linear(64, 64), nn.ReLU(),
                        nn.Linear(64, 64), nn.ReLU(),
                        nn.Linear(64, 10),
                    )
                    self.apply(self._init)

                def _init(self, m):
                    if isinstance(m, nn.Linear):
                        nn.init.xavier_uniform_(m.weight)
            """,
            line=17,
            contains="kaiming",
        ),
        Invalid(
            """
            import torch.nn as nn
            import torch.nn.functional as F
            from torch.nn.init import kaiming_uniform_

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(3, 8, 3)
                    self.conv2 = nn.Conv2d(8, 8, 3)
                    kaiming_uniform_(self.conv1.weight, nonlinearity="tanh")

                def forward(self, x):
                    return self.conv2(F.relu(self.conv1(x)))
            """,
            line=10,
            contains="nonlinearity='relu'",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.a = nn.Linear(8, 8)
                    self.b = nn.Linear(8, 8)
                    self.c = nn.Linear(8, 1)
                    for m in self.modules():
                        if isinstance(m, nn.Linear):
                            torch.nn.init.kaiming_uniform_(m.weight)

                def forward(self, x):
                    x = self.a(x).sigmoid()
                    x = self.b(x).sigmoid()
                    return self.c(x)
            """,
            line=12,
            contains="sigmoid",
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        def wanted(call: cst.Call) -> bool:
            q = ctx.qualname(call.func)
            if q in _KAIMING or q in _XAVIER or q in _GAINED:
                pos = positional(call)
                return bool(pos) and weight_owner(pos[0]) is not None
            return False

        resolver = None
        for call, site, func in init_sites(ctx, wanted):
            init = self._init_family(ctx, call)
            if init is None:
                continue
            family, explicit, label = init
            resolver = resolver or Resolver(ctx)
            owner = weight_owner(positional(call)[0])
            if owner is None:  # wanted() let only `owner.weight` targets through
                continue
            layers = resolver.resolve(owner, site, func)
            uses = layer_uses(resolver.st)
            if layers.generic:
                kinds = layers.kinds
                if not kinds or not kinds <= (AFFINE_KINDS | {"any"}):
                    continue
                scope = resolver.scope_classes(func)
                if scope is None:
                    continue
                ctors = [c for cls in scope for c in class_layers(resolver.st, cls, kinds)]
            else:
                if not layers.kinds or not layers.kinds <= AFFINE_KINDS:
                    continue
                ctors = layers.ctors
            mismatched: list[tuple[Use, str]] = []
            matched = 0
            for ctor in ctors:
                verdict = self._verdict(family, explicit, uses.get(id(ctor), []))
                if verdict is True:
                    matched += 1
                elif verdict:
                    mismatched.append(verdict)
            if not mismatched or matched:
                continue
            use, act = mismatched[0]
            cls = resolver.enclosing_class(func) if func is not None else None
            who = ctx.code(owner).strip()
            if isinstance(owner, cst.Name) and layers.names and layers.names != [owner.value]:
                who = f"{who} ({', '.join('self.' + n for n in layers.names)})"
            if layers.generic:
                kind = "/".join(
                    sorted(
                        "Conv" if k == "conv" else "Linear" if k == "linear" else "Linear/Conv" for k in layers.kinds
                    )
                )
                subject = f"the {kind} layers ({who}.weight)"
                feeds = f"{len(mismatched)} of them feed{'s' if len(mismatched) == 1 else ''} {act}"
            else:
                subject = who
                feeds = f"it feeds {act}"
            nxt = use.nxt
            if nxt is None:  # a use with an activation after it: _verdict found one
                continue
            where = nxt.site if nxt.site is not None else nxt.node
            line = ctx.position(where)[0]
            if family == "relu" and act in ("tanh", "sigmoid"):
                fix = (
                    f"use nn.init.xavier_normal_(w, gain=nn.init.calculate_gain('{act}'))"
                    if "kaiming" in label
                    else f"use gain=nn.init.calculate_gain('{act}')"
                )
                msg = f"{label} scales {subject} for ReLU (gain √2), but {feeds} (line {line}), which saturates at that scale: {fix}"
            elif family == "xavier":
                msg = (
                    f"{label} (Glorot, gain 1) initialises {subject}, but {feeds} (line {line}) in a stack of "
                    f"{use.depth} layers, so the signal halves at every layer: use "
                    f"nn.init.kaiming_normal_(w, nonlinearity='relu') (or gain=nn.init.calculate_gain('relu'))"
                )
            else:
                fix = f"nonlinearity='{act}'" if "kaiming" in label else f"gain=nn.init.calculate_gain('{act}')"
                msg = f"{label} initialises {subject} for {family}, but {feeds} (line {line}): pass {fix}"
            yield Finding(msg, node=call, model=cls.name if cls else None)

    def _init_family(self, ctx: SourceContext, call: cst.Call) -> tuple[str, bool, str] | None:
        """(activation the init is tuned for, named explicitly?, label) or None."""
        q = ctx.qualname(call.func) or ""
        fname = q.rsplit(".", 1)[-1]
        if q in _KAIMING:
            nl = arg(call, 3, "nonlinearity")
            value = "leaky_relu" if nl is None else string(nl)
            if value not in _NONLINEARITY:
                return None
            if value == "leaky_relu":
                # the gain is sqrt(2 / (1 + a^2)): ReLU's only for a small slope; a=sqrt(5)
                # (nn.Linear's own reset_parameters) is the uniform 1/sqrt(fan_in) default
                a = arg(call, 1, "a")
                slope = 0.0 if a is None else number(a)
                if slope is None or abs(slope) >= 0.5:
                    return None
            if nl is None:
                return "relu", False, f"{fname} (default nonlinearity='leaky_relu', a=0)"
            return _NONLINEARITY[value], True, f"{fname}(nonlinearity='{value}')"
        gain = arg(call, 1, "gain")
        if isinstance(gain, cst.Call) and (ctx.qualname(gain.func) or "").endswith("calculate_gain"):
            g = positional(gain)
            value = string(g[0]) if g else None
            if value not in _NONLINEARITY:
                return None
            return _NONLINEARITY[value], True, f"{fname}(gain=calculate_gain('{value}'))"
        if q in _XAVIER and (gain is None or number(gain) == 1.0):
            return "xavier", False, fname
        return None

    def _verdict(self, family: str, explicit: bool, uses: list[Use]) -> bool | tuple[Use, str] | None:
        """True when the activation after the layer matches the init, (use, activation) when
        it does not, None when unknown (no activation, several different ones, a gate)."""
        acts = {act_family(u.nxt.act) if u.nxt is not None and u.nxt.kind == "act" else None for u in uses}
        if len(acts) != 1 or None in acts:
            return None
        act = acts.pop()
        if act is None:  # excluded above; narrows the type
            return None
        hidden = all(u.hidden for u in uses)
        if family == "xavier":
            if act == "relu":
                return (uses[0], act) if max(u.depth for u in uses) >= _MIN_DEPTH else None
            return True
        if family == "linear":
            return None
        if act == family:
            return True
        if act in ("tanh", "sigmoid") and not hidden:
            return None  # a gate or an output squashing: not judged
        if family == "relu" and act in ("tanh", "sigmoid"):
            return uses[0], act
        if explicit:
            return uses[0], act
        return None
