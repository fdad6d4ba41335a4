"""The value-flow interpreter: walks each function body in statement order over ``Val``s and records what the rules read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Literal, TypeGuard

import libcst as cst

from nnlint.analysis.flow_records import EMPTY, DimUse, Flow, LossUse, PredUse, Records, Result
from nnlint.analysis.syntax import (
    arg_expr,
    has_star,
    int_value,
    is_bare_slice,
    is_number_literal,
    keyword_arg,
    positional_args,
    positional_params,
)
from nnlint.analysis.values import UNKNOWN, Obj, Val, merge, merge_env
from nnlint.contexts.source import ClassInfo, SourceContext, dotted, iter_nodes, normalize_torch_name
from nnlint.vocab import (
    ACTIVATION_METHODS,
    ACTIVATION_MODULES_TAG,
    AFFINE_FUNCTIONS,
    AFFINE_MODULES_WIDTH,
    CONTAINER_MUTATOR_METHODS,
    DATALOADER_CLASSES,
    DROPOUT_FUNCTIONS,
    DROPOUT_OR_IDENTITY_MODULES,
    FLOAT_DTYPES,
    INDEX_DTYPES,
    LOSS_FUNCTIONS_KIND,
    LOSS_MODULES_KIND,
    MODEL_WRAPPERS,
    NORM_MODULES_BATCHED,
    OTHER_ACTIVATION_FUNCTIONS,
    POOL_MODULE_PREFIXES,
    RESAMPLE_FUNCTIONS,
    RETURNS_SELF_MODULE_METHODS,
    SIGMOID_FUNCTIONS,
    SOFTMAX_FUNCTIONS_KIND,
    SOFTMAX_MODULES,
    TORCH_FUNCTION_PREFIXES,
    UPSAMPLE_MODULES,
    VALUE_PRESERVING_METHODS,
)

MODEL_PARAM_WORDS = ("model", "net", "classifier", "clf")


class _Frame:
    def __init__(self, cls: str | None = None, forward: bool = False, closure: dict[str, Val] | None = None) -> None:
        self.env: dict[str, Val] = {}
        self.cls = cls
        self.forward = forward
        self.self_name: str | None = None
        self.closure = closure or {}
        self.returns: list[Val] = []
        self.rec = Records()
        self.mute = 0
        self.nested: list[tuple[cst.FunctionDef, dict[str, Val]]] = []
        self.generator = False


_COMPOUND = (
    cst.If,
    cst.For,
    cst.While,
    cst.With,
    cst.Try,
    cst.TryStar,
    cst.Else,
    cst.Finally,
    cst.ExceptHandler,
    cst.ExceptStarHandler,
)


def _is_self_attr(node: cst.BaseExpression, selfname: str) -> TypeGuard[cst.Attribute]:
    """``self.x`` (for the method's first parameter name)."""
    return isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == selfname


def small_statements(body: Any, into_defs: bool = False) -> Iterable[tuple[cst.BaseSmallStatement, Any]]:
    """Every small statement under ``body`` with its enclosing def (statement level only:
    expressions are not descended into, which keeps this much cheaper than a full walk)."""
    stack: list[tuple[Any, Any]] = [(body, None)]
    while stack:
        node, owner = stack.pop()
        if isinstance(node, (list, tuple)):
            stack.extend((n, owner) for n in reversed(node))
        elif isinstance(node, (cst.Module, cst.IndentedBlock, cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            if isinstance(node, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
                for small in node.body:
                    yield small, owner
            else:
                stack.append((list(node.body), owner))
        elif isinstance(node, _COMPOUND):
            parts = [getattr(node, "body", None), getattr(node, "orelse", None), getattr(node, "finalbody", None)]
            parts += list(getattr(node, "handlers", ()) or ())
            stack.extend((p, owner) for p in reversed(parts) if p is not None)
        elif isinstance(node, cst.Match):
            stack.extend((c.body, owner) for c in reversed(node.cases))
        elif into_defs and isinstance(node, cst.FunctionDef):
            stack.append((node.body, node))
        elif into_defs and isinstance(node, cst.ClassDef):
            stack.append((node.body, owner))


class Interpreter:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.mod: _Frame | None = None
        self.mod_result: Result | None = None
        self.top_funcs: dict[str, cst.FunctionDef] = {}
        self.attr_memo: dict[str, dict[str, Val]] = {}
        self.fwd_memo: dict[str, Result | None] = {}
        self.method_memo: dict[tuple[str, int], Result] = {}
        self.func_memo: dict[tuple[int, tuple], Result] = {}
        self.in_progress: set[Any] = set()
        self.bindings: dict[cst.FunctionDef, tuple] = {}
        self.has_sites: set[cst.FunctionDef] = set()
        self._sites: dict[str, list[cst.Call]] | None = None
        self._candidate: str | None | Literal[False] = False  # False: not computed yet
        self._callee_params: dict[int, set[str]] = {}
        self._calls_by_fn: dict[int, list[cst.Call]] | None = None
        self._collate: bool | None = None
        self._mutated_attrs: dict[str, set[str]] = {}
        self._subclassed: set[str] = {b.split(".")[-1] for c in ctx.classes for b in c.bases}

    # driver ---------------------------------------------------------------------
    def run(self) -> Flow:
        ctx = self.ctx
        if not any(v == "torch" or v.startswith("torch.") for v in ctx.aliases.values()):
            return EMPTY
        for st, _ in self._top_statements():
            if isinstance(st, cst.FunctionDef):
                self.top_funcs.setdefault(st.name.value, st)
        results: list[Result] = []
        for _ in range(3):
            self.func_memo = {}  # a function's analysis depends on the bindings of this round
            results = self._final_results()
            new = self._bindings_from(results)
            if new == self.bindings:
                break
            self.bindings = new
        losses, preds, dims = [], [], []
        batched: set[str] = set()
        edges: set[tuple[str, str]] = set()
        compared: set[int] = set()
        seen_loss: set[tuple[int, Val]] = set()
        for r in results:
            for u in r.records.losses:
                key = (id(u.call), u.input)
                if key not in seen_loss:
                    seen_loss.add(key)
                    losses.append(u)
            preds.extend(r.records.preds)
            compared |= r.records.compared
            dims.extend(r.records.dims)
            batched |= r.records.batched_calls
            edges |= r.records.edges
        for p in preds:
            p.compared = id(p.node) in compared
        changed = True
        while changed:  # a class whose forward hands its batched input to another class
            changed = False
            for a, b in edges:
                if a in batched and b not in batched:
                    batched.add(b)
                    changed = True
        return Flow(losses, preds, dims, batched)

    def _top_statements(self) -> Iterable[tuple[cst.CSTNode, None]]:
        """Module-level statements, including those under a top-level ``if``/``try``."""
        todo: list[cst.BaseStatement] = list(self.ctx.module.body)
        while todo:
            st = todo.pop(0)
            yield st, None
            if isinstance(st, (cst.If, cst.Try)) and isinstance(st.body, cst.IndentedBlock):
                todo.extend(st.body.body)

    def _final_results(self) -> list[Result]:
        out = [self._module_result()]
        for cls in self.ctx.classes:
            if self._find_method(cls.name, "forward") is not None and self._is_module(cls.name):
                r = self._forward_result(cls.name)
                if r is not None:
                    out.append(r)
            for name, fn in cls.methods.items():
                if name != "forward":
                    out.append(self._method_result(cls.name, fn))
        for fn in self.top_funcs.values():
            out.append(self._func_result(fn, self.bindings.get(fn, ())))
        todo = [r for r in out]
        while todo:  # functions defined inside functions see the enclosing names
            r = todo.pop()
            for fn, closure in r.nested:
                nr = self._analyze_function(fn, self.bindings.get(fn, ()), closure=closure)
                out.append(nr)
                todo.append(nr)
        return out

    def _bindings_from(self, results: list[Result]) -> dict[cst.FunctionDef, tuple]:
        sites: dict[cst.FunctionDef, list[dict[str, Val]]] = {}
        for r in results:
            for fn, args in r.records.callsites:
                sites.setdefault(fn, []).append(args)
        self.has_sites = set(sites)
        out = {}
        for fn, calls in sites.items():
            bound: dict[str, Val] = {}
            for p in positional_params(fn):
                name = p.name.value
                found = [c.get(name) for c in calls]
                vals = [v for v in found if v is not None]
                if len(vals) < len(found):
                    vals.append(self._default(p))
                merged = vals[0]
                for v in vals[1:]:
                    merged = merge(merged, v)
                if merged != UNKNOWN:
                    bound[name] = merged
            out[fn] = tuple(sorted(bound.items(), key=lambda kv: kv[0]))
        return out

    def _default(self, p: cst.Param) -> Val:
        if p.default is None:
            return UNKNOWN
        c = self._const(p.default)
        return Val(const=c) if c is not None else UNKNOWN

    # results ---------------------------------------------------------------------
    def _module_result(self) -> Result:
        if self.mod_result is None:
            fr = _Frame()
            self.mod = fr
            self._block(fr, self.ctx.module.body)
            self.mod_result = Result(UNKNOWN, fr.rec, fr.nested)
        return self.mod_result

    def _forward_result(self, cls: str) -> Result | None:
        if cls in self.fwd_memo:
            return self.fwd_memo[cls]
        fn = self._find_method(cls, "forward")
        if fn is None or ("fwd", cls) in self.in_progress:
            return None
        self.in_progress.add(("fwd", cls))
        self.fwd_memo[cls] = None  # recursion guard
        try:
            fr = _Frame(cls=cls, forward=True)
            params = positional_params(fn)
            for i, p in enumerate(params):
                if i == 0:
                    fr.self_name = p.name.value
                    fr.env[p.name.value] = Val(obj=Obj("self", cls))
                elif i == 1:
                    fr.env[p.name.value] = Val(batched="input")
                else:
                    fr.env[p.name.value] = UNKNOWN
            self._bind_other_params(fr, fn)
            res = self._walk(fr, fn)
        finally:
            self.in_progress.discard(("fwd", cls))
        self.fwd_memo[cls] = res
        return res

    def _method_result(self, cls: str, fn: cst.FunctionDef) -> Result:
        key = (cls, id(fn))
        if key not in self.method_memo:
            fr = _Frame(cls=cls)
            params = positional_params(fn)
            is_static = any(dotted(d.decorator) in ("staticmethod", "classmethod") for d in fn.decorators)
            for i, p in enumerate(params):
                name = p.name.value
                if i == 0 and not is_static:
                    fr.self_name = name
                    fr.env[name] = Val(obj=Obj("self", cls))
                elif name == "batch" and fn.name.value.endswith("_step"):
                    fr.env[name] = Val(obj=Obj("batch"))  # Lightning: a collated batch
                else:
                    fr.env[name] = self._model_param(fn, name) or UNKNOWN
            self._bind_other_params(fr, fn)
            self.method_memo[key] = self._walk(fr, fn)
        return self.method_memo[key]

    def _func_result(self, fn: cst.FunctionDef, bkey: tuple) -> Result:
        key = (id(fn), bkey)
        if key not in self.func_memo:
            if ("fn", key) in self.in_progress:
                return Result(UNKNOWN, Records(), [])
            self.in_progress.add(("fn", key))
            try:
                self.func_memo[key] = self._analyze_function(fn, bkey)
            finally:
                self.in_progress.discard(("fn", key))
        return self.func_memo[key]

    def _analyze_function(self, fn: cst.FunctionDef, bkey: tuple, closure: dict[str, Val] | None = None) -> Result:
        fr = _Frame(closure=closure)
        bound = dict(bkey)
        for p in positional_params(fn):
            name = p.name.value
            if name in bound:
                fr.env[name] = bound[name]
            elif fn not in self.has_sites and (mp := self._model_param(fn, name)) is not None:
                fr.env[name] = mp
            else:
                fr.env[name] = UNKNOWN
        self._bind_other_params(fr, fn)
        return self._walk(fr, fn)

    def _bind_other_params(self, fr: _Frame, fn: cst.FunctionDef) -> None:
        p = fn.params
        for param in (*p.kwonly_params,):
            fr.env[param.name.value] = UNKNOWN
        for star in (p.star_arg, p.star_kwarg):
            if isinstance(star, cst.Param):
                fr.env[star.name.value] = UNKNOWN

    def _walk(self, fr: _Frame, fn: cst.FunctionDef) -> Result:
        self._block(fr, fn.body)
        if fr.generator:
            return Result(UNKNOWN, fr.rec, [(f, merge_env(snap, fr.env)) for f, snap in fr.nested])
        ret = None
        for v in fr.returns:
            ret = merge(ret, v) if ret is not None else v
        nested = [(f, merge_env(snap, fr.env)) for f, snap in fr.nested]
        return Result(ret or UNKNOWN, fr.rec, nested)

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
            fr = _Frame(cls=cls)
            fr.mute += 1  # records of __init__ are taken from its own analysis (_method_result)
            for key, val in base_attrs.items():
                fr.env["self." + key] = val
            for i, (p, val) in enumerate(self._init_params(info, init)):
                if i == 0:
                    fr.self_name = p
                    fr.env[p] = Val(obj=Obj("self", cls))
                else:
                    fr.env[p] = val
            self._bind_other_params(fr, init)
            self._block(fr, init.body)
            attrs = {k[5:]: v for k, v in fr.env.items() if k.startswith("self.")}
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
                        elif name != "__init__" and _is_self_attr(t, selfname):
                            out.add(t.attr.value)  # self.head = ... outside __init__
                for node in self._calls_in(fn):
                    f = node.func
                    if not isinstance(f, cst.Attribute):
                        if dotted(f) == "setattr":
                            first = arg_expr(node, 1, None)
                            if isinstance(first, cst.SimpleString):
                                out.add(str(first.evaluated_value))
                        continue
                    if f.attr.value in CONTAINER_MUTATOR_METHODS and _is_self_attr(f.value, selfname):
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

    # statements -------------------------------------------------------------------
    def _block(self, fr: _Frame, body: Any) -> bool:
        """Walk statements; True when the block always leaves (return/raise/break/continue)."""
        if isinstance(body, (cst.IndentedBlock, cst.Module)):
            stmts = body.body
        elif isinstance(body, cst.SimpleStatementSuite):
            return self._smalls(fr, body.body)
        else:
            stmts = body
        for st in stmts:
            if self._stmt(fr, st):
                return True
        return False

    def _smalls(self, fr: _Frame, smalls: Iterable[cst.BaseSmallStatement]) -> bool:
        for s in smalls:
            if self._small(fr, s):
                return True
        return False

    def _stmt(self, fr: _Frame, st: cst.CSTNode) -> bool:
        if isinstance(st, cst.SimpleStatementLine):
            return self._smalls(fr, st.body)
        if isinstance(st, cst.If):
            return self._if(fr, st)
        if isinstance(st, (cst.For, cst.While)):
            self._loop(fr, st)
            return False
        if isinstance(st, (cst.Try, cst.TryStar)):
            return self._try(fr, st)
        if isinstance(st, cst.With):
            for item in st.items:
                self._eval(fr, item.item)
                if item.asname is not None:
                    self._bind(fr, item.asname.name, UNKNOWN)
            return self._block(fr, st.body)
        if isinstance(st, cst.FunctionDef):
            fr.env[st.name.value] = Val(obj=Obj("func", st.name.value, node=st))
            if fr is not self.mod and not fr.mute:
                fr.nested.append((st, dict(fr.env)))
            return False
        if isinstance(st, cst.ClassDef):
            fr.env[st.name.value] = Val(obj=Obj("class", st.name.value))
            return False
        if isinstance(st, cst.Match):
            self._eval(fr, st.subject)
            pre = fr.env
            outs = [pre]
            for case in st.cases:
                fr.env = dict(pre)
                if not self._block(fr, case.body):
                    outs.append(fr.env)
            fr.env = merge_env(*outs)
            return False
        return False

    def _if(self, fr: _Frame, node: cst.If) -> bool:
        self._eval(fr, node.test)
        pre = fr.env
        fr.env = dict(pre)
        t1 = self._block(fr, node.body)
        e1 = fr.env
        fr.env = dict(pre)
        if node.orelse is None:
            t2 = False
        elif isinstance(node.orelse, cst.If):
            t2 = self._if(fr, node.orelse)
        else:
            t2 = self._block(fr, node.orelse.body)
        e2 = fr.env
        live = [e for e, t in ((e1, t1), (e2, t2)) if not t]
        fr.env = merge_env(*live) if live else merge_env(e1, e2)
        return not live

    def _loop(self, fr: _Frame, node: cst.For | cst.While) -> None:
        if isinstance(node, cst.For):
            it = self._eval(fr, node.iter)
            item = self._iter_item(fr, node.iter, it)
        else:
            self._eval(fr, node.test)
        pre = fr.env
        passes = 1 if fr.mute else 2
        for i in range(passes):
            if i < passes - 1:
                fr.mute += 1
            fr.env = dict(fr.env)
            if isinstance(node, cst.For):
                self._bind(fr, node.target, item)
            self._block(fr, node.body)
            if i < passes - 1:
                fr.mute -= 1
            fr.env = merge_env(pre, fr.env)
        if node.orelse is not None:
            self._block(fr, node.orelse.body)

    def _iter_item(self, fr: _Frame, expr: cst.BaseExpression, it: Val) -> Val:
        """What one iteration of ``for ... in expr`` binds: a batch for a DataLoader."""
        if isinstance(expr, cst.Call) and dotted(expr.func) in ("enumerate", "tqdm", "tqdm.tqdm", "iter") and expr.args:
            inner = expr.args[0].value
            item = self._iter_item(fr, inner, self._peek(fr, inner))
            if dotted(expr.func) == "enumerate":
                return Val(items=(UNKNOWN, item))
            return item
        name = dotted(expr)
        if (it.obj is not None and it.obj.kind == "loader") or (
            name is not None and "loader" in name.split(".")[-1].lower()
        ):
            if self._custom_collate():
                return UNKNOWN  # a collate_fn may build sequence-first batches (pad_sequence)
            return Val(obj=Obj("batch"))
        return UNKNOWN

    def _custom_collate(self) -> bool:
        if self._collate is None:
            self._collate = any(
                keyword_arg(call, "collate_fn") is not None and self._torch_name(call.func) in DATALOADER_CLASSES
                for call, _ in self.ctx.calls
            )
        return self._collate

    def _peek(self, fr: _Frame, expr: cst.BaseExpression) -> Val:
        if isinstance(expr, cst.Name):
            return self._lookup(fr, expr.value)
        return UNKNOWN

    def _try(self, fr: _Frame, node: cst.Try | cst.TryStar) -> bool:
        pre = fr.env
        fr.env = dict(pre)
        t = self._block(fr, node.body)
        after = fr.env
        if not t and node.orelse is not None:
            t = self._block(fr, node.orelse.body)
        outs = [] if t else [fr.env]
        for h in node.handlers:
            fr.env = merge_env(pre, after)
            if h.name is not None:
                self._bind(fr, h.name.name, UNKNOWN)
            if not self._block(fr, h.body):
                outs.append(fr.env)
        fr.env = merge_env(*outs) if outs else merge_env(pre, after)
        if node.finalbody is not None:
            self._block(fr, node.finalbody.body)
        return not outs

    def _small(self, fr: _Frame, s: cst.BaseSmallStatement) -> bool:
        if isinstance(s, cst.Assign):
            v = self._eval(fr, s.value)
            for t in s.targets:
                self._bind(fr, t.target, v)
        elif isinstance(s, cst.AnnAssign):
            if s.value is not None:
                self._bind(fr, s.target, self._eval(fr, s.value))
        elif isinstance(s, cst.AugAssign):
            self._eval(fr, s.value)
            self._bind(fr, s.target, UNKNOWN)
        elif isinstance(s, cst.Expr):
            self._eval(fr, s.value)
        elif isinstance(s, cst.Return):
            v = self._eval(fr, s.value) if s.value is not None else UNKNOWN
            if not fr.mute:
                fr.returns.append(v)
            return True
        elif isinstance(s, cst.Raise):
            return True
        elif isinstance(s, (cst.Break, cst.Continue)):
            return True
        elif isinstance(s, cst.Assert):
            self._eval(fr, s.test)
        elif isinstance(s, cst.Del):
            for deleted in iter_nodes(s):
                if isinstance(deleted, cst.Name):
                    fr.env[deleted.value] = UNKNOWN
        return False

    def _bind(self, fr: _Frame, target: cst.BaseExpression, v: Val) -> None:
        if isinstance(target, cst.Name):
            fr.env[target.value] = v
        elif isinstance(target, (cst.Tuple, cst.List)):
            elems = target.elements
            starred = any(isinstance(e, cst.StarredElement) for e in elems)
            for i, e in enumerate(elems):
                if isinstance(e, cst.StarredElement):
                    self._bind(fr, e.value, UNKNOWN)
                elif v.items is not None and not starred and len(v.items) == len(elems):
                    self._bind(fr, e.value, v.items[i])
                elif v.obj is not None and v.obj.kind == "batch":
                    self._bind(fr, e.value, Val(batched="yes"))
                elif v.const == "shape" and i == 0 and not starred:
                    self._bind(fr, e.value, Val(const="N"))
                else:
                    self._bind(fr, e.value, UNKNOWN)
        elif isinstance(target, cst.Attribute):
            base = target.value
            if isinstance(base, cst.Name) and base.value == fr.self_name:
                fr.env["self." + target.attr.value] = v
            else:
                self._invalidate(fr, base)
        elif isinstance(target, cst.Subscript):
            self._invalidate(fr, target.value)
        elif isinstance(target, cst.StarredElement):
            self._bind(fr, target.value, UNKNOWN)

    def _invalidate(self, fr: _Frame, base: cst.BaseExpression) -> None:
        """``model.fc = ...`` / ``model[-1] = ...``: the model is no longer what we knew."""
        if isinstance(base, cst.Name):
            if (
                base.value in fr.env
                or base.value in fr.closure
                or (self.mod is not None and base.value in self.mod.env)
            ):
                fr.env[base.value] = UNKNOWN
        elif isinstance(base, cst.Attribute) and isinstance(base.value, cst.Name) and base.value.value == fr.self_name:
            fr.env["self." + base.attr.value] = UNKNOWN

    # expressions ------------------------------------------------------------------
    def _lookup(self, fr: _Frame, name: str) -> Val:
        if name in fr.env:
            return fr.env[name]
        if name in fr.closure:
            return fr.closure[name]
        if self.mod is not None and fr is not self.mod and name in self.mod.env:
            return self.mod.env[name]
        if name in self.ctx.class_by_name:
            return Val(obj=Obj("class", name))
        if name in self.top_funcs:
            return Val(obj=Obj("func", name, node=self.top_funcs[name]))
        return UNKNOWN

    def _torch_name(self, e: cst.BaseExpression) -> str | None:
        name = dotted(e)
        if name is None or name.split(".", 1)[0] not in self.ctx.aliases:
            return None
        q = self.ctx.qualname(e)
        if q is None or not (q == "torch" or q.startswith("torch.")):
            return None
        return normalize_torch_name(q)

    def _eval(self, fr: _Frame, e: cst.BaseExpression | None) -> Val:
        if e is None:
            return UNKNOWN
        if isinstance(e, cst.Name):
            return self._lookup(fr, e.value)
        if isinstance(e, cst.Attribute):
            return self._attribute(fr, e)
        if isinstance(e, cst.Call):
            return self._call(fr, e)
        if isinstance(e, cst.Subscript):
            return self._subscript(fr, e)
        if isinstance(e, cst.Integer):
            return Val(const=int_value(e))
        if isinstance(e, cst.UnaryOperation):
            v = self._eval(fr, e.expression)
            if isinstance(e.operator, cst.Minus) and isinstance(v.const, int):
                return Val(const=-v.const)
            return UNKNOWN
        if isinstance(e, cst.BinaryOperation):
            return self._binop(fr, e)
        if isinstance(e, (cst.Tuple, cst.List)):
            vals = [self._eval(fr, el.value) for el in e.elements]
            if any(isinstance(el, cst.StarredElement) for el in e.elements):
                return UNKNOWN
            return Val(items=tuple(vals))
        if isinstance(e, cst.IfExp):
            self._eval(fr, e.test)
            return merge(self._eval(fr, e.body), self._eval(fr, e.orelse))
        if isinstance(e, cst.NamedExpr):
            v = self._eval(fr, e.value)
            self._bind(fr, e.target, v)
            return v
        if isinstance(e, cst.Dict):
            for el in e.elements:
                if isinstance(el, cst.DictElement):
                    self._eval(fr, el.key)
                self._eval(fr, el.value)
            return UNKNOWN
        if isinstance(e, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            self._comprehension(fr, e)
            return UNKNOWN
        if isinstance(e, cst.Comparison):
            vals = [self._eval(fr, e.left)]
            for c in e.comparisons:
                vals.append(self._eval(fr, c.comparator))
            if any(isinstance(c.operator, (cst.Equal, cst.NotEqual)) for c in e.comparisons):
                self._compared(fr, *vals)
            return UNKNOWN
        if isinstance(e, cst.BooleanOperation):
            self._eval(fr, e.left)
            self._eval(fr, e.right)
            return UNKNOWN
        if isinstance(e, cst.Await):
            self._eval(fr, e.expression)
            return UNKNOWN
        if isinstance(e, cst.Yield):
            fr.generator = True
            if isinstance(e.value, cst.BaseExpression):
                self._eval(fr, e.value)
            return UNKNOWN
        return UNKNOWN

    def _comprehension(self, fr: _Frame, e: Any) -> None:
        saved = fr.env
        fr.env = dict(saved)
        fr.mute += 1  # values bound per element are not followed; do not report inside
        try:
            comp = e.for_in
            while comp is not None:
                self._eval(fr, comp.iter)
                self._bind(fr, comp.target, UNKNOWN)
                for cond in comp.ifs:
                    self._eval(fr, cond.test)
                comp = comp.inner_for_in
            if isinstance(e, cst.DictComp):
                self._eval(fr, e.key)
                self._eval(fr, e.value)
            else:
                self._eval(fr, e.elt)
        finally:
            fr.mute -= 1
            fr.env = saved

    def _member(self, fr: _Frame, e: cst.Attribute, recv: Val) -> Val:
        """``self.x`` / ``model.x`` on a class of the file."""
        attr = e.attr.value
        if isinstance(e.value, cst.Name) and e.value.value == fr.self_name:
            key = "self." + attr
            if key in fr.env:
                return fr.env[key]
        if attr == "module":  # DataParallel(model).module
            return recv
        if recv.obj is None:  # callers pass an instance of a class of the file
            return UNKNOWN
        return self._attrs(recv.obj.name).get(attr, UNKNOWN)

    def _attribute(self, fr: _Frame, e: cst.Attribute) -> Val:
        attr = e.attr.value
        if self._torch_name(e) is not None:
            return UNKNOWN
        v = self._eval(fr, e.value)
        if v.obj is not None:
            if v.obj.kind in ("inst", "self"):
                return self._member(fr, e, v)
            return UNKNOWN
        if attr == "data":
            return v
        if attr in ("values", "indices") and v.items is not None and len(v.items) == 2:
            return v.items[0] if attr == "values" else v.items[1]  # torch.max(x, 1).indices
        if attr in ("T", "mT") and v.tag is not None:
            return replace(v, batched=None, kdim=None)
        if attr == "shape":
            return Val(const="shape")
        return UNKNOWN

    def _subscript(self, fr: _Frame, e: cst.Subscript) -> Val:
        v = self._eval(fr, e.value)
        elems = e.slice
        for el in elems:
            s = el.slice
            if isinstance(s, cst.Index):
                self._eval(fr, s.value)
        if v.obj is not None:
            if v.obj.kind == "batch":
                return Val(batched="yes")
            return UNKNOWN
        first = elems[0].slice if elems else None
        if v.const == "shape" and len(elems) == 1 and isinstance(first, cst.Index) and self._const(first.value) == 0:
            return Val(const="N")
        if v.items is not None:
            if len(elems) == 1 and isinstance(first, cst.Index):
                i = self._const(first.value)
                if i is not None and -len(v.items) <= i < len(v.items):
                    return v.items[i]
            return UNKNOWN
        if v.tag is None and v.k is None and v.batched is None and v.target is None:
            return UNKNOWN
        last = elems[-1].slice
        batched = v.batched if first is not None and is_bare_slice(first) and len(elems) >= 2 else None
        k = None
        if v.kdim == "last" and (len(elems) == 1 or is_bare_slice(last)):
            k = v.k
        elif v.kdim == "chan" and len(elems) >= 2 and is_bare_slice(first) and is_bare_slice(elems[1].slice):
            k = v.k
        return replace(v, batched=batched, k=k, kdim=v.kdim if k is not None else None, items=None)

    def _binop(self, fr: _Frame, e: cst.BinaryOperation) -> Val:
        left = self._eval(fr, e.left)
        right = self._eval(fr, e.right)
        op = e.operator
        if isinstance(left.const, int) and isinstance(right.const, int):
            a, b = left.const, right.const
            if isinstance(op, cst.Add):
                return Val(const=a + b)
            if isinstance(op, cst.Subtract):
                return Val(const=a - b)
            if isinstance(op, cst.Multiply):
                return Val(const=a * b)
            if isinstance(op, cst.FloorDivide) and b:
                return Val(const=a // b)
            return UNKNOWN
        lit_left, lit_right = is_number_literal(e.left), is_number_literal(e.right)
        if isinstance(op, (cst.Add, cst.Subtract)):
            # probs + eps, logits - 1.0: the same kind of value
            if lit_right:
                return replace(left, const=None)
            if lit_left and isinstance(op, cst.Add):
                return replace(right, const=None)
            return UNKNOWN
        if isinstance(op, (cst.Multiply, cst.Divide)):
            # logits / temperature: still logits; probabilities scaled are not probabilities
            scalar_right = lit_right or (
                isinstance(e.right, (cst.Name, cst.Attribute))
                and right.tag is None
                and right.obj is None
                and right.batched is None
            )
            if left.tag == "logits" and scalar_right:
                return left
            if isinstance(op, cst.Multiply) and lit_left and right.tag == "logits":
                return right
        return UNKNOWN

    # calls -------------------------------------------------------------------------
    def _args(self, fr: _Frame, e: cst.Call) -> tuple[list[Val], dict[str, Val], bool]:
        pos: list[Val] = []
        kw: dict[str, Val] = {}
        star = False
        for a in e.args:
            v = self._eval(fr, a.value)
            if a.star:
                star = True
            elif a.keyword is not None:
                kw[a.keyword.value] = v
            else:
                pos.append(v)
        return pos, kw, star

    def _call(self, fr: _Frame, e: cst.Call) -> Val:
        q = self._torch_name(e.func)
        if q is not None:
            pos, kw, star = self._args(fr, e)
            return self._torch_call(fr, e, q, pos, kw, star)
        if isinstance(e.func, cst.Attribute):
            recv = self._eval(fr, e.func.value)
            if recv.obj is not None and recv.obj.kind in ("self", "inst"):
                member = self._member(fr, e.func, recv)
                if member.obj is not None:  # self.fc(x), model.head(x), self.criterion(out, y)
                    pos, kw, star = self._args(fr, e)
                    return self._apply(fr, e, member, pos, kw, star)
            pos, kw, star = self._args(fr, e)
            self._metric_call(fr, e.func.attr.value, pos, kw)
            head = (dotted(e.func.value) or "").split(".")[0]
            if head in self.ctx.aliases and head not in fr.env and head not in fr.closure:
                return UNKNOWN  # a library function (torch_geometric.utils.softmax), not a tensor method
            return self._method(fr, e, recv, e.func.attr.value, pos, kw, star)
        callee = self._eval(fr, e.func)
        pos, kw, star = self._args(fr, e)
        self._metric_call(fr, (dotted(e.func) or "").split(".")[-1], pos, kw)
        if (dotted(e.func) or "").split(".")[-1] == "OrderedDict" and len(pos) == 1:
            return pos[0]
        return self._apply(fr, e, callee, pos, kw, star)

    def _first(self, pos: list[Val], kw: dict[str, Val], name: str = "input") -> Val:
        if pos:
            return pos[0]
        return kw.get(name, UNKNOWN)

    def _torch_call(self, fr: _Frame, e: cst.Call, q: str, pos: list[Val], kw: dict[str, Val], star: bool) -> Val:
        if q in DATALOADER_CLASSES:
            return Val(obj=Obj("loader"))
        if q in MODEL_WRAPPERS:
            return self._first(pos, kw, "model") if not star else UNKNOWN
        if q.startswith("torch.nn.") and q.count(".") == 2 and q[9:10].isupper():
            return self._module(fr, e, q[9:], pos, kw, star)
        short = None
        for prefix in TORCH_FUNCTION_PREFIXES:
            if q.startswith(prefix) and "." not in q[len(prefix) :]:
                short = q[len(prefix) :]
                break
        if short is None:
            return UNKNOWN
        functional = q.startswith("torch.nn.functional.")
        if functional and short in LOSS_FUNCTIONS_KIND:
            if not star:
                self._loss(fr, e, LOSS_FUNCTIONS_KIND[short], short, pos, kw)
            return UNKNOWN
        x = self._first(pos, kw)
        if x.obj is not None and x.obj.kind == "batch":
            x = Val(batched="yes")
        base = short[:-1] if short.endswith("_") and not short.endswith("__") else short
        if base in SOFTMAX_FUNCTIONS_KIND and (functional or short in ("softmax", "log_softmax")):
            self._dim0(fr, e, arg_expr(e, 1, "dim"), x, short)
            return self._tagged(x, SOFTMAX_FUNCTIONS_KIND[base], short, e)
        if base in SIGMOID_FUNCTIONS:
            return self._tagged(x, "sigmoid", short, e)
        if base in OTHER_ACTIVATION_FUNCTIONS:
            return self._tagged(x, "act", short, e, keep_k=base != "glu")
        if functional and short in AFFINE_FUNCTIONS:
            return Val(tag="logits", act=short, at=e, batched=x.batched)
        if functional and short in DROPOUT_FUNCTIONS:
            return x
        if functional and short in RESAMPLE_FUNCTIONS:
            if x.tag is None and x.k is None:
                return Val(batched=x.batched) if x.batched else UNKNOWN
            return (
                replace(x, items=None, const=None)
                if x.kdim == "chan"
                else replace(x, k=None, kdim=None, items=None, const=None)
            )
        if functional and short == "one_hot":
            return Val(target="onehot")
        if short in ("argmax",) or (short == "max" and (len(pos) >= 2 or "dim" in kw)):
            return self._prediction(fr, e, x, short)
        if short in ("log",):
            return self._log(x, e)
        if short in ("exp",):
            return self._exp(x, e)
        if short in ("clamp", "clip"):
            return x if x.tag in ("softmax", "sigmoid", "log_softmax") else UNKNOWN
        if short == "flatten":
            start = self._const(arg_expr(e, 1, "start_dim"))
            if x.tag is not None:  # torch.flatten(conv_logits, 1): still logits
                return replace(x, batched="yes" if start == 1 else None, k=None, kdim=None, items=None, const=None)
            return Val(batched="yes") if start == 1 else UNKNOWN
        if short in ("squeeze", "unsqueeze", "transpose", "permute", "reshape"):
            return self._shape_method(fr, e, x, short, args_offset=1)
        return self._creator(e, short, pos, kw)

    def _creator(self, e: cst.Call, short: str, pos: list[Val], kw: dict[str, Val]) -> Val:
        """Tensors built in the file: their layout (batched) and what targets they make."""
        dtype = self._torch_name(kw_arg.value) if (kw_arg := keyword_arg(e, "dtype")) is not None else None
        if short == "randint":
            size_kw = keyword_arg(e, "size")
            size = size_kw.value if size_kw is not None else arg_expr(e, len(positional_args(e)) - 1, None)
            if isinstance(size, (cst.Tuple, cst.List)) and len(size.elements) == 1 and dtype not in FLOAT_DTYPES:
                return Val(target="index")
            return UNKNOWN
        if short in ("LongTensor",):
            return Val(target="index")
        if short == "tensor":
            data = arg_expr(e, 0, "data")
            if dtype in INDEX_DTYPES:
                return Val(target="index")
            if dtype in FLOAT_DTYPES:
                return Val(target="float")
            if (
                isinstance(data, cst.List)
                and data.elements
                and all(isinstance(el.value, cst.Integer) for el in data.elements)
            ):
                return Val(target="index")
            return UNKNOWN
        if short in (
            "rand",
            "randn",
            "zeros",
            "ones",
            "empty",
            "full",
            "rand_like",
            "randn_like",
            "zeros_like",
            "ones_like",
        ):
            target = "index" if dtype in INDEX_DTYPES else "float"
            if short.endswith("_like") or short == "full":
                return Val(target=target)
            pos_args = positional_args(e)
            dims: list | None = None
            if len(pos_args) == 1 and isinstance(pos_args[0].value, (cst.Tuple, cst.List)):
                dims = list(pos_args[0].value.elements)
            elif pos_args and all(not isinstance(a.value, (cst.Tuple, cst.List)) for a in pos_args):
                dims = pos_args
            # (N, F) / (N, C, H, W): batch-first once fed to a model, not on its own
            batched = "maybe" if dims is not None and len(dims) in (2, 4) and short in ("rand", "randn") else None
            return Val(target=target, batched=batched)
        return UNKNOWN

    def _module(self, fr: _Frame, e: cst.Call, name: str, pos: list[Val], kw: dict[str, Val], star: bool) -> Val:
        """``nn.X(...)``: a layer object."""
        if star and name != "Sequential":
            return UNKNOWN
        if name in ACTIVATION_MODULES_TAG:
            dim0 = False
            if name in SOFTMAX_MODULES:
                dim0 = self._const(arg_expr(e, 0, "dim")) == 0
            return Val(obj=Obj("act", name, node=e, tag=ACTIVATION_MODULES_TAG[name], dim0=dim0))
        if name in AFFINE_MODULES_WIDTH:
            idx, kwname, kdim = AFFINE_MODULES_WIDTH[name]
            kv = kw[kwname] if kwname in kw else (pos[idx] if idx < len(pos) else UNKNOWN)
            k = kv.const if isinstance(kv.const, int) else None
            return Val(obj=Obj("affine", name, node=e, k=k, kdim=kdim))
        if name in DROPOUT_OR_IDENTITY_MODULES:
            return Val(obj=Obj("pass", name, node=e))
        if name in NORM_MODULES_BATCHED:
            return Val(obj=Obj("norm", name, node=e, batch=NORM_MODULES_BATCHED[name]))
        if name == "Flatten":
            start = arg_expr(e, 0, "start_dim")
            return Val(
                obj=Obj("flatten", name, node=e, batch="yes" if start is None or self._const(start) == 1 else None)
            )
        if name.startswith(POOL_MODULE_PREFIXES) or name in UPSAMPLE_MODULES:
            return Val(obj=Obj("pool", name, node=e))
        if name in LOSS_MODULES_KIND:
            return Val(obj=Obj("loss", name, node=e, loss=LOSS_MODULES_KIND[name]))
        if name == "Sequential":
            if star:
                return UNKNOWN
            layers: list[Val] = list(pos)
            if (
                len(pos) == 1
                and pos[0].items is not None
                and all(it.items is not None and len(it.items) == 2 for it in pos[0].items)
            ):
                layers = [it.items[1] for it in pos[0].items]  # Sequential(OrderedDict([(name, layer), ...]))
            return Val(obj=Obj("seq", "Sequential", node=e, layers=tuple(layers)))
        return UNKNOWN

    def _method(
        self, fr: _Frame, e: cst.Call, recv: Val, m: str, pos: list[Val], kw: dict[str, Val], star: bool
    ) -> Val:
        o = recv.obj
        if o is not None and o.kind == "batch":
            if m in ("to", "cuda", "cpu"):
                return recv
            recv, o = Val(batched="yes"), None  # `for x in loader`: x is the batch tensor
        if o is not None:
            if m == "forward" and o.kind in (
                "inst",
                "self",
                "seq",
                "act",
                "affine",
                "pass",
                "norm",
                "flatten",
                "pool",
                "loss",
            ):
                return self._apply(fr, e, recv, pos, kw, star)
            if m in RETURNS_SELF_MODULE_METHODS:
                return recv
            if m in CONTAINER_MUTATOR_METHODS and isinstance(e.func, cst.Attribute):  # a method call: recv.m(...)
                self._invalidate(fr, e.func.value)
            return UNKNOWN
        base = m[:-1] if m.endswith("_") else m
        if m in ACTIVATION_METHODS:
            if base in SOFTMAX_FUNCTIONS_KIND:
                self._dim0(fr, e, arg_expr(e, 0, "dim"), recv, m)
                out = self._tagged(recv, SOFTMAX_FUNCTIONS_KIND[base], m, e)
            elif base == "sigmoid":
                out = self._tagged(recv, "sigmoid", m, e)
            else:
                out = self._tagged(recv, "act", m, e)
            if m.endswith("_") and isinstance(e.func, cst.Attribute) and isinstance(e.func.value, cst.Name):
                fr.env[e.func.value.value] = out
            return out
        if m in VALUE_PRESERVING_METHODS:
            return recv
        if m in ("long", "int"):
            return replace(recv, target="index", const=None)
        if m in ("float", "double", "half", "bfloat16"):
            return replace(recv, target=recv.target if recv.target in ("index", "onehot") else "float", const=None)
        if m in ("to", "type"):
            dtypes = [self._torch_name(a.value) for a in e.args]
            if any(d in INDEX_DTYPES for d in dtypes):
                return replace(recv, target="index")
            if any(d in FLOAT_DTYPES for d in dtypes):
                return replace(recv, target=recv.target if recv.target in ("index", "onehot") else "float")
            return recv
        if m == "size":
            if not e.args:
                return Val(const="shape")
            return Val(const="N") if self._const(arg_expr(e, 0, "dim")) == 0 else UNKNOWN
        if m in ("argmax",) or (m == "max" and (pos or "dim" in kw)):
            return self._prediction(fr, e, recv, m)
        if m in ("eq", "__eq__") and recv.tag == "pred":
            self._compared(fr, recv)
            return UNKNOWN
        if m == "log":
            return self._log(recv, e)
        if m == "exp":
            return self._exp(recv, e)
        if m in ("clamp", "clip", "clamp_"):
            return recv if recv.tag in ("softmax", "sigmoid", "log_softmax") else UNKNOWN
        if m in ("scatter_", "scatter", "fill_", "zero_"):
            return Val(target="float") if recv.target == "float" else UNKNOWN
        if m in (
            "view",
            "reshape",
            "flatten",
            "squeeze",
            "unsqueeze",
            "transpose",
            "permute",
            "view_as",
            "reshape_as",
            "t",
        ):
            return self._shape_method(fr, e, recv, m, args_offset=0)
        if m == "item":
            return UNKNOWN
        return UNKNOWN

    def _shape_method(self, fr: _Frame, e: cst.Call, v: Val, m: str, args_offset: int) -> Val:
        """Reshaping keeps what made the values (softmax stays softmax); whether dim 0 is
        still the batch and how wide the class dim is are re-derived."""
        if v.tag is None and v.k is None and v.batched is None and v.target is None:
            if m == "flatten" and self._const(arg_expr(e, args_offset, "start_dim")) == 1:
                return Val(batched="yes")
            if m in ("view", "reshape"):
                args = self._shape_args(e, args_offset)
                if len(args) == 2 and self._is_batch_size(fr, args[0]) and self._const(args[1]) == -1:
                    return Val(batched="yes")
            return UNKNOWN
        batched, k = None, None
        if m in ("view", "reshape"):
            args = self._shape_args(e, args_offset)
            if len(args) >= 2:
                if len(args) == 2 and self._is_batch_size(fr, args[0]) and self._const(args[1]) == -1:
                    batched = "yes"
                elif self._const(args[0]) == -1:
                    batched = v.batched
            if args and v.k is not None:
                last = args[-1]
                if self._const(last) == v.k:
                    k = v.k
                elif v.kdim == "last" and self._is_last_size(last):
                    k = v.k
            return replace(v, batched=batched, k=k, kdim="last" if k is not None else None, items=None, const=None)
        if m == "flatten":
            start = self._const(arg_expr(e, args_offset, "start_dim"))
            return replace(v, batched="yes" if start == 1 else None, k=None, kdim=None)
        if m in ("view_as", "reshape_as"):
            return replace(v, batched=None, k=None, kdim=None)
        if m == "squeeze":
            # (N, T, 1) -> (N, T): the class dim is now another dim (pointer/span heads)
            return replace(v, batched=None, k=None, kdim=None, head=None)
        if m == "unsqueeze":
            return replace(v, batched=None, kdim=None if v.kdim == "chan" else v.kdim)
        # transpose / permute / t: the class count is unchanged, its position is not
        return replace(v, batched=None, kdim=None)

    def _shape_args(self, e: cst.Call, offset: int) -> list[cst.BaseExpression]:
        pos = [a.value for a in positional_args(e)][offset:]
        if len(pos) == 1 and isinstance(pos[0], (cst.Tuple, cst.List)):
            return [el.value for el in pos[0].elements]
        return pos

    def _is_batch_size(self, fr: _Frame, e: cst.BaseExpression) -> bool:
        if isinstance(e, cst.Name):
            return self._lookup(fr, e.value).const == "N"
        if isinstance(e, cst.Call) and isinstance(e.func, cst.Attribute) and e.func.attr.value == "size":
            return self._const(arg_expr(e, 0, "dim")) == 0
        if isinstance(e, cst.Subscript) and isinstance(e.value, cst.Attribute) and e.value.attr.value == "shape":
            s = e.slice[0].slice if len(e.slice) == 1 else None
            return isinstance(s, cst.Index) and self._const(s.value) == 0
        return False

    def _is_last_size(self, e: cst.BaseExpression) -> bool:
        if isinstance(e, cst.Call) and isinstance(e.func, cst.Attribute) and e.func.attr.value == "size":
            return self._const(arg_expr(e, 0, "dim")) == -1
        if isinstance(e, cst.Subscript) and isinstance(e.value, cst.Attribute) and e.value.attr.value == "shape":
            s = e.slice[0].slice if len(e.slice) == 1 else None
            return isinstance(s, cst.Index) and self._const(s.value) == -1
        return False

    def _tagged(self, x: Val, tag: str, act: str, at: cst.CSTNode, keep_k: bool = True) -> Val:
        if not keep_k:
            return Val(tag=tag, act=act, at=at, batched=x.batched)
        return Val(tag=tag, act=act, at=at, k=x.k, kdim=x.kdim, head=x.head, batched=x.batched)

    def _prediction(self, fr: _Frame, e: cst.Call, x: Val, how: str) -> Val:
        """``x.argmax(1)`` -> the indices; ``torch.max(x, 1)`` -> (values, indices)."""
        if not fr.mute:
            fr.rec.preds.append(PredUse(x, e))
        pred = Val(tag="pred", at=e)
        return pred if how == "argmax" else Val(items=(UNKNOWN, pred))

    def _metric_call(self, fr: _Frame, name: str, pos: list[Val], kw: dict[str, Val]) -> None:
        """Predictions handed to an accuracy-style metric are single-label predictions."""
        low = name.lower()
        tokens = set(low.replace(".", "_").split("_"))
        if "accuracy" in low or tokens & {"acc", "f1", "confusion", "precision", "recall", "top1"}:
            self._compared(fr, *pos, *kw.values())

    def _compared(self, fr: _Frame, *vals: Val) -> None:
        for v in vals:
            if v.tag == "pred" and v.at is not None and not fr.mute:
                fr.rec.compared.add(id(v.at))

    def _log(self, x: Val, e: cst.Call) -> Val:
        if x.tag == "softmax":
            return replace(x, tag="log_softmax", act="log(softmax)", model=None)
        return UNKNOWN

    def _exp(self, x: Val, e: cst.Call) -> Val:
        if x.tag == "log_softmax":
            return replace(x, tag="softmax", act="exp(log_softmax)", at=e, model=None)
        return UNKNOWN

    def _dim0(self, fr: _Frame, e: cst.Call, dim: cst.BaseExpression | None, x: Val, display: str) -> None:
        if fr.mute or dim is None or self._const(dim) != 0:
            return
        fr.rec.dims.append(DimUse(e, x, fr.cls if fr.forward else None, display))

    def _loss(
        self, fr: _Frame, e: cst.Call, kind: str, display: str, pos: list[Val], kw: dict[str, Val], ctor: Any = None
    ) -> None:
        if fr.mute:
            return
        inp = arg_expr(e, 0, "input")
        tgt = arg_expr(e, 1, "target")
        if inp is None:
            return
        inp_val = kw["input"] if "input" in kw else (pos[0] if pos else UNKNOWN)
        tgt_val = kw["target"] if "target" in kw else (pos[1] if len(pos) > 1 else UNKNOWN)
        fr.rec.losses.append(LossUse(kind, display, e, inp, inp_val, tgt, tgt_val, ctor))

    def _apply(self, fr: _Frame, e: cst.Call, callee: Val, pos: list[Val], kw: dict[str, Val], star: bool) -> Val:
        o = callee.obj
        if o is None:
            return UNKNOWN
        if o.kind == "class":
            return Val(obj=Obj("inst", o.name)) if o.name in self.ctx.class_by_name else UNKNOWN
        if o.kind == "func":
            return self._call_function(fr, e, o, pos, kw, star)
        if o.kind == "loss":
            if not star and o.loss is not None:  # a loss Obj always names its kind
                self._loss(fr, e, o.loss, o.name, pos, kw, o.node)
            return UNKNOWN
        if star:
            return UNKNOWN
        x = self._first(pos, kw)
        if x.obj is not None and x.obj.kind == "batch":
            x = Val(batched="yes")
        return self._apply_layer(fr, o, x, e, in_seq=False)

    def _apply_layer(self, fr: _Frame, o: Obj, x: Val, call: cst.Call, in_seq: bool) -> Val:
        at = o.node if in_seq else call
        if o.kind == "act":
            if o.dim0 and not fr.mute:
                fr.rec.dims.append(DimUse(o.node, x, fr.cls if fr.forward else None, o.name))
            if o.name == "GLU":
                return Val(tag=o.tag, act=o.name, at=at, batched=x.batched)
            return Val(tag=o.tag, act=o.name, at=at, k=x.k, kdim=x.kdim, head=x.head, batched=x.batched)
        if o.kind == "affine":
            return Val(tag="logits", act=o.name, at=at, k=o.k, kdim=o.kdim, head=o.node, batched=x.batched)
        if o.kind == "pass":
            return x
        if o.kind == "norm":
            return Val(k=x.k, kdim=x.kdim, head=x.head, batched=o.batch or x.batched)
        if o.kind == "flatten":
            # flattening keeps what made the values: conv logits stay logits
            return Val(tag=x.tag, act=x.act, at=x.at, model=x.model, batched=o.batch)
        if o.kind == "pool":
            # pooling and upsampling keep logits logits (and the channel count)
            if x.kdim == "chan":
                return Val(tag=x.tag, act=x.act, at=x.at, k=x.k, kdim="chan", head=x.head, batched=x.batched)
            return Val(tag=x.tag, act=x.act, at=x.at, batched=x.batched)
        if o.kind == "seq":
            v = x
            if v.batched == "maybe" and not fr.forward:
                v = replace(v, batched="yes")  # a Sequential model run on an (N, F) tensor
            for layer in o.layers:
                if layer.obj is None or layer.obj.kind in ("loss", "class", "func", "loader", "batch"):
                    v = UNKNOWN
                else:
                    v = self._apply_layer(fr, layer.obj, v, call, in_seq=layer.obj.kind != "inst")
            return replace(v, model="nn.Sequential") if v.tag is not None else v
        if o.kind in ("inst", "self"):
            return self._call_model(fr, o.name, x)
        return UNKNOWN

    def _call_model(self, fr: _Frame, cls: str, x: Val) -> Val:
        if not self._is_module(cls):
            return UNKNOWN
        res = self._forward_result(cls)
        if not fr.mute:
            if x.batched in ("yes", "maybe"):
                fr.rec.batched_calls.add(cls)
            elif x.batched == "input" and fr.forward and fr.cls is not None:
                fr.rec.edges.add((fr.cls, cls))
        if res is None:
            return UNKNOWN
        return self._as_output(res.ret, x, cls)

    def _as_output(self, r: Val, x: Val, cls: str) -> Val:
        if r.items is not None:
            return Val(items=tuple(self._as_output(i, x, cls) for i in r.items))
        if r.obj is not None:
            return UNKNOWN
        batched = x.batched if r.batched == "input" else r.batched
        if batched == "maybe":
            batched = "yes"
        return replace(r, batched=batched, model=cls if r.tag is not None else None)

    def _call_function(self, fr: _Frame, e: cst.Call, o: Obj, pos: list[Val], kw: dict[str, Val], star: bool) -> Val:
        fn = o.node
        if not isinstance(fn, cst.FunctionDef):
            return UNKNOWN
        if not fr.mute:
            args: dict[str, Val] = {}
            params = positional_params(fn)
            if star:
                args = {p.name.value: UNKNOWN for p in params}
            else:
                for p, v in zip(params, pos):
                    args[p.name.value] = v
                for name, v in kw.items():
                    args[name] = v
            fr.rec.callsites.append((fn, args))
        if fn.name.value in self.top_funcs and self.top_funcs[fn.name.value] is fn:
            return self._func_result(fn, ()).ret
        return UNKNOWN
