from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from nnlint.analysis.syntax import is_self_attr, line_of, names_assigned, names_read, positional, self_name, walk
from nnlint.contexts.source import ClassInfo, SourceContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

_FLOW_EXITS = (cst.Return, cst.Raise, cst.Break, cst.Continue, cst.Yield, cst.Global, cst.Nonlocal)


def _layer_assign(
    ctx: SourceContext, stmt, sname: str, cls: ClassInfo
) -> tuple[str, cst.BaseExpression, cst.Call, str, str] | None:
    """(target, value, layer call, layer, input) for ``target = <expr>`` whose data input
    runs through a layer call ``self.layer(...)`` down to a plain name ``input``:
    ``x = self.conv(inp)``, ``x = F.relu(self.bn(self.conv(inp)))``,
    ``x = self.fc(inp).flatten(1)``."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return None
    s = stmt.body[0]
    if not isinstance(s, cst.Assign) or len(s.targets) != 1 or not isinstance(s.targets[0].target, cst.Name):
        return None
    layer_call, layer = None, None
    expr = s.value
    while not isinstance(expr, cst.Name):
        if not isinstance(expr, cst.Call):
            return None
        func = expr.func
        name = is_self_attr(func, sname)
        if name is not None:
            if name in cls.methods:
                return None  # a helper method: what it does with its input is unknown
            layer_call, layer = expr, name
            nxt = positional(expr)
        elif (ctx.qualname(func) or "").startswith("torch."):
            nxt = positional(expr)  # F.relu(x), torch.flatten(x, 1)
        elif isinstance(func, cst.Attribute) and not (
            isinstance(func.value, cst.Name) and func.value.value in ctx.aliases
        ):
            nxt = [func.value]  # a tensor method: x.flatten(1), self.fc(x).relu()
        else:
            return None
        if not nxt:
            return None
        expr = nxt[0]
    if layer_call is None or layer is None:
        return None
    return s.targets[0].target.value, s.value, layer_call, layer, expr.value


def _blocks(body: cst.BaseSuite) -> Iterator[list]:
    """The statement list of a body and of every if/else, with, for and while body
    inside it (each list is analysed on its own)."""
    stmts = list(body.body)
    yield stmts
    for s in stmts:
        if isinstance(s, cst.If):
            yield from _blocks(s.body)
            orelse = s.orelse
            while isinstance(orelse, cst.If):
                yield from _blocks(orelse.body)
                orelse = orelse.orelse
            if orelse is not None:
                yield from _blocks(orelse.body)
        elif isinstance(s, (cst.With, cst.For, cst.While)):
            yield from _blocks(s.body)


class ReusedLayerInput(SourceRule):
    """## What it does
    Flags a layer call in `forward` that reads the same, stale input as the layer before it
    while that layer's result is overwritten unread (the copy-paste bug).

    ```python
    x = self.conv1(inp)
    x = self.conv2(inp)   # conv1's output is lost: should be self.conv2(x)
    ```

    ## Why is this bad?
    The first layer's output is overwritten before anything reads it, so the layer is dead:
    it costs compute and parameters, gets no gradient, and the network is one layer
    shallower than it looks. Nothing crashes when the shapes happen to agree, so the model
    trains, just worse. Residual/skip connections, several heads reading the same features,
    and q/k/v projections of one input are not flagged: there every result is read.

    ## Example
    ```python
    def forward(self, x):
        h = F.relu(self.fc1(x))
        h = self.fc2(x)
        return self.out(h)
    ```

    ## Use instead
    ```python
    def forward(self, x):
        h = F.relu(self.fc1(x))
        h = self.fc2(h)
        return self.out(h)
    ```

    ## References
    - Karpathy, "A Recipe for Training Neural Networks" (2019): "use backprop to chart
      dependencies" (check that each output depends on what it should).
    - Slav Ivanov, "37 Reasons why your Neural Network is not working" (2017), section
      "Implementation issues".
    """

    code = "NN101"
    name = "reused-layer-input"
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            import torch.nn as nn

            class Block(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
                    self.conv2 = nn.Conv2d(8, 8, 3, padding=1)

                def forward(self, x):
                    identity = x
                    out = self.conv1(x)
                    out = self.conv2(out)
                    out = out + identity
                    return out
            """,
            note="residual",
        ),
        Valid(
            """
            import torch.nn as nn

            class Heads(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = nn.Linear(8, 8)
                    self.head1 = nn.Linear(8, 2)
                    self.head2 = nn.Linear(8, 3)

                def forward(self, x):
                    feat = self.body(x)
                    a = self.head1(feat)
                    b = self.head2(feat)
                    return a, b
            """,
            note="two heads reading the same features",
        ),
        Valid(
            """
            import torch.nn as nn

            class Attn(nn.Module):
                def __init__(self, d):
                    super().__init__()
                    self.q = nn.Linear(d, d)
                    self.k = nn.Linear(d, d)
                    self.v = nn.Linear(d, d)

                def forward(self, x):
                    q = self.q(x)
                    k = self.k(x)
                    v = self.v(x)
                    return (q @ k.transpose(-2, -1)).softmax(-1) @ v
            """,
            note="attention q/k/v all read x",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.a = nn.Linear(8, 8)
                    self.b = nn.Linear(8, 8)

                def forward(self, x, use_a):
                    if use_a:
                        y = self.a(x)
                    else:
                        y = self.b(x)
                    return y
            """,
            note="branches in if/else",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.a = nn.Linear(8, 8)
                    self.b = nn.Linear(8, 8)

                def forward(self, x):
                    y = self.a(x)
                    z = torch.relu(y)
                    y = self.b(x)
                    return y + z
            """,
            note="the first result is read before it is overwritten",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class UNet(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.down1 = nn.Conv2d(3, 8, 3, padding=1)
                    self.down2 = nn.Conv2d(8, 8, 3, padding=1)
                    self.up = nn.Conv2d(16, 8, 3, padding=1)

                def forward(self, x):
                    d1 = self.down1(x)
                    d2 = self.down2(d1)
                    return self.up(torch.cat([d1, d2], 1))
            """,
            note="U-Net skip",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])
                    self.pre = nn.Linear(8, 8)

                def forward(self, x):
                    h = self.pre(x)
                    for layer in self.layers:
                        h = layer(h)
                    return h
            """,
            note="loop",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.a = nn.Linear(8, 8)
                    self.b = nn.Linear(8, 8)

                def forward(self, x, fast):
                    y = self.a(x)
                    if fast:
                        return y
                    y = self.b(x)
                    return y
            """,
            note="the first result is returned on one path",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(3, 8, 3)
                    self.conv2 = nn.Conv2d(3, 8, 3)

                def forward(self, inp):
                    x = self.conv1(inp)
                    inp = self.pool(inp)
                    x = self.conv2(inp)
                    return x
            """,
            note="the input changed in between (not a stale name)",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class TwoTower(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.left = nn.Linear(8, 8)
                    self.right = nn.Linear(8, 8)

                def forward(self, x):
                    a = F.relu(self.left(x))
                    b = F.relu(self.right(x))
                    return a * b
            """,
            note="two towers on the same input, both read",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(3, 16, 3)
                    self.conv2 = nn.Conv2d(3, 16, 3)

                def forward(self, inp):
                    x = self.conv1(inp)
                    x = self.conv2(inp)
                    return x
            """,
            line=11,
            contains="self.conv2(x)",
        ),
        Invalid(
            """
            from torch import nn

            class MLP(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.l1 = nn.Linear(8, 8)
                    self.l2 = nn.Linear(8, 8)
                    self.out = nn.Linear(8, 2)

                def forward(self, x):
                    h = self.l1(x)
                    h = self.l2(x)
                    return self.out(h)
            """,
            line=12,
            contains="l1",
        ),
        Invalid(
            """
            import torch

            class Encoder(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv_a = torch.nn.Conv1d(4, 4, 3, padding=1)
                    self.norm = torch.nn.BatchNorm1d(4)
                    self.conv_b = torch.nn.Conv1d(4, 4, 3, padding=1)

                def forward(self, x, debug=False):
                    if debug:
                        print(x.shape)
                    y = self.conv_a(x)
                    n = x.mean()
                    y = self.conv_b(x)
                    return self.norm(y) * n
            """,
            line=15,
            contains="conv_a",
        ),
        Invalid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(1, 8, 3)
                    self.bn1 = nn.BatchNorm2d(8)
                    self.conv2 = nn.Conv2d(1, 8, 3)

                def forward(self, inp):
                    x = self.bn1(self.conv1(inp))
                    x = self.conv2(inp)
                    return F.relu(x)
            """,
            line=13,
            contains="self.conv2(x)",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
                    self.conv2 = nn.Conv2d(1, 32, 3, padding=1)
                    self.fc = nn.Linear(32 * 28 * 28, 10)

                def forward(self, inp):
                    x = F.relu(self.conv1(inp))
                    x = F.relu(self.conv2(inp))
                    return self.fc(torch.flatten(x, 1))
            """,
            line=14,
            contains="self.conv2(x)",
            note="the seed bug: layers wrapped in activations",
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        for cls in ctx.module_classes():
            for mname, method in cls.methods.items():
                if not (mname == "forward" or mname.startswith(("forward_", "_forward"))):
                    continue
                sname = self_name(method)
                for stmts in _blocks(method.body):
                    yield from self._block(ctx, cls, stmts, sname)

    def _block(self, ctx: SourceContext, cls: ClassInfo, stmts: list, sname: str) -> Iterator[Finding]:
        for i, first in enumerate(stmts):
            a = _layer_assign(ctx, first, sname, cls)
            if a is None:
                continue
            target, _, _, layer_a, input_a = a
            if input_a == target or target == "_":
                continue  # x = self.conv1(x) is a chain; `_ = ...` discards on purpose
            changed: set[str] = set()
            for later in stmts[i + 1 :]:
                b = _layer_assign(ctx, later, sname, cls)
                if b is not None and b[0] == target:
                    _, value_b, call_b, layer_b, input_b = b
                    if input_b == input_a and input_b not in changed and target not in names_read(value_b):
                        yield Finding(
                            f"self.{layer_b} reads `{input_b}`, but `{target}`, computed by self.{layer_a} on line "
                            f"{line_of(ctx, first)}, is overwritten without being read: did you mean "
                            f"self.{layer_b}({target})?",
                            node=call_b,
                            model=cls.name,
                        )
                    break
                read = names_read(later)
                if target in read or "locals" in read or "vars" in read:
                    break
                if isinstance(later, _FLOW_EXITS) or any(True for _ in walk(later, _FLOW_EXITS)):
                    break
                bound = names_assigned(later)
                if target in bound:
                    break
                changed |= bound
