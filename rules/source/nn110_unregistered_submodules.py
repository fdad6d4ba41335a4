from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import libcst as cst

from nnlint import fixes
from nnlint.analysis.structure import structure
from nnlint.analysis.syntax import is_self_attr, self_name, walk
from nnlint.analysis.torch_kinds import module_kind, short
from nnlint.contexts.source import ClassInfo, SourceContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

_WRAPPERS = {"Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}
_REGISTER = {"add_module", "register_module", "register_parameter"}
#: torch.nn modules with no parameters, buffers or train/eval behaviour: a plain list of
#: them loses nothing (Dropout is not here: unregistered, it ignores .eval())
_STATELESS = {
    "Identity",
    "Flatten",
    "Unflatten",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "LPPool1d",
    "LPPool2d",
    "Upsample",
    "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
    "PixelShuffle",
    "PixelUnshuffle",
    "ChannelShuffle",
    "ZeroPad1d",
    "ZeroPad2d",
    "ZeroPad3d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ConstantPad3d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReflectionPad3d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ReplicationPad3d",
    "CircularPad1d",
    "CircularPad2d",
    "CircularPad3d",
    "Fold",
    "Unfold",
    "CosineSimilarity",
    "PairwiseDistance",
}
_DISPLAYS = (cst.List, cst.Tuple, cst.Dict, cst.Set, cst.ListComp, cst.DictComp, cst.SetComp)


class UnregisteredSubmodules(SourceRule):
    """## What it does
    Flags a module class that stores layers (or `nn.Parameter`s) in a plain Python `list`,
    `dict` or `tuple` attribute: `self.layers = [nn.Linear(...) for _ in range(3)]`,
    `self.blocks = {'a': nn.Conv2d(...)}`, or a list filled with `append` and assigned to
    `self`.

    ## Why is this bad?
    `nn.Module` registers a submodule only when it is assigned directly to an attribute or
    held by `nn.ModuleList`/`nn.ModuleDict`/`nn.Sequential`. Layers inside a plain list are
    invisible to `.parameters()` (so the optimizer never updates them), to `.to(device)`/
    `.cuda()` (device-mismatch errors), to `.train()`/`.eval()` (their dropout and
    BatchNorm stay in whatever mode they were built in) and to `state_dict()` (they are not
    saved). The model trains, but those layers stay at their random initialisation.

    ## Example
    ```python
    self.layers = [nn.Linear(64, 64) for _ in range(4)]
    ```

    ## Use instead
    ```python
    self.layers = nn.ModuleList([nn.Linear(64, 64) for _ in range(4)])
    ```

    ## References
    - PyTorch docs, `torch.nn.ModuleList` ("Holds submodules in a list ... properly
      registered, and will be visible by all Module methods") and `torch.nn.ParameterList`.
    - PyTorch docs, `torch.nn.Module.add_module` / `register_module`.
    - Slav Ivanov, "37 Reasons why your Neural Network is not working" (2017), "Check for
      frozen layers or variables".
    """

    code = "NN110"
    name = "unregistered-submodules"
    fix_applicability = "safe"
    fix_summary = "wrap the list/tuple in `nn.ModuleList(...)`, a string-keyed dict in `nn.ModuleDict(...)` (`ParameterList`/`ParameterDict` for parameters)"
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.layers = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])
                    self.heads = nn.ModuleDict({"a": nn.Linear(8, 2), "b": nn.Linear(8, 3)})
                    self.body = nn.Sequential(*[nn.Linear(8, 8) for _ in range(2)])
            """,
            note="registered containers",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.sizes = [64, 128]
                    self.names = ("a", "b")
                    self.acts = [F.relu, torch.tanh]
                    self.kinds = {"lin": nn.Linear, "conv": nn.Conv2d}
                    self.masks = [torch.zeros(3), torch.ones(3)]
            """,
            note="lists of non-modules (ints, strings, functions, classes, tensors)",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self, n):
                    super().__init__()
                    layers = []
                    for _ in range(n):
                        layers.append(nn.Linear(8, 8))
                    self.layers = nn.ModuleList(layers)
            """,
            note="a plain list wrapped before assignment",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.layers = [nn.Linear(8, 8), nn.Linear(8, 8)]
                    self.layers = nn.ModuleList(self.layers)
            """,
            note="the plain list is wrapped later",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(3, 8, 3)
                    self.conv2 = nn.Conv2d(8, 8, 3)
                    self.convs = [self.conv1, self.conv2]
            """,
            note="a list of already-registered submodules",
        ),
        Valid(
            """
            import copy
            import torch.nn as nn

            class EMA(nn.Module):
                def __init__(self, model):
                    super().__init__()
                    self.model = model
                    self._shadow = [copy.deepcopy(model)]
            """,
            note="hiding a module from parameters() on purpose (not a construction)",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.blocks = [nn.Linear(4, 4) for _ in range(3)]
                    for i, b in enumerate(self.blocks):
                        self.add_module(f"block{i}", b)
            """,
            note="registered by add_module",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(8, 8)
                    self.criteria = [nn.MSELoss(), nn.L1Loss()]
                    self.pools = [nn.MaxPool2d(2), nn.AvgPool2d(2)]
                    self.acts = {"relu": nn.ReLU(), "tanh": nn.Tanh()}
            """,
            note="stateless modules (losses, pooling, activations) lose nothing in a plain list",
        ),
        Valid(
            """
            import torch.nn as nn

            class Config:
                def __init__(self):
                    self.layers = [nn.Linear(4, 4)]
            """,
            note="not an nn.Module",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    layers = [nn.Linear(4, 4), nn.ReLU()]
                    self.net = nn.Sequential(*layers)
                    self.layers = layers
            """,
            note="the same modules are registered through self.net",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.layers = [nn.Linear(64, 64) for _ in range(3)]

                def forward(self, x):
                    for layer in self.layers:
                        x = layer(x)
                    return x
            """,
            line=6,
            contains="nn.ModuleList",
        ),
        Invalid(
            """
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.blocks = {'a': nn.Conv2d(3, 8, 3), 'b': nn.Conv2d(3, 8, 5)}
            """,
            line=6,
            contains="nn.ModuleDict",
        ),
        Invalid(
            """
            import torch

            class Block(torch.nn.Module):
                pass

            class Net(torch.nn.Module):
                def __init__(self, n):
                    super().__init__()
                    blocks = []
                    for _ in range(n):
                        blocks.append(Block())
                    self.blocks = blocks
            """,
            line=12,
        ),
        Invalid(
            """
            import torch
            from torch.nn import Parameter

            class Mix(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.weights = (Parameter(torch.ones(3)), Parameter(torch.zeros(3)))
            """,
            line=7,
            contains="nn.ParameterList",
        ),
        Invalid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.heads = []
                    self.heads.append(nn.Linear(8, 2))
            """,
            line=6,
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        for cls in ctx.module_classes():
            yield from self._check_class(ctx, cls)

    def _check_class(self, ctx: SourceContext, cls: ClassInfo) -> Iterator[Finding]:
        st = structure(ctx)
        candidates = []
        for attr in st.attrs(cls).values():
            if attr.owner != cls.name or len(attr.sites) != 1:
                continue  # assigned twice: e.g. wrapped later in nn.ModuleList(self.X)
            stmt, value, method = attr.sites[0]
            if isinstance(value, _DISPLAYS) or (
                isinstance(value, cst.Name)
                and value.value in st.local_containers.get((cls.name, method.name.value), ())
            ):
                candidates.append((attr.name, stmt, value, method))
        if not candidates:
            return
        calls = [c for m in cls.methods.values() for c in walk(m.body, cst.Call)]
        if any(isinstance(c.func, cst.Attribute) and c.func.attr.value in _REGISTER for c in calls):
            return
        wrapped: set[str] = set()  # self.X passed to a registering container somewhere
        for c in calls:
            if short(ctx.qualname(c.func)) in _WRAPPERS and module_kind(ctx.qualname(c.func)):
                for a in c.args:
                    for n in [a.value, *walk(a.value)]:
                        name = is_self_attr(n) if isinstance(n, cst.Attribute) else None
                        if name:
                            wrapped.add(name)
        for name, stmt, value, method in candidates:
            if name in wrapped:
                continue
            what = self._plain_container(ctx, value, method, name)
            if what is None:
                continue
            container, params = what
            fix = (
                ("nn.ParameterDict" if container == "dict" else "nn.ParameterList")
                if params
                else ("nn.ModuleDict" if container == "dict" else "nn.ModuleList")
            )
            items = "parameters" if params else "submodules"
            yield Finding(
                f"self.{name} is a plain {container} of {items}: they are not registered, so .parameters() "
                f"(the optimizer), .to()/.cuda(), .train()/.eval() and state_dict() never see them; wrap it in {fix}(...)",
                node=stmt,
                model=cls.name,
                fix=self._fix(ctx, value, container, fix),
            )

    def _fix(self, ctx: SourceContext, value: cst.BaseExpression, container: str, wrapper: str):
        """Wrap the container in nn.ModuleList/ModuleDict (ParameterList/Dict), spelled as the
        file imports torch.nn; dicts only when every key is a string literal."""
        prefix = fixes.torch_nn_prefix(ctx)
        if prefix is None or container == "set":
            return None
        if container == "dict":
            if not isinstance(value, cst.Dict) or not all(
                isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString) for e in value.elements
            ):
                return None  # ModuleDict needs string keys
        name = f"{prefix}.{wrapper.split('.', 1)[1]}"
        return self.make_fix(f"wrap it in {wrapper}(...)", *fixes.wrap(ctx, value, f"{name}(", ")"))

    def _plain_container(self, ctx, value, method: cst.FunctionDef, name: str) -> tuple[str, bool] | None:
        """('list'|'dict'|'tuple', holds parameters) when ``value`` is a plain container
        of module constructions."""
        if isinstance(value, (cst.List, cst.Tuple, cst.Set)):
            kinds = [self._constructs(ctx, el.value) for el in value.elements]
            if value.elements:
                found = [k for k in kinds if k is not None]
                return (self._cname(value), all(k == "parameter" for k in found)) if found else None
            # an empty list filled later: self.X.append(nn.Linear(...))
            return self._filled(ctx, method, name, self_attr=True, container=self._cname(value))
        if isinstance(value, cst.Dict):
            kinds = [self._constructs(ctx, el.value) for el in value.elements if isinstance(el, cst.DictElement)]
            found = [k for k in kinds if k is not None]
            if found:
                return "dict", all(k == "parameter" for k in found)
            if not value.elements:
                return self._filled(ctx, method, name, self_attr=True, container="dict")
            return None
        if isinstance(value, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
            if isinstance(value, cst.GeneratorExp):
                return None
            k = self._constructs(ctx, value.elt)
            return ("list", k == "parameter") if k else None
        if isinstance(value, cst.DictComp):
            k = self._constructs(ctx, value.value)
            return ("dict", k == "parameter") if k else None
        if isinstance(value, cst.Name):
            return self._local(ctx, method, value.value)
        return None

    @staticmethod
    def _cname(node) -> str:
        names: dict[type, str] = {cst.List: "list", cst.Tuple: "tuple", cst.Set: "set"}
        return names.get(type(node), "list")

    def _constructs(self, ctx: SourceContext, expr) -> str | None:
        """'module' / 'parameter' when ``expr`` builds one, else None."""
        if not isinstance(expr, cst.Call):
            return None
        q = ctx.qualname(expr.func)
        mk = module_kind(q)
        if mk is not None:
            if mk[0] == "parameter":
                return "parameter"
            if mk[0] == "act" or short(q) in _STATELESS or short(q).endswith("Loss"):
                return None  # no parameters, buffers or train/eval behaviour to lose
            return "module"
        if q in ctx.class_by_name and ctx.is_module_class(ctx.class_by_name[q]):
            return "module"
        return None

    def _filled(self, ctx, method, name: str, *, self_attr: bool, container: str) -> tuple[str, bool] | None:
        """An empty container that gets module constructions through append/extend/
        item assignment (on ``self.name`` or on the local ``name``)."""
        sname = self_name(method)

        def is_target(expr) -> bool:
            if self_attr:
                return is_self_attr(expr, sname) == name
            return isinstance(expr, cst.Name) and expr.value == name

        found: list[str] = []
        for node in walk(method.body):
            if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and is_target(node.func.value):
                if node.func.attr.value in ("append", "insert") and node.args:
                    k = self._constructs(ctx, node.args[-1].value)
                    if k:
                        found.append(k)
                elif node.func.attr.value == "extend" and node.args:
                    inner = node.args[0].value
                    if isinstance(inner, (cst.List, cst.Tuple)):
                        found += [k for k in (self._constructs(ctx, e.value) for e in inner.elements) if k]
                    elif isinstance(inner, (cst.ListComp, cst.GeneratorExp)):
                        k = self._constructs(ctx, inner.elt)
                        if k:
                            found.append(k)
            elif isinstance(node, cst.Assign):
                for t in node.targets:
                    if isinstance(t.target, cst.Subscript) and is_target(t.target.value):
                        k = self._constructs(ctx, node.value)
                        if k:
                            found.append(k)
            elif (
                isinstance(node, cst.AugAssign)
                and is_target(node.target)
                and isinstance(node.value, (cst.List, cst.Tuple))
            ):
                found += [k for k in (self._constructs(ctx, e.value) for e in node.value.elements) if k]
        if not found:
            return None
        return container, all(k == "parameter" for k in found)

    def _local(self, ctx, method: cst.FunctionDef, local: str) -> tuple[str, bool] | None:
        """``self.X = local`` where ``local`` holds module constructions and is not also
        handed to a registering container in this method."""
        result: tuple[str, bool] | Literal[False] | None = None  # False: not a container of modules
        for node in walk(method.body):
            if (
                isinstance(node, cst.Call)
                and short(ctx.qualname(node.func)) in _WRAPPERS
                and module_kind(ctx.qualname(node.func))
            ):
                for a in node.args:
                    if isinstance(a.value, cst.Name) and a.value.value == local:
                        return None
            if (
                isinstance(node, cst.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0].target, cst.Name)
                and node.targets[0].target.value == local
            ):
                if result is not None:
                    return None  # rebound: do not guess which value reaches self
                value = node.value
                if isinstance(value, (cst.List, cst.Tuple, cst.Dict)) and not value.elements:
                    container = "dict" if isinstance(value, cst.Dict) else self._cname(value)
                    result = self._filled(ctx, method, local, self_attr=False, container=container) or False
                else:
                    result = self._plain_container(ctx, value, method, local) or False
        return result or None
