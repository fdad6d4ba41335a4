from __future__ import annotations

import re
from collections.abc import Iterator
from typing import cast

import libcst as cst

from nnlint.analysis.structure import structure
from nnlint.analysis.syntax import is_self_attr, qual_of_dotted, self_name, target_names, walk
from nnlint.analysis.torch_kinds import module_kind, short
from nnlint.contexts.source import ClassInfo, SourceContext, normalize_torch_name
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

_PLAIN_BASES = {
    "torch.nn.Module",
    "pytorch_lightning.LightningModule",
    "pytorch_lightning.core.LightningModule",
    "lightning.LightningModule",
    "lightning.pytorch.LightningModule",
}
_LIGHTNING = {b for b in _PLAIN_BASES if "ightning" in b}
#: attribute reads on self that reach every submodule by name or iteration
_DYNAMIC_ATTRS = {
    "__dict__",
    "_modules",
    "_parameters",
    "children",
    "named_children",
    "__getattr__",
    "get_submodule",
    "get_parameter",
}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


#: packages whose attributes (`F.softmax`, `torch.tanh`, `np.log`) are never a model's submodule
_LIBRARIES = {"torch", "numpy", "math", "einops", "scipy", "jax", "functools", "operator"}


class _References:
    """Every way the file may reach an attribute: ``self.X`` per top-level class,
    ``other.X`` anywhere, words inside strings, and dynamic access (``getattr(self, name)``,
    ``self.children()``, ``self.__dict__``, ...) per top-level class or file-wide. One
    fast walk over the module."""

    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.self_refs: dict[str | None, set[str]] = {}
        self.other_refs: set[str] = set()
        self.words: set[str] = set()
        self.dynamic: set[str | None] = set()  # top-level class names (None: outside classes)
        self.dynamic_file = False
        self.top_of: dict[str, str] = {}  # class name -> top-level class containing it
        self._skip: set[int] = set()

    def run(self, module: cst.Module) -> None:
        for stmt in module.body:
            if isinstance(stmt, cst.ClassDef):
                top = stmt.name.value
                self.top_of[top] = top
                for n in walk(stmt, into_defs=True):
                    self._node(n, top)
            else:
                self._node(stmt, None)
                for n in walk(stmt, into_defs=True):
                    self._node(n, None)

    def _node(self, node: cst.CSTNode, top: str | None) -> None:
        t = type(node)  # exact types: libcst's isinstance goes through ABCMeta and is slow
        # mypy does not narrow on `t is X`: cast() says what the exact type check found
        if t is cst.Attribute:
            self._attribute(cast(cst.Attribute, node), top)
        elif t is cst.Call:
            self._call(cast(cst.Call, node), top)
        elif t is cst.AssignTarget:
            self._skip.add(id(cast(cst.AssignTarget, node).target))
        elif t is cst.AnnAssign and cast(cst.AnnAssign, node).value is not None:
            self._skip.add(id(cast(cst.AnnAssign, node).target))
        elif t is cst.For:
            self._for(cast(cst.For, node))
        elif t is cst.SimpleString or t is cst.FormattedStringText:
            # raw token: no literal_eval needed
            self.words.update(_WORD.findall(cast("cst.SimpleString | cst.FormattedStringText", node).value))
        elif t is cst.ClassDef and top is not None:
            self.top_of.setdefault(cast(cst.ClassDef, node).name.value, top)

    def _attribute(self, node: cst.Attribute, top: str | None) -> None:
        name = node.attr.value
        is_self = isinstance(node.value, cst.Name) and node.value.value == "self"
        if is_self and name in _DYNAMIC_ATTRS:
            self.dynamic.add(top)
        if id(node) in self._skip:
            return
        if is_self:
            self.self_refs.setdefault(top, set()).add(name)
        elif not (
            isinstance(node.value, cst.Name) and self.ctx.aliases.get(node.value.value, "").split(".")[0] in _LIBRARIES
        ):
            self.other_refs.add(name)  # `model.X`; not `F.softmax`, a library's function

    def _for(self, node: cst.For) -> None:
        # `for m in self.modules(): init(m)` reads no submodule; `...: x = m(x)` reads all
        it = node.iter
        if (
            isinstance(it, cst.Call)
            and isinstance(it.func, cst.Attribute)
            and it.func.attr.value in ("modules", "named_modules")
        ):
            bound = target_names(node.target)
            called = any(isinstance(c.func, cst.Name) and c.func.value in bound for c in walk(node.body, cst.Call))
            if not called:
                self._skip.add(id(it.func))

    def _call(self, node: cst.Call, top: str | None) -> None:
        func = node.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value in ("modules", "named_modules")
            and id(func) not in self._skip
        ):
            if isinstance(func.value, cst.Name) and func.value.value == "self":
                self.dynamic.add(top)
        if isinstance(func, cst.Name) and func.value in ("getattr", "vars") and node.args:
            target = node.args[0].value
            if func.value == "getattr" and len(node.args) >= 2 and isinstance(node.args[1].value, cst.SimpleString):
                return
            if isinstance(target, cst.Name) and target.value == "self":
                self.dynamic.add(top)
            elif isinstance(target, cst.Name) and target.value in self.ctx.aliases:
                return  # getattr(nn, name): a factory, not our attributes
            else:
                self.dynamic_file = True


