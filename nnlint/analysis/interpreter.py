"""The value-flow interpreter: walks each function body in statement order over ``Val``s and records what the rules read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Literal

import libcst as cst

from nnlint.analysis.flow_classes import ClassModel
from nnlint.analysis.flow_records import EMPTY, DimUse, Flow, Records, Result
from nnlint.analysis.interpreter_base import Frame
from nnlint.analysis.syntax import (
    int_value,
    is_bare_slice,
    is_number_literal,
    keyword_arg,
    positional_params,
)
from nnlint.analysis.torch_semantics import TorchSemantics
from nnlint.analysis.values import UNKNOWN, Obj, Val, merge, merge_env
from nnlint.contexts.source import SourceContext, dotted, iter_nodes, normalize_torch_name
from nnlint.vocab import (
    DATALOADER_CLASSES,
)


class Interpreter(ClassModel, TorchSemantics):
    """Walks every function of the file once in statement order (loops twice, branches merged) and
    collects the ``Flow`` the rules read."""

    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.mod: Frame | None = None
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
            frame = Frame()
            self.mod = frame
            self._block(frame, self.ctx.module.body)
            self.mod_result = Result(UNKNOWN, frame.rec, frame.nested)
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
            frame = Frame(cls=cls, forward=True)
            params = positional_params(fn)
            for i, p in enumerate(params):
                if i == 0:
                    frame.self_name = p.name.value
                    frame.env[p.name.value] = Val(obj=Obj("self", cls))
                elif i == 1:
                    frame.env[p.name.value] = Val(batched="input")
                else:
                    frame.env[p.name.value] = UNKNOWN
            self._bind_other_params(frame, fn)
            res = self._walk(frame, fn)
        finally:
            self.in_progress.discard(("fwd", cls))
        self.fwd_memo[cls] = res
        return res

    def _method_result(self, cls: str, fn: cst.FunctionDef) -> Result:
        key = (cls, id(fn))
        if key not in self.method_memo:
            frame = Frame(cls=cls)
            params = positional_params(fn)
            is_static = any(dotted(d.decorator) in ("staticmethod", "classmethod") for d in fn.decorators)
            for i, p in enumerate(params):
                name = p.name.value
                if i == 0 and not is_static:
                    frame.self_name = name
                    frame.env[name] = Val(obj=Obj("self", cls))
                elif name == "batch" and fn.name.value.endswith("_step"):
                    frame.env[name] = Val(obj=Obj("batch"))  # Lightning: a collated batch
                else:
                    frame.env[name] = self._model_param(fn, name) or UNKNOWN
            self._bind_other_params(frame, fn)
            self.method_memo[key] = self._walk(frame, fn)
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
        frame = Frame(closure=closure)
        bound = dict(bkey)
        for p in positional_params(fn):
            name = p.name.value
            if name in bound:
                frame.env[name] = bound[name]
            elif fn not in self.has_sites and (mp := self._model_param(fn, name)) is not None:
                frame.env[name] = mp
            else:
                frame.env[name] = UNKNOWN
        self._bind_other_params(frame, fn)
        return self._walk(frame, fn)

    def _bind_other_params(self, frame: Frame, fn: cst.FunctionDef) -> None:
        p = fn.params
        for param in (*p.kwonly_params,):
            frame.env[param.name.value] = UNKNOWN
        for star in (p.star_arg, p.star_kwarg):
            if isinstance(star, cst.Param):
                frame.env[star.name.value] = UNKNOWN

    def _walk(self, frame: Frame, fn: cst.FunctionDef) -> Result:
        self._block(frame, fn.body)
        if frame.generator:
            return Result(UNKNOWN, frame.rec, [(f, merge_env(snap, frame.env)) for f, snap in frame.nested])
        ret = None
        for v in frame.returns:
            ret = merge(ret, v) if ret is not None else v
        nested = [(f, merge_env(snap, frame.env)) for f, snap in frame.nested]
        return Result(ret or UNKNOWN, frame.rec, nested)

    # statements -------------------------------------------------------------------
    def _block(self, frame: Frame, body: Any) -> bool:
        """Walk statements; True when the block always leaves (return/raise/break/continue)."""
        if isinstance(body, (cst.IndentedBlock, cst.Module)):
            stmts = body.body
        elif isinstance(body, cst.SimpleStatementSuite):
            return self._smalls(frame, body.body)
        else:
            stmts = body
        for st in stmts:
            if self._stmt(frame, st):
                return True
        return False

    def _smalls(self, frame: Frame, smalls: Iterable[cst.BaseSmallStatement]) -> bool:
        for s in smalls:
            if self._small(frame, s):
                return True
        return False

    def _stmt(self, frame: Frame, st: cst.CSTNode) -> bool:
        if isinstance(st, cst.SimpleStatementLine):
            return self._smalls(frame, st.body)
        if isinstance(st, cst.If):
            return self._if(frame, st)
        if isinstance(st, (cst.For, cst.While)):
            self._loop(frame, st)
            return False
        if isinstance(st, (cst.Try, cst.TryStar)):
            return self._try(frame, st)
        if isinstance(st, cst.With):
            for item in st.items:
                self._eval(frame, item.item)
                if item.asname is not None:
                    self._bind(frame, item.asname.name, UNKNOWN)
            return self._block(frame, st.body)
        if isinstance(st, cst.FunctionDef):
            frame.env[st.name.value] = Val(obj=Obj("func", st.name.value, node=st))
            if frame is not self.mod and not frame.mute:
                frame.nested.append((st, dict(frame.env)))
            return False
        if isinstance(st, cst.ClassDef):
            frame.env[st.name.value] = Val(obj=Obj("class", st.name.value))
            return False
        if isinstance(st, cst.Match):
            self._eval(frame, st.subject)
            pre = frame.env
            outs = [pre]
            for case in st.cases:
                frame.env = dict(pre)
                if not self._block(frame, case.body):
                    outs.append(frame.env)
            frame.env = merge_env(*outs)
            return False
        return False

    def _if(self, frame: Frame, node: cst.If) -> bool:
        self._eval(frame, node.test)
        pre = frame.env
        frame.env = dict(pre)
        t1 = self._block(frame, node.body)
        e1 = frame.env
        frame.env = dict(pre)
        if node.orelse is None:
            t2 = False
        elif isinstance(node.orelse, cst.If):
            t2 = self._if(frame, node.orelse)
        else:
            t2 = self._block(frame, node.orelse.body)
        e2 = frame.env
        live = [e for e, t in ((e1, t1), (e2, t2)) if not t]
        frame.env = merge_env(*live) if live else merge_env(e1, e2)
        return not live

    def _loop(self, frame: Frame, node: cst.For | cst.While) -> None:
        if isinstance(node, cst.For):
            it = self._eval(frame, node.iter)
            item = self._iter_item(frame, node.iter, it)
        else:
            self._eval(frame, node.test)
        pre = frame.env
        passes = 1 if frame.mute else 2
        for i in range(passes):
            if i < passes - 1:
                frame.mute += 1
            frame.env = dict(frame.env)
            if isinstance(node, cst.For):
                self._bind(frame, node.target, item)
            self._block(frame, node.body)
            if i < passes - 1:
                frame.mute -= 1
            frame.env = merge_env(pre, frame.env)
        if node.orelse is not None:
            self._block(frame, node.orelse.body)

    def _iter_item(self, frame: Frame, expr: cst.BaseExpression, it: Val) -> Val:
        """What one iteration of ``for ... in expr`` binds: a batch for a DataLoader."""
        if isinstance(expr, cst.Call) and dotted(expr.func) in ("enumerate", "tqdm", "tqdm.tqdm", "iter") and expr.args:
            inner = expr.args[0].value
            item = self._iter_item(frame, inner, self._peek(frame, inner))
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

    def _peek(self, frame: Frame, expr: cst.BaseExpression) -> Val:
        if isinstance(expr, cst.Name):
            return self._lookup(frame, expr.value)
        return UNKNOWN

    def _try(self, frame: Frame, node: cst.Try | cst.TryStar) -> bool:
        pre = frame.env
        frame.env = dict(pre)
        t = self._block(frame, node.body)
        after = frame.env
        if not t and node.orelse is not None:
            t = self._block(frame, node.orelse.body)
        outs = [] if t else [frame.env]
        for h in node.handlers:
            frame.env = merge_env(pre, after)
            if h.name is not None:
                self._bind(frame, h.name.name, UNKNOWN)
            if not self._block(frame, h.body):
                outs.append(frame.env)
        frame.env = merge_env(*outs) if outs else merge_env(pre, after)
        if node.finalbody is not None:
            self._block(frame, node.finalbody.body)
        return not outs

    def _small(self, frame: Frame, s: cst.BaseSmallStatement) -> bool:
        if isinstance(s, cst.Assign):
            v = self._eval(frame, s.value)
            for t in s.targets:
                self._bind(frame, t.target, v)
        elif isinstance(s, cst.AnnAssign):
            if s.value is not None:
                self._bind(frame, s.target, self._eval(frame, s.value))
        elif isinstance(s, cst.AugAssign):
            self._eval(frame, s.value)
            self._bind(frame, s.target, UNKNOWN)
        elif isinstance(s, cst.Expr):
            self._eval(frame, s.value)
        elif isinstance(s, cst.Return):
            v = self._eval(frame, s.value) if s.value is not None else UNKNOWN
            if not frame.mute:
                frame.returns.append(v)
            return True
        elif isinstance(s, cst.Raise):
            return True
        elif isinstance(s, (cst.Break, cst.Continue)):
            return True
        elif isinstance(s, cst.Assert):
            self._eval(frame, s.test)
        elif isinstance(s, cst.Del):
            for deleted in iter_nodes(s):
                if isinstance(deleted, cst.Name):
                    frame.env[deleted.value] = UNKNOWN
        return False

    def _bind(self, frame: Frame, target: cst.BaseExpression, v: Val) -> None:
        if isinstance(target, cst.Name):
            frame.env[target.value] = v
        elif isinstance(target, (cst.Tuple, cst.List)):
            elems = target.elements
            starred = any(isinstance(e, cst.StarredElement) for e in elems)
            for i, e in enumerate(elems):
                if isinstance(e, cst.StarredElement):
                    self._bind(frame, e.value, UNKNOWN)
                elif v.items is not None and not starred and len(v.items) == len(elems):
                    self._bind(frame, e.value, v.items[i])
                elif v.obj is not None and v.obj.kind == "batch":
                    self._bind(frame, e.value, Val(batched="yes"))
                elif v.const == "shape" and i == 0 and not starred:
                    self._bind(frame, e.value, Val(const="N"))
                else:
                    self._bind(frame, e.value, UNKNOWN)
        elif isinstance(target, cst.Attribute):
            base = target.value
            if isinstance(base, cst.Name) and base.value == frame.self_name:
                frame.env["self." + target.attr.value] = v
            else:
                self._invalidate(frame, base)
        elif isinstance(target, cst.Subscript):
            self._invalidate(frame, target.value)
        elif isinstance(target, cst.StarredElement):
            self._bind(frame, target.value, UNKNOWN)

    def _invalidate(self, frame: Frame, base: cst.BaseExpression) -> None:
        """``model.fc = ...`` / ``model[-1] = ...``: the model is no longer what we knew."""
        if isinstance(base, cst.Name):
            if (
                base.value in frame.env
                or base.value in frame.closure
                or (self.mod is not None and base.value in self.mod.env)
            ):
                frame.env[base.value] = UNKNOWN
        elif (
            isinstance(base, cst.Attribute) and isinstance(base.value, cst.Name) and base.value.value == frame.self_name
        ):
            frame.env["self." + base.attr.value] = UNKNOWN

    # expressions ------------------------------------------------------------------
    def _lookup(self, frame: Frame, name: str) -> Val:
        if name in frame.env:
            return frame.env[name]
        if name in frame.closure:
            return frame.closure[name]
        if self.mod is not None and frame is not self.mod and name in self.mod.env:
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

    def _eval(self, frame: Frame, e: cst.BaseExpression | None) -> Val:
        if e is None:
            return UNKNOWN
        if isinstance(e, cst.Name):
            return self._lookup(frame, e.value)
        if isinstance(e, cst.Attribute):
            return self._attribute(frame, e)
        if isinstance(e, cst.Call):
            return self._call(frame, e)
        if isinstance(e, cst.Subscript):
            return self._subscript(frame, e)
        if isinstance(e, cst.Integer):
            return Val(const=int_value(e))
        if isinstance(e, cst.UnaryOperation):
            v = self._eval(frame, e.expression)
            if isinstance(e.operator, cst.Minus) and isinstance(v.const, int):
                return Val(const=-v.const)
            return UNKNOWN
        if isinstance(e, cst.BinaryOperation):
            return self._binop(frame, e)
        if isinstance(e, (cst.Tuple, cst.List)):
            vals = [self._eval(frame, el.value) for el in e.elements]
            if any(isinstance(el, cst.StarredElement) for el in e.elements):
                return UNKNOWN
            return Val(items=tuple(vals))
        if isinstance(e, cst.IfExp):
            self._eval(frame, e.test)
            return merge(self._eval(frame, e.body), self._eval(frame, e.orelse))
        if isinstance(e, cst.NamedExpr):
            v = self._eval(frame, e.value)
            self._bind(frame, e.target, v)
            return v
        if isinstance(e, cst.Dict):
            for el in e.elements:
                if isinstance(el, cst.DictElement):
                    self._eval(frame, el.key)
                self._eval(frame, el.value)
            return UNKNOWN
        if isinstance(e, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            self._comprehension(frame, e)
            return UNKNOWN
        if isinstance(e, cst.Comparison):
            vals = [self._eval(frame, e.left)]
            for c in e.comparisons:
                vals.append(self._eval(frame, c.comparator))
            if any(isinstance(c.operator, (cst.Equal, cst.NotEqual)) for c in e.comparisons):
                self._compared(frame, *vals)
            return UNKNOWN
        if isinstance(e, cst.BooleanOperation):
            self._eval(frame, e.left)
            self._eval(frame, e.right)
            return UNKNOWN
        if isinstance(e, cst.Await):
            self._eval(frame, e.expression)
            return UNKNOWN
        if isinstance(e, cst.Yield):
            frame.generator = True
            if isinstance(e.value, cst.BaseExpression):
                self._eval(frame, e.value)
            return UNKNOWN
        return UNKNOWN

    def _comprehension(self, frame: Frame, e: Any) -> None:
        saved = frame.env
        frame.env = dict(saved)
        frame.mute += 1  # values bound per element are not followed; do not report inside
        try:
            comp = e.for_in
            while comp is not None:
                self._eval(frame, comp.iter)
                self._bind(frame, comp.target, UNKNOWN)
                for cond in comp.ifs:
                    self._eval(frame, cond.test)
                comp = comp.inner_for_in
            if isinstance(e, cst.DictComp):
                self._eval(frame, e.key)
                self._eval(frame, e.value)
            else:
                self._eval(frame, e.elt)
        finally:
            frame.mute -= 1
            frame.env = saved

    def _member(self, frame: Frame, e: cst.Attribute, recv: Val) -> Val:
        """``self.x`` / ``model.x`` on a class of the file."""
        attr = e.attr.value
        if isinstance(e.value, cst.Name) and e.value.value == frame.self_name:
            key = "self." + attr
            if key in frame.env:
                return frame.env[key]
        if attr == "module":  # DataParallel(model).module
            return recv
        if recv.obj is None:  # callers pass an instance of a class of the file
            return UNKNOWN
        return self._attrs(recv.obj.name).get(attr, UNKNOWN)

    def _attribute(self, frame: Frame, e: cst.Attribute) -> Val:
        attr = e.attr.value
        if self._torch_name(e) is not None:
            return UNKNOWN
        v = self._eval(frame, e.value)
        if v.obj is not None:
            if v.obj.kind in ("inst", "self"):
                return self._member(frame, e, v)
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

    def _subscript(self, frame: Frame, e: cst.Subscript) -> Val:
        v = self._eval(frame, e.value)
        elems = e.slice
        for el in elems:
            s = el.slice
            if isinstance(s, cst.Index):
                self._eval(frame, s.value)
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

    def _binop(self, frame: Frame, e: cst.BinaryOperation) -> Val:
        left = self._eval(frame, e.left)
        right = self._eval(frame, e.right)
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
    def _args(self, frame: Frame, e: cst.Call) -> tuple[list[Val], dict[str, Val], bool]:
        pos: list[Val] = []
        kw: dict[str, Val] = {}
        star = False
        for a in e.args:
            v = self._eval(frame, a.value)
            if a.star:
                star = True
            elif a.keyword is not None:
                kw[a.keyword.value] = v
            else:
                pos.append(v)
        return pos, kw, star

    def _call(self, frame: Frame, e: cst.Call) -> Val:
        q = self._torch_name(e.func)
        if q is not None:
            pos, kw, star = self._args(frame, e)
            return self._torch_call(frame, e, q, pos, kw, star)
        if isinstance(e.func, cst.Attribute):
            recv = self._eval(frame, e.func.value)
            if recv.obj is not None and recv.obj.kind in ("self", "inst"):
                member = self._member(frame, e.func, recv)
                if member.obj is not None:  # self.fc(x), model.head(x), self.criterion(out, y)
                    pos, kw, star = self._args(frame, e)
                    return self._apply(frame, e, member, pos, kw, star)
            pos, kw, star = self._args(frame, e)
            self._metric_call(frame, e.func.attr.value, pos, kw)
            head = (dotted(e.func.value) or "").split(".")[0]
            if head in self.ctx.aliases and head not in frame.env and head not in frame.closure:
                return UNKNOWN  # a library function (torch_geometric.utils.softmax), not a tensor method
            return self._method(frame, e, recv, e.func.attr.value, pos, kw, star)
        callee = self._eval(frame, e.func)
        pos, kw, star = self._args(frame, e)
        self._metric_call(frame, (dotted(e.func) or "").split(".")[-1], pos, kw)
        if (dotted(e.func) or "").split(".")[-1] == "OrderedDict" and len(pos) == 1:
            return pos[0]
        return self._apply(frame, e, callee, pos, kw, star)

    def _first(self, pos: list[Val], kw: dict[str, Val], name: str = "input") -> Val:
        if pos:
            return pos[0]
        return kw.get(name, UNKNOWN)

    def _apply(self, frame: Frame, e: cst.Call, callee: Val, pos: list[Val], kw: dict[str, Val], star: bool) -> Val:
        o = callee.obj
        if o is None:
            return UNKNOWN
        if o.kind == "class":
            return Val(obj=Obj("inst", o.name)) if o.name in self.ctx.class_by_name else UNKNOWN
        if o.kind == "func":
            return self._call_function(frame, e, o, pos, kw, star)
        if o.kind == "loss":
            if not star and o.loss is not None:  # a loss Obj always names its kind
                self._loss(frame, e, o.loss, o.name, pos, kw, o.node)
            return UNKNOWN
        if star:
            return UNKNOWN
        x = self._first(pos, kw)
        if x.obj is not None and x.obj.kind == "batch":
            x = Val(batched="yes")
        return self._apply_layer(frame, o, x, e, in_seq=False)

    def _apply_layer(self, frame: Frame, o: Obj, x: Val, call: cst.Call, in_seq: bool) -> Val:
        at = o.node if in_seq else call
        if o.kind == "act":
            if o.dim0 and not frame.mute:
                frame.rec.dims.append(DimUse(o.node, x, frame.cls if frame.forward else None, o.name))
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
            if v.batched == "maybe" and not frame.forward:
                v = replace(v, batched="yes")  # a Sequential model run on an (N, F) tensor
            for layer in o.layers:
                if layer.obj is None or layer.obj.kind in ("loss", "class", "func", "loader", "batch"):
                    v = UNKNOWN
                else:
                    v = self._apply_layer(frame, layer.obj, v, call, in_seq=layer.obj.kind != "inst")
            return replace(v, model="nn.Sequential") if v.tag is not None else v
        if o.kind in ("inst", "self"):
            return self._call_model(frame, o.name, x)
        return UNKNOWN

    def _call_model(self, frame: Frame, cls: str, x: Val) -> Val:
        if not self._is_module(cls):
            return UNKNOWN
        res = self._forward_result(cls)
        if not frame.mute:
            if x.batched in ("yes", "maybe"):
                frame.rec.batched_calls.add(cls)
            elif x.batched == "input" and frame.forward and frame.cls is not None:
                frame.rec.edges.add((frame.cls, cls))
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

    def _call_function(self, frame: Frame, e: cst.Call, o: Obj, pos: list[Val], kw: dict[str, Val], star: bool) -> Val:
        fn = o.node
        if not isinstance(fn, cst.FunctionDef):
            return UNKNOWN
        if not frame.mute:
            args: dict[str, Val] = {}
            params = positional_params(fn)
            if star:
                args = {p.name.value: UNKNOWN for p in params}
            else:
                for p, v in zip(params, pos):
                    args[p.name.value] = v
                for name, v in kw.items():
                    args[name] = v
            frame.rec.callsites.append((fn, args))
        if fn.name.value in self.top_funcs and self.top_funcs[fn.name.value] is fn:
            return self._func_result(fn, ()).ret
        return UNKNOWN
