"""Weight-init sites: which layer a ``<owner>.weight`` is, under which ``isinstance`` guards."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import libcst as cst

from nnlint.analysis.structure import Attr, Structure, structure
from nnlint.analysis.syntax import is_self_attr, number, positional, same_expr, self_name, string, walk
from nnlint.analysis.torch_kinds import AFFINE_KINDS, module_kind
from nnlint.contexts.source import (
    ClassInfo,
    FunctionInfo,
    SourceContext,
)


@dataclass
class Site:
    """A small statement inside a function, with the if-tests around it (innermost last,
    each with whether we are in its body (True) or its else branch (False)) and the
    enclosing for-loops."""

    stmt: cst.BaseSmallStatement
    guards: tuple[tuple[cst.BaseExpression, bool], ...]
    loops: tuple[cst.For, ...]


def walk_sites(body: cst.BaseSuite | cst.Module, guards=(), loops=()) -> Iterator[Site]:
    for s in body.body:
        if isinstance(s, cst.SimpleStatementLine):
            for small in s.body:
                yield Site(small, guards, loops)
        elif isinstance(s, cst.If):
            yield from _walk_if(s, guards, loops)
        elif isinstance(s, cst.For):
            yield from walk_sites(s.body, guards, loops + (s,))
            if s.orelse is not None:
                yield from walk_sites(s.orelse.body, guards, loops)
        elif isinstance(s, cst.While):
            yield from walk_sites(s.body, guards, loops)
        elif isinstance(s, cst.With):
            yield from walk_sites(s.body, guards, loops)
        elif isinstance(s, cst.Try):
            yield from walk_sites(s.body, guards, loops)
            for h in s.handlers:
                yield from walk_sites(h.body, guards, loops)
            for x in (s.orelse, s.finalbody):
                if x is not None:
                    yield from walk_sites(x.body, guards, loops)


def _walk_if(s: cst.If, guards, loops) -> Iterator[Site]:
    yield from walk_sites(s.body, guards + ((s.test, True),), loops)
    if isinstance(s.orelse, cst.If):
        yield from _walk_if(s.orelse, guards + ((s.test, False),), loops)
    elif s.orelse is not None:
        yield from walk_sites(s.orelse.body, guards + ((s.test, False),), loops)


WEIGHT_ATTR = re.compile(r"^weight(_[a-z]+(_l\d+)?(_reverse)?)?$")


def weight_owner(expr: cst.BaseExpression | None) -> cst.BaseExpression | None:
    """``owner`` for ``owner.weight`` or ``owner.weight.data``; None otherwise."""
    if isinstance(expr, cst.Attribute) and expr.attr.value == "data":
        expr = expr.value
    if isinstance(expr, cst.Attribute) and WEIGHT_ATTR.match(expr.attr.value):
        return expr.value
    return None


@dataclass
class Layers:
    """What an init target resolved to. ``kinds``: the set of layer kinds it may be
    ('custom:<Class>' for in-file classes, 'unknown' for anything unresolved);
    ``ctors``: the constructor calls of the concrete layers when they are known;
    ``generic``: one init statement covering every layer of those kinds (a loop
    over ``self.modules()`` or an ``apply`` function)."""

    kinds: set[str]
    ctors: list[cst.Call] = field(default_factory=list)
    generic: bool = False
    names: list[str] = field(default_factory=list)
    index: int | None = None  # Sequential element index used, when any


_NORM_WORDS = re.compile(r"norm|(^|[^a-z])(bn|ln|gn)([^a-z]|$)", re.I)


class Resolver:
    """Resolves the owner of ``owner.weight`` in an init statement to layer kinds."""

    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.st = structure(ctx)
        self._classes_by_def: dict[int, ClassInfo] | None = None

    def enclosing_class(self, func: FunctionInfo) -> ClassInfo | None:
        if func.cls is not None:
            return func.cls
        if self._classes_by_def is None:
            self._classes_by_def = {}
            for cls in self.ctx.classes:
                for m in cls.methods.values():
                    for d in walk(m, cst.FunctionDef, into_defs=True):
                        self._classes_by_def.setdefault(id(d), cls)
        return self._classes_by_def.get(id(func.node))

    def type_kinds(self, types: cst.BaseExpression) -> set[str]:
        elems = [e.value for e in types.elements] if isinstance(types, (cst.Tuple, cst.List)) else [types]
        out: set[str] = set()
        for t in elems:
            q = self.ctx.qualname(t)
            mk = module_kind(q)
            if mk is not None:
                out.add(mk[0])
            elif q in self.ctx.class_by_name:
                out.add(f"custom:{q}")
            else:
                out.add("unknown")
        return out

    def guard_kinds(self, owner: cst.BaseExpression, guards) -> set[str] | None:
        """Kinds an isinstance/class-name guard allows for ``owner``; None when no
        guard speaks about it."""
        for test, positive in reversed(guards):
            found = self._test_kinds(owner, test)
            if found is None:
                continue
            return found if positive else {"unknown"}  # else branch: only what it is not
        return None

    def _test_kinds(self, owner: cst.BaseExpression, test: cst.BaseExpression) -> set[str] | None:
        if isinstance(test, cst.BooleanOperation):
            left = self._test_kinds(owner, test.left)
            right = self._test_kinds(owner, test.right)
            if left is None and right is None:
                return None
            if isinstance(test.operator, cst.Or):
                return (left or {"unknown"}) | (right or {"unknown"})
            if left is None or right is None:
                return left if right is None else right
            return (left & right) or left
        if isinstance(test, cst.UnaryOperation):
            return None if self._test_kinds(owner, test.expression) is None else {"unknown"}
        if isinstance(test, cst.Call) and self.ctx.qualname(test.func) == "isinstance":
            pos = positional(test)
            if len(pos) == 2 and same_expr(self.ctx, pos[0], owner):
                return self.type_kinds(pos[1])
            return None
        if isinstance(test, cst.Comparison) and isinstance(test.left, cst.Call):
            pos = positional(test.left)
            if self.ctx.qualname(test.left.func) == "type" and len(pos) == 1 and same_expr(self.ctx, pos[0], owner):
                return self.type_kinds(test.comparisons[0].comparator)
        # DCGAN style: classname = m.__class__.__name__; if classname.find('Conv') != -1
        text = " ".join(s for s in (string(x) for x in walk(test, cst.SimpleString)) if s)
        out: set[str] = set()
        if _NORM_WORDS.search(text):
            out.add("batchnorm")
        if "Conv" in text:
            out.add("conv")
        if "Linear" in text:
            out.add("linear")
        if "Embedding" in text:
            out.add("embedding")
        return out or None

    def resolve(self, owner: cst.BaseExpression, site: Site, func: FunctionInfo | None) -> Layers:
        """What ``owner`` in ``owner.weight`` is, at ``site`` inside ``func``."""
        cls = self.enclosing_class(func) if func is not None else None
        kinds = self.guard_kinds(owner, site.guards)
        if kinds is not None:
            return Layers(kinds, generic=True)
        # self.X / self.X[i] / self.X.Y
        if cls is not None:
            r = self._resolve_path(owner, cls, self_name(func.node) if func is not None and func.cls is cls else "self")
            if r is not None:
                return r
        # m.bn2 inside a loop/apply: look the attribute up across the file's classes
        if isinstance(owner, cst.Attribute) and isinstance(owner.value, cst.Name):
            base_guard = self.guard_kinds(owner.value, site.guards)
            candidates: list[Attr] = []
            if base_guard:
                for k in base_guard:
                    if k.startswith("custom:") and k[7:] in self.ctx.class_by_name:
                        a = self.st.attrs(self.ctx.class_by_name[k[7:]]).get(owner.attr.value)
                        if a is not None:
                            candidates.append(a)
            else:
                for c in self.ctx.module_classes():
                    a = self.st.attrs(c).get(owner.attr.value)
                    if a is not None:
                        candidates.append(a)
            if candidates and all(not a.ambiguous and a.kind for a in candidates):
                return Layers(
                    {a.kind for a in candidates if a.kind},
                    [a.ctor for a in candidates if a.ctor],
                    names=[owner.attr.value],
                )
        # a local built in the same function: conv = nn.Conv2d(...)
        if isinstance(owner, cst.Name):
            body = func.node.body if func is not None else self.ctx.module
            for s in walk(body, cst.Assign):
                target = s.targets[0].target if len(s.targets) == 1 else None
                if isinstance(target, cst.Name) and target.value == owner.value and isinstance(s.value, cst.Call):
                    mk = module_kind(self.ctx.qualname(s.value.func))
                    if mk is not None:
                        return Layers({mk[0]}, [s.value], names=[owner.value])
            for loop in site.loops:
                if not (isinstance(loop.target, cst.Name) and loop.target.value == owner.value):
                    continue
                # a loop over self.modules() with no guard: every layer
                if isinstance(loop.iter, cst.Call):
                    it = loop.iter.func
                    if isinstance(it, cst.Attribute) and it.attr.value in ("modules", "children"):
                        return Layers({"any"}, generic=True)
                # for layer in (self.fc1, self.fc2): ...
                if isinstance(loop.iter, (cst.List, cst.Tuple)) and cls is not None and loop.iter.elements:
                    found = [self._resolve_path(el.value, cls, "self") for el in loop.iter.elements]
                    resolved = [f for f in found if f is not None]
                    if len(resolved) == len(found) and all(f.ctors and "unknown" not in f.kinds for f in resolved):
                        return Layers(
                            set().union(*(f.kinds for f in resolved)),
                            [c for f in resolved for c in f.ctors],
                            names=[n for f in resolved for n in f.names],
                        )
                break
        return Layers({"unknown"})

    def _resolve_path(self, owner: cst.BaseExpression, cls: ClassInfo, sname: str) -> Layers | None:
        name = is_self_attr(owner, sname)
        if name is not None:
            a = self.st.attrs(cls).get(name)
            if a is None or a.ambiguous:
                return Layers({"unknown"}, names=[name])
            return Layers({a.kind or "unknown"}, [a.ctor] if a.ctor is not None else [], names=[name])
        if isinstance(owner, cst.Subscript) and len(owner.slice) == 1 and isinstance(owner.slice[0].slice, cst.Index):
            name = is_self_attr(owner.value, sname)
            idx = number(owner.slice[0].slice.value)
            if name is not None and idx is not None:
                a = self.st.attrs(cls).get(name)
                if a is not None and not a.ambiguous and a.kind == "sequential" and a.ctor is not None:
                    direct = [x for x in a.ctor.args]
                    if all(not x.star and x.keyword is None for x in direct) and -len(direct) <= idx < len(direct):
                        el = direct[int(idx)].value
                        if isinstance(el, cst.Call):
                            mk = module_kind(self.ctx.qualname(el.func))
                            if mk is not None:
                                return Layers({mk[0]}, [el], names=[name], index=int(idx) % len(direct))
                return Layers({"unknown"}, names=[name] if name else [])
        if isinstance(owner, cst.Attribute):
            parent = self._resolve_path(owner.value, cls, sname)
            if parent is not None and len(parent.ctors) == 1:
                pa = None
                name0 = is_self_attr(owner.value, sname)
                if name0 is not None:
                    pa = self.st.attrs(cls).get(name0)
                if pa is not None and pa.custom is not None:
                    a = self.st.attrs(pa.custom).get(owner.attr.value)
                    if a is not None and not a.ambiguous:
                        return Layers({a.kind or "unknown"}, [a.ctor] if a.ctor else [], names=[owner.attr.value])
            if parent is not None:
                return Layers({"unknown"}, names=[owner.attr.value])
        return None

    def scope_classes(self, func: FunctionInfo | None) -> list[ClassInfo] | None:
        """Classes an init function applies to: its own class, or the classes that call
        ``self.apply(fn)``; None when it is (also) applied to something we cannot name."""
        if func is None:
            return None
        cls = self.enclosing_class(func)
        if cls is not None:
            return [cls]
        out: list[ClassInfo] = []
        for call, f in self.ctx.calls:
            if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "apply"):
                continue
            pos = positional(call)
            if not pos or not (isinstance(pos[0], cst.Name) and pos[0].value == func.name):
                continue
            owner_cls = self.enclosing_class(f) if f is not None else None
            if (
                f is None
                or owner_cls is None
                or not (isinstance(call.func.value, cst.Name) and call.func.value.value == self_name(f.node))
            ):
                return None
            out.append(owner_cls)
        return out or None


def class_layers(st: Structure, cls: ClassInfo, kinds: set[str]) -> list[cst.Call]:
    """Constructor calls of the class's own layers (self.X and Sequential elements) of
    the given kinds ('any' for every affine layer), following in-file submodule classes."""
    out: list[cst.Call] = []
    seen: set[str] = set()

    def visit(c: ClassInfo) -> None:
        if c.name in seen:
            return
        seen.add(c.name)
        for a in st.attrs(c).values():
            if a.ambiguous:
                continue
            if a.custom is not None:
                visit(a.custom)
            elif a.elements is not None:
                for op in a.elements:
                    if op.ctor is not None and (op.kind in kinds or ("any" in kinds and op.kind in AFFINE_KINDS)):
                        out.append(op.ctor)
            elif a.ctor is not None and (a.kind in kinds or ("any" in kinds and a.kind in AFFINE_KINDS)):
                out.append(a.ctor)

    visit(cls)
    return list({id(c): c for c in out}.values())


def init_sites(ctx: SourceContext, wanted) -> Iterator[tuple[cst.Call, Site, FunctionInfo | None]]:
    """Calls for which ``wanted(call)`` holds, with their guards, in the functions that
    contain them (module-level code included, with ``None`` for the function)."""
    funcs: dict[int, FunctionInfo] = {}
    top = False
    for call, func in ctx.calls:
        if wanted(call):
            if func is None:
                top = True
            else:
                funcs[id(func.node)] = func
    for func in funcs.values():
        for site in walk_sites(func.node.body):
            for call in _statement_calls(site.stmt):
                if wanted(call):
                    yield call, site, func
    if top:
        for site in walk_sites(ctx.module):
            for call in _statement_calls(site.stmt):
                if wanted(call):
                    yield call, site, None


def _statement_calls(stmt: cst.BaseSmallStatement) -> list[cst.Call]:
    """Calls a statement makes at its top level (init code is written as statements:
    ``nn.init.zeros_(w)``, ``w.data.fill_(0)``, ``a if c else b``, ``w = P(torch.ones(...))``),
    without walking every expression of the function."""
    if isinstance(stmt, cst.Expr):
        todo = [stmt.value]
    elif isinstance(stmt, (cst.Assign, cst.AnnAssign)) and stmt.value is not None:
        todo = [stmt.value]
    else:
        return []
    out: list[cst.Call] = []
    while todo:
        e = todo.pop()
        if isinstance(e, cst.Call):
            out.append(e)
            todo.extend(a.value for a in e.args if isinstance(a.value, (cst.Call, cst.IfExp)))
        elif isinstance(e, cst.IfExp):
            todo += [e.body, e.orelse]
        elif isinstance(e, cst.BooleanOperation):
            todo += [e.left, e.right]
    return out
