"""The value-flow interpreter's view of the file's classes (``ClassModel``).

Attributes, methods through the in-file bases, instantiations, and which model class a
`model` parameter most likely is.
"""

from __future__ import annotations

import libcst as cst

from nnlint.analysis.interpreter_base import Frame, InterpreterBase
from nnlint.analysis.syntax import (
    arg_expr,
    has_star,
    int_value,
    is_attribute_of,
    positional_params,
    small_statements,
)
from nnlint.analysis.values import UNKNOWN, Obj, Val
from nnlint.contexts.source import ClassInfo, dotted
from nnlint.vocab import (
    CONTAINER_MUTATOR_METHODS,
)

#: parameter names that say "this is the model"
MODEL_PARAM_WORDS = ("model", "net", "classifier", "clf")


class ClassModel(InterpreterBase):
    """The classes of the file as the value-flow interpreter sees them."""

    # classes ---------------------------------------------------------------------
    def _is_module(self, cls: str) -> bool:
        info = self.ctx.class_by_name.get(cls)
        return info is not None and self.ctx.is_module_class(info)

    def _mro(self, cls: str) -> list[ClassInfo]:
        out: list[ClassInfo] = []
        todo = [cls]
        while todo:
            name = todo.pop(0)
            info = self.ctx.class_by_name.get(name)
            if info is None or info in out:
                continue
            out.append(info)
            todo.extend(info.bases)
        return out

    def _find_method(self, cls: str, name: str) -> cst.FunctionDef | None:
        for info in self._mro(cls):
            if name in info.methods:
                return info.methods[name]
        return None

    def _attrs(self, cls: str) -> dict[str, Val]:
        """``self.x`` values after ``__init__`` (the class's own, else its in-file base's)."""
        if cls in self.attr_memo:
            return self.attr_memo[cls]
        self.attr_memo[cls] = {}  # recursion guard
        info = self.ctx.class_by_name.get(cls)
        if info is None:
            return {}
        base_attrs: dict[str, Val] = {}
        for b in info.bases:
            if b in self.ctx.class_by_name and b != cls:
                base_attrs.update(self._attrs(b))
        init = info.methods.get("__init__")
        if init is None:
            attrs = dict(base_attrs)
        else:
            frame = Frame(cls=cls)
            frame.mute += 1  # records of __init__ are taken from its own analysis (_method_result)
            for key, val in base_attrs.items():
                frame.env["self." + key] = val
            for i, (p, val) in enumerate(self._init_params(info, init)):
                if i == 0:
                    frame.self_name = p
                    frame.env[p] = Val(obj=Obj("self", cls))
                else:
                    frame.env[p] = val
            self._bind_other_params(frame, init)
            self._block(frame, init.body)
            attrs = {k[5:]: v for k, v in frame.env.items() if k.startswith("self.")}
        for name in self._mutated(cls):
            attrs[name] = UNKNOWN
        self.attr_memo[cls] = attrs
        return attrs

    def _mutated(self, cls: str) -> set[str]:
        """Attributes assigned outside ``__init__`` or changed in place anywhere in the
        class (``self.net.append(...)``, ``self.head[-1] = ...``, ``setattr``)."""
        if cls in self._mutated_attrs:
            return self._mutated_attrs[cls]
        out: set[str] = set()
        for info in self._mro(cls):
            for name, fn in info.methods.items():
                params = positional_params(fn)
                selfname = params[0].name.value if params else "self"
                for small, _ in small_statements(fn.body):
                    targets: list[cst.BaseExpression]
                    if isinstance(small, cst.Assign):
                        targets = [t.target for t in small.targets]
                    elif isinstance(small, (cst.AugAssign, cst.AnnAssign)):
                        targets = [small.target]
                    else:
                        continue
                    while targets:
                        t = targets.pop()
                        if isinstance(t, (cst.Tuple, cst.List)):
                            targets.extend(el.value for el in t.elements)
                        elif isinstance(t, cst.StarredElement):
                            targets.append(t.value)
                        elif isinstance(t, cst.Subscript):
                            a = t.value
                            if (
                                isinstance(a, cst.Attribute)
                                and isinstance(a.value, cst.Name)
                                and a.value.value == selfname
                            ):
                                out.add(a.attr.value)  # self.layers[0] = ...
                        elif name != "__init__" and is_attribute_of(t, selfname):
                            out.add(t.attr.value)  # self.head = ... outside __init__
                for node in self._calls_in(fn):
                    f = node.func
                    if not isinstance(f, cst.Attribute):
                        if dotted(f) == "setattr":
                            first = arg_expr(node, 1, None)
                            if isinstance(first, cst.SimpleString):
                                out.add(str(first.evaluated_value))
                        continue
                    if f.attr.value in CONTAINER_MUTATOR_METHODS and is_attribute_of(f.value, selfname):
                        out.add(f.value.attr.value)
                    if (
                        f.attr.value in ("add_module", "register_module")
                        and isinstance(f.value, cst.Name)
                        and f.value.value == selfname
                    ):
                        first = arg_expr(node, 0, "name")
                        if isinstance(first, cst.SimpleString):
                            out.add(str(first.evaluated_value))
        self._mutated_attrs[cls] = out
        return out

    def _calls_in(self, fn: cst.FunctionDef) -> list[cst.Call]:
        """Calls whose innermost enclosing def is ``fn`` (from the source pass's index)."""
        if self._calls_by_fn is None:
            self._calls_by_fn = {}
            for call, info in self.ctx.calls:
                if info is not None:
                    self._calls_by_fn.setdefault(id(info.node), []).append(call)
        return self._calls_by_fn.get(id(fn), [])

    def _instantiations(self) -> dict[str, list[cst.Call]]:
        if self._sites is None:
            self._sites = {}
            for call, _ in self.ctx.calls:
                name = dotted(call.func)
                if name in self.ctx.class_by_name:
                    self._sites.setdefault(name, []).append(call)
        return self._sites

    def _init_params(self, info: ClassInfo, init: cst.FunctionDef) -> list[tuple[str, Val]]:
        """``__init__``'s parameters: a default is trusted only where no instantiation in
        the file passes that argument (or all of them pass the same integer)."""
        params = positional_params(init)
        out = [(params[0].name.value, UNKNOWN)] if params else []
        sites = self._instantiations().get(info.name, [])
        subclassed = info.name in self._subclassed
        for i, p in enumerate(params[1:]):
            name = p.name.value
            if (
                not sites
                and not self.ctx.is_module_class(info)
                and (mp := self._model_param(init, name, info)) is not None
            ):
                out.append((name, mp))  # class Trainer: def __init__(self, model): self.model = model
                continue
            if subclassed or any(has_star(c) for c in sites):
                out.append((name, UNKNOWN))
                continue
            consts = set()
            uses_default = not sites
            unknown = False
            for c in sites:
                e = arg_expr(c, i, name)
                if e is None:
                    uses_default = True
                    continue
                v = self._const(e)
                if v is None:
                    unknown = True
                consts.add(v)
            if uses_default:
                consts.add(self._const(p.default) if p.default is not None else None)
            if unknown or len(consts) != 1 or None in consts:
                out.append((name, UNKNOWN))
            else:
                out.append((name, Val(const=consts.pop())))
        for p in init.params.kwonly_params:
            out.append((p.name.value, UNKNOWN))
        return out

    def _const(self, e: cst.BaseExpression | None) -> int | None:
        """An integer literal or a module-level integer constant."""
        if e is None:
            return None
        if isinstance(e, cst.Integer):
            return int_value(e)
        if (
            isinstance(e, cst.UnaryOperation)
            and isinstance(e.operator, cst.Minus)
            and isinstance(e.expression, cst.Integer)
        ):
            v = int_value(e.expression)
            return -v if v is not None else None
        if isinstance(e, cst.Name) and self.mod is not None:
            val = self.mod.env.get(e.value)
            if val is not None and isinstance(val.const, int):
                return val.const
        return None

    # the model a `model` parameter most likely is -----------------------------------
    def _model_param(self, fn: cst.FunctionDef, name: str, owner: ClassInfo | None = None) -> Val | None:
        """A parameter named like a model (``model``, ``net``...) that the function calls
        (or, for ``__init__`` of a non-model class, that another method calls as
        ``self.<name>(...)``), in a file that defines exactly one top-level model class:
        that class."""
        low = name.lower()
        if not any(w in low for w in MODEL_PARAM_WORDS) or "loss" in low or "criterion" in low:
            return None
        if owner is not None:
            if name not in self._self_callees(owner):
                return None
        elif name not in self._called_names(fn):
            return None
        cand = self._model_candidate()
        return Val(obj=Obj("inst", cand)) if cand else None

    def _called_names(self, fn: cst.FunctionDef) -> set[str]:
        called = self._callee_params.get(id(fn))
        if called is None:
            called = set()
            for node in self._calls_in(fn):
                f = node.func
                if isinstance(f, cst.Attribute) and f.attr.value == "forward":
                    f = f.value
                if isinstance(f, cst.Name):
                    called.add(f.value)
            self._callee_params[id(fn)] = called
        return called

    def _self_callees(self, info: ClassInfo) -> set[str]:
        """``x`` for every ``self.x(...)`` / ``self.x.forward(...)`` in the class's methods."""
        out: set[str] = set()
        for fn in info.methods.values():
            for node in self._calls_in(fn):
                f = node.func
                if isinstance(f, cst.Attribute) and f.attr.value == "forward":
                    f = f.value
                if isinstance(f, cst.Attribute) and isinstance(f.value, cst.Name) and f.value.value == "self":
                    out.add(f.attr.value)
        return out

    def _model_candidate(self) -> str | None:
        if self._candidate is not False:
            return self._candidate
        ctx = self.ctx
        excluded: set[str] = set(self._subclassed)
        for call, func in ctx.calls:
            name = dotted(call.func)
            if (
                name in ctx.class_by_name
                and func is not None
                and func.cls is not None
                and ctx.is_module_class(func.cls)
            ):
                excluded.add(name)  # a submodule of another model
            q = ctx.qualname(call.func) or ""
            if q.startswith("torch.nn."):
                for a in call.args:
                    if (
                        isinstance(a.value, cst.Call)
                        and (part := dotted(a.value.func)) is not None
                        and part in ctx.class_by_name
                    ):
                        excluded.add(part)
        for node, _ in small_statements(ctx.module, into_defs=True):
            if not isinstance(node, cst.Assign) or not isinstance(node.value, cst.Call):
                continue
            callee = dotted(node.value.func)
            into_attr = [t.target for t in node.targets if isinstance(t.target, (cst.Attribute, cst.Subscript))]
            if not into_attr:
                continue
            if callee in ctx.class_by_name:
                excluded.add(callee)  # model.head = Head(): a part
            root: cst.BaseExpression = into_attr[0]
            while isinstance(root, (cst.Attribute, cst.Subscript)):
                root = root.value
            rewired = (ctx.qualname(node.value.func) or "").startswith("torch.nn.")
            if isinstance(root, cst.Name) and root.value not in ("self", "cls") and rewired:
                self._candidate = None  # model.fc = nn.Linear(...): the file rewires some model
                return None
        top_level = {id(st) for st, _ in self._top_statements()}
        cands = []
        for cls in ctx.module_classes():
            if id(cls.node) not in top_level or cls.name in excluded or cls.name.lower().endswith("loss"):
                continue
            if any("loss" in b.lower() for b in cls.bases):
                continue
            if self._find_method(cls.name, "forward") is None:
                continue
            cands.append(cls.name)
        self._candidate = cands[0] if len(cands) == 1 else None
        return self._candidate
