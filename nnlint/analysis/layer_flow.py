"""Layer chains through a method: which layer's output goes straight into which layer."""

from __future__ import annotations

import libcst as cst

from nnlint.analysis.structure import Attr, Op, Structure
from nnlint.analysis.syntax import arg, is_self_attr, names_assigned, names_read, positional, target_names
from nnlint.analysis.torch_kinds import CHAIN_KINDS, module_kind, short
from nnlint.contexts.source import (
    ClassInfo,
    SourceContext,
    child_nodes,
    normalize_torch_name,
)
from nnlint.vocab import ACTIVATION_METHODS_KIND, ACTIVATION_QUALNAMES_KIND, DROPOUT_QUALNAMES

_META_ATTRS = {"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad", "size", "dim", "numel"}


class LayerFlow:
    """Abstract interpretation of one method body over 'which op produced this value'.
    Straight-line code is exact; after an if/else a name keeps its producer only when
    both branches agree; names bound in loops, try blocks and nested defs become
    unknown. A producer read more than once never forms a direct edge."""

    def __init__(
        self, ctx: SourceContext, st: Structure, cls: ClassInfo, attrs: dict[str, Attr], self_name: str
    ) -> None:
        self.ctx = ctx
        self.st = st
        self.cls = cls
        self.attrs = attrs
        self.self_name = self_name
        self.ops: list[Op] = []
        self.uses: dict[int, int] = {}
        self.pred: dict[int, Op] = {}

    # driver
    def run(self, fn: cst.FunctionDef) -> None:
        self.block(fn.body, {})

    def paths(self) -> list[list[Op]]:
        succ: dict[int, Op] = {}
        has_pred: set[int] = set()
        for op in self.ops:
            p = self.pred.get(id(op))
            if p is not None and self.uses.get(id(p), 0) == 1:
                succ[id(p)] = op
                has_pred.add(id(op))
        out = []
        for op in self.ops:
            if id(op) in has_pred:
                continue
            path: list[Op] = []
            cur: Op | None = op
            seen: set[int] = set()
            while cur is not None and id(cur) not in seen:
                seen.add(id(cur))
                path.extend(cur.expanded())
                cur = succ.get(id(cur))
            out.append(path)
        return out

    def use(self, v: Op | None) -> None:
        if v is not None:
            self.uses[id(v)] = self.uses.get(id(v), 0) + 1

    # statements
    def block(self, body: cst.BaseSuite, env: dict) -> None:
        for s in body.body:
            self.stmt(s, env)

    def stmt(self, s, env: dict) -> None:
        if isinstance(s, cst.SimpleStatementLine):
            for small in s.body:
                self.small(small, env)
        elif isinstance(s, cst.If):
            self.consume(s.test, env)
            e1 = dict(env)
            self.block(s.body, e1)
            e2 = dict(env)
            if isinstance(s.orelse, cst.If):
                self.stmt(s.orelse, e2)
            elif s.orelse is not None:
                self.block(s.orelse.body, e2)
            for k in set(e1) | set(e2):
                env[k] = e1.get(k) if e1.get(k) is e2.get(k) else None
        elif isinstance(s, (cst.For, cst.While)):
            if isinstance(s, cst.For):
                self.consume(s.iter, env)
            else:
                self.consume(s.test, env)
            bound = names_assigned(s)
            for n in bound:
                env[n] = None
            inner = dict(env)
            self.block(s.body, inner)
            if s.orelse is not None:
                self.block(s.orelse.body, inner)
            for n in bound:
                env[n] = None
        elif isinstance(s, cst.With):
            for item in s.items:
                self.consume(item.item, env)
            for n in names_assigned(s):
                env[n] = None
            self.block(s.body, env)
        elif isinstance(s, cst.Try):
            bound = names_assigned(s)
            for part in [
                s.body,
                *(h.body for h in s.handlers),
                *(x.body for x in (s.orelse, s.finalbody) if x is not None),
            ]:
                inner = dict(env)
                for n in bound:
                    inner[n] = None
                self.block(part, inner)
            for n in bound:
                env[n] = None
        else:
            # nested defs, match, anything else: every name it mentions is a use
            for name in names_read(s):
                self.use(env.get(name))
            for n in names_assigned(s):
                env[n] = None

    def small(self, s: cst.BaseSmallStatement, env: dict) -> None:
        if isinstance(s, cst.Assign):
            v = self.eval(s.value, env)
            if len(s.targets) == 1 and isinstance(s.targets[0].target, cst.Name):
                env[s.targets[0].target.value] = v
                return
            self.use(v)
            for t in s.targets:
                self._scan_target(t.target, env)
                for n in target_names(t.target):
                    env[n] = None
        elif isinstance(s, cst.AnnAssign):
            if s.value is None:
                return
            v = self.eval(s.value, env)
            if isinstance(s.target, cst.Name):
                env[s.target.value] = v
            else:
                self.use(v)
                self._scan_target(s.target, env)
        elif isinstance(s, cst.AugAssign):
            if isinstance(s.target, cst.Name):
                self.use(env.get(s.target.value))
                self.consume(s.value, env)
                env[s.target.value] = None
            else:
                self._scan_target(s.target, env)
                self.consume(s.value, env)
        elif isinstance(s, cst.Expr):
            self.eval(s.value, env)  # result discarded: not a use
        elif isinstance(s, cst.Return):
            if s.value is not None:
                self.consume(s.value, env)
        elif isinstance(s, cst.Del):
            for n in target_names(s.target):
                env[n] = None
        else:
            for child in child_nodes(s):
                self._scan(child, env)

    def _scan_target(self, t: cst.CSTNode, env: dict) -> None:
        if isinstance(t, (cst.Attribute,)):
            self.consume(t.value, env)
        elif isinstance(t, cst.Subscript):
            self.consume(t.value, env)
            for el in t.slice:
                self._scan(el, env)
        elif isinstance(t, (cst.Tuple, cst.List)):
            for elem in t.elements:
                self._scan_target(elem.value, env)
        elif isinstance(t, cst.StarredElement):
            self._scan_target(t.value, env)

    # expressions
    def consume(self, e: cst.BaseExpression, env: dict) -> None:
        self.use(self.eval(e, env))

    def _scan(self, n: cst.CSTNode, env: dict) -> None:
        if isinstance(n, cst.BaseExpression):
            self.consume(n, env)
        elif isinstance(n, cst.Arg):
            self.consume(n.value, env)
        else:
            for c in child_nodes(n):
                self._scan(c, env)

    def eval(self, e: cst.BaseExpression, env: dict) -> Op | None:
        if isinstance(e, cst.Name):
            return env.get(e.value)
        if isinstance(e, cst.Call):
            return self._call(e, env)
        if isinstance(e, cst.Attribute):
            if e.attr.value in _META_ATTRS:
                return None
            self.consume(e.value, env)
            return None
        if isinstance(e, cst.Lambda):
            for name in names_read(e):
                self.use(env.get(name))
            return None
        if isinstance(e, cst.NamedExpr):
            self.consume(e.value, env)
            for n in target_names(e.target):
                env[n] = None
            return None
        if isinstance(e, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            inner = dict(env)  # comprehension variables shadow the method's names
            comp: cst.CompFor | None = e.for_in
            while comp is not None:
                self.consume(comp.iter, inner)
                for n in target_names(comp.target):
                    inner[n] = None
                for cond in comp.ifs:
                    self.consume(cond.test, inner)
                comp = comp.inner_for_in
            parts = [e.key, e.value] if isinstance(e, cst.DictComp) else [e.elt]
            for part in parts:
                self.consume(part, inner)
            return None
        for c in child_nodes(e):
            self._scan(c, env)
        return None

    def _call(self, call: cst.Call, env: dict) -> Op | None:
        classified = self._classify(call)
        if classified is None:
            func = call.func
            if isinstance(func, cst.Attribute) and func.attr.value in _META_ATTRS:
                pass  # x.size(), x.dim(): metadata, not a use of the value
            else:
                self.consume(func, env) if not isinstance(func, cst.Name) else self.use(env.get(func.value))
            for a in call.args:
                self.consume(a.value, env)
            return None
        op, inp = classified
        v = self.eval(inp, env) if inp is not None else None
        for a in call.args:
            if a.value is not inp:
                self.consume(a.value, env)
        if v is not None:
            self.use(v)
            self.pred[id(op)] = v
        self.ops.append(op)
        return op

    def _classify(self, call: cst.Call) -> tuple[Op, cst.BaseExpression | None] | None:
        func = call.func
        pos = positional(call)
        first = pos[0] if pos else None
        name = is_self_attr(func, self.self_name)
        if name is not None:
            if name in self.cls.methods:
                return None
            a = self.attrs.get(name)
            if a is None or a.ambiguous or a.ctor is None:
                return None
            if a.kind in CHAIN_KINDS:
                return Op(a.kind, a.act, a.ctor, name, ctor=a.ctor, attr=name, site=call), first
            if a.kind == "sequential" and a.elements is not None:
                return Op("seq", None, a.ctor, name, ctor=a.ctor, attr=name, site=call, elements=a.elements), first
            return None
        if isinstance(func, cst.Call):  # nn.ReLU()(x)
            mk = module_kind(self.ctx.qualname(func.func))
            if mk is not None and mk[0] in CHAIN_KINDS:
                return Op(mk[0], mk[1], func, short(self.ctx.qualname(func.func)), ctor=func, site=call), first
            return None
        q = self.ctx.qualname(func)
        if q is not None:
            q = normalize_torch_name(q)
            if q in ACTIVATION_QUALNAMES_KIND:
                return Op("act", ACTIVATION_QUALNAMES_KIND[q], call, q, site=call), first
            if q in DROPOUT_QUALNAMES:
                tr = arg(call, 2, "training" if q.startswith("torch.nn.") else "train")
                if isinstance(tr, cst.Name) and tr.value == "False":
                    return None
                return Op("dropout", None, call, q, site=call), first
        if isinstance(func, cst.Attribute) and func.attr.value in ACTIVATION_METHODS_KIND and not call.args:
            if self.ctx.qualname(func.value) in ("torch", "torch.nn.functional"):
                return None
            return Op(
                "act", ACTIVATION_METHODS_KIND[func.attr.value], call, f".{func.attr.value}()", site=call
            ), func.value
        return None