class UnusedSubmodule(SourceRule):
    """## What it does
    Flags a layer or parameter created in `__init__` of an `nn.Module`
    (`self.X = nn.<Module>(...)` or `self.X = nn.Parameter(...)`) that nothing in the file
    ever reads: not `forward`, not any other method, not a subclass or parent class, not a
    `getattr`/string lookup, not a loop over the module's children.

    ## Why is this bad?
    Usually it is a bug: the layer was meant to be applied (`self.dropout` declared but never
    called, `self.bn2` forgotten after `self.conv2`) and the model silently runs without it.
    Even when it is only left over, its parameters are still handed to the optimizer, saved in
    checkpoints and moved to the GPU, and DistributedDataParallel fails on parameters that get
    no gradient ("Expected to have finished reduction in the prior iteration").

    ## Example
    ```python
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.dropout = nn.Dropout(0.5)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))   # self.dropout is never applied
    ```

    ## Use instead
    ```python
    def forward(self, x):
        return self.fc2(self.dropout(F.relu(self.fc1(x))))
    ```

    ## References
    - Slav Ivanov, "37 Reasons why your Neural Network is not working" (2017), section
      "Implementation issues".
    - Karpathy, "A Recipe for Training Neural Networks" (2019): "use backprop to chart
      dependencies".
    - PyTorch docs, `torch.nn.parallel.DistributedDataParallel` (`find_unused_parameters`).
    """

    code = "NN102"
    name = "unused-submodule"
    severity = Severity.WARNING

    VALID = [
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(8, 8)
                    self.head = nn.Linear(8, 2)

                def forward(self, x):
                    return self.fc(x)

                def generate(self, x):
                    return self.head(self.fc(x))
            """,
            note="used in another method (generate)",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.layer1 = nn.Linear(8, 8)
                    self.layer2 = nn.Linear(8, 8)

                def forward(self, x):
                    for i in (1, 2):
                        x = getattr(self, f"layer{i}")(x)
                    return x
            """,
            note="dynamic getattr",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.a = nn.Linear(8, 8)
                    self.b = nn.Linear(8, 8)

                def forward(self, x):
                    for m in self.children():
                        x = m(x)
                    return x
            """,
            note="iterating children",
        ),
        Valid(
            """
            import torch.nn as nn

            class Base(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.head = nn.Linear(8, 2)

                def forward(self, x):
                    return self.features(x)

            class Child(Base):
                def __init__(self):
                    super().__init__()
                    self.features = nn.Linear(8, 8)

                def forward(self, x):
                    return self.head(self.features(x))
            """,
            note="used in a subclass / defined in the subclass, used in the parent",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.encoder = nn.Linear(8, 4)
                    self.decoder = nn.Linear(4, 8)

                def forward(self, x):
                    return self.encoder(x)

            def reconstruct(model, x):
                return model.decoder(model(x))
            """,
            note="used from outside the class",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(8, 8)
                    self.criterion = nn.CrossEntropyLoss()
                    self.pool = nn.Identity()

                def forward(self, x):
                    return self.fc(x)
            """,
            note="losses and Identity placeholders carry no parameters",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(8, 8)
                    self.extra = nn.Linear(8, 8)

                def forward(self, x):
                    return self._modules["extra"](self.fc(x))
            """,
            note="through self._modules",
        ),
        Valid(
            """
            import torch.nn as nn
            from mylib import BaseModel

            class Net(BaseModel):
                def __init__(self):
                    super().__init__()
                    self.head = nn.Linear(8, 2)
            """,
            note="an unknown base class may use it",
        ),
        Valid(
            """
            import torch.nn as nn

            class Blocks(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.a = nn.Linear(8, 8)
                    self.b = nn.Linear(8, 8)
                    self.block_order = ["a", "b"]

                def forward(self, x):
                    for name in self.block_order:
                        x = self._modules[name](x)
                    return x
            """,
            note="named in strings",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(8, 8)
                    self.fc2 = nn.Linear(8, 8)

                def forward(self, x):
                    for layer in self.modules():
                        if isinstance(layer, nn.Linear):
                            x = layer(x)
                    return x
            """,
            note="called from a modules() loop",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Attn(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.proj = nn.Linear(16, 16)
                    self.softmax = nn.Softmax(dim=-1)

                def forward(self, x):
                    return F.softmax(self.proj(x) @ x.transpose(-1, -2), dim=-1) @ x
            """,
            line=8,
            contains="self.softmax",
            note="F.softmax is torch's function, not a read of self.softmax",
        ),
        Invalid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(784, 128)
                    self.dropout = nn.Dropout(0.5)
                    self.fc2 = nn.Linear(128, 10)

                def forward(self, x):
                    return self.fc2(F.relu(self.fc1(x)))
            """,
            line=8,
            contains="self.dropout",
        ),
        Invalid(
            """
            import torch
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(3, 8, 3)
                    self.scale = nn.Parameter(torch.ones(1))

                def forward(self, x):
                    for m in self.modules():
                        if isinstance(m, nn.Conv2d):
                            nn.init.kaiming_normal_(m.weight)
                    return self.conv(x)
            """,
            line=8,
            contains="self.scale",
        ),
        Invalid(
            """
            import torch
            from torch.nn import BatchNorm2d, Conv2d

            class Block(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = Conv2d(8, 8, 3)
                    self.bn1 = BatchNorm2d(8)
                    self.conv2 = Conv2d(8, 8, 3)
                    self.bn2 = BatchNorm2d(8)

                def forward(self, x):
                    x = torch.relu(self.bn1(self.conv1(x)))
                    return self.conv2(x)

            class Other(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.bn2 = BatchNorm2d(8)

                def forward(self, x):
                    return self.bn2(x)
            """,
            line=10,
            contains="bn2",
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        st = structure(ctx)
        candidates: list[tuple[ClassInfo, str, cst.Assign | cst.AnnAssign, cst.Call, str]] = []
        for cls in ctx.module_classes():
            if not self._plain(ctx, cls, frozenset()):
                continue
            if not self._has_entry(ctx, cls):
                continue
            init = cls.methods.get("__init__")
            if init is None:
                continue
            sname = self_name(init)
            for stmt in walk(init.body, (cst.Assign, cst.AnnAssign)):
                targets = [t.target for t in stmt.targets] if isinstance(stmt, cst.Assign) else [stmt.target]
                if len(targets) != 1:
                    continue  # self.a = self.b = layer: one module under two names
                if not isinstance(stmt.value, cst.Call):
                    continue
                q = ctx.qualname(stmt.value.func)
                mk = module_kind(q)
                if mk is None:
                    continue
                cname = short(q)
                if cname == "Identity" or cname.endswith("Loss"):
                    continue
                for t in targets:
                    name = is_self_attr(t, sname)
                    if name:
                        candidates.append((cls, name, stmt, stmt.value, cname))
        if not candidates:
            return
        refs = _References(ctx)
        refs.run(ctx.module)
        if refs.dynamic_file:
            return
        tops = refs.top_of
        reported: set[tuple[str, str]] = set()
        for cls, name, stmt, call, cname in candidates:
            if (cls.name, name) in reported:
                continue
            family_tops = {tops.get(n, n) for n in st.family(cls)}
            if family_tops & refs.dynamic or None in refs.dynamic:
                continue
            used = name in refs.other_refs or name in refs.words
            used = used or any(name in refs.self_refs.get(t, set()) for t in (*family_tops, None))
            if used:
                continue
            mk = module_kind(ctx.qualname(call.func))
            kind = mk[0] if mk is not None else None  # not None: candidates have a module kind
            where = f"created in {cls.name}.__init__, is never used by any method of {cls.name} (or a parent/subclass)"
            if kind == "parameter":
                msg = f"self.{name}, an nn.Parameter {where}: use it in forward or remove it (it still goes to the optimizer and never gets a gradient)"
            elif kind in ("dropout", "act"):
                msg = f"self.{name} ({cname}), {where}: it is never applied; call it in forward (x = self.{name}(x)) or remove it"
            else:
                msg = (
                    f"self.{name} ({cname}), {where}: apply it in forward or remove it (its parameters still go to "
                    f"the optimizer and never get a gradient)"
                )
            reported.add((cls.name, name))
            yield Finding(msg, node=stmt, model=cls.name)

    def _plain(self, ctx: SourceContext, cls: ClassInfo, seen: frozenset[str]) -> bool:
        """Every base is nn.Module/LightningModule or an in-file class that is: no unknown
        base whose methods might use the attribute, no Sequential/ModuleList base that
        runs every child."""
        if not cls.bases:
            return False
        for base in cls.bases:
            if base in ctx.class_by_name and base not in seen:
                if not self._plain(ctx, ctx.class_by_name[base], seen | {cls.name}):
                    return False
                continue
            q = normalize_torch_name(qual_of_dotted(ctx, base))
            if q not in _PLAIN_BASES:
                return False
        return True

    def _has_entry(self, ctx: SourceContext, cls: ClassInfo) -> bool:
        """The class (or an in-file ancestor) defines forward, or is a LightningModule: a
        class without one is an abstract base whose subclasses may live elsewhere."""
        todo, seen = [cls], set()
        while todo:
            c = todo.pop()
            if c.name in seen:
                continue
            seen.add(c.name)
            if "forward" in c.methods:
                return True
            for base in c.bases:
                if base in ctx.class_by_name:
                    todo.append(ctx.class_by_name[base])
                elif qual_of_dotted(ctx, base) in _LIGHTNING:
                    return True
        return False
