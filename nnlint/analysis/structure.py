"""The in-file class model: what each ``self.X`` of a module class is, and the file's layer sequences.

The sequences are ``nn.Sequential(...)`` literals and forward-style methods; the layer-level
rules (NN101, NN102, NN110, NN111, NN112, NN114, NN115, NN116) read them. No metadata providers
and no re-parsing: everything starts from the context's classes, functions and calls, walks
only the bodies it needs, and is cached per ``SourceContext`` so the rules pay for it once.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import libcst as cst

from nnlint.analysis.syntax import is_self_attr, number, positional, qual_of_dotted, self_name, walk
from nnlint.analysis.torch_kinds import AFFINE_KINDS, CHAIN_KINDS, module_kind, short
from nnlint.contexts.source import (
    ClassInfo,
    SourceContext,
    normalize_torch_name,
)


@dataclass(eq=False)
class Op:
    """One step of a layer sequence. ``node`` is where a finding about it points: the
    constructor call for a module, the call itself for a functional op."""

    kind: str
    act: str | None
    node: cst.CSTNode
    label: str
    ctor: cst.Call | None = None
    attr: str | None = None
    site: cst.CSTNode | None = None
    elements: list[Op] | None = None

    def expanded(self) -> list[Op]:
        if self.elements is not None:
            out: list[Op] = []
            for e in self.elements:
                out.extend(e.expanded())
            return out
        return [self]


@dataclass(eq=False)
class Attr:
    """What ``self.<name> = <value>`` assigned in a module class."""

    name: str
    stmt: cst.CSTNode
    target: cst.CSTNode
    value: cst.BaseExpression | None
    qual: str | None = None  # constructor's qualified name when the value is a call
    kind: str | None = None
    act: str | None = None
    custom: ClassInfo | None = None  # an in-file class was constructed
    elements: list[Op] | None = None  # Sequential literal, flattened
    ambiguous: bool = False
    owner: str = ""  # class that assigns it
    #: every own assignment: (statement, value or None for tuple targets, method)
    sites: list[tuple[cst.CSTNode, cst.BaseExpression | None, cst.FunctionDef]] = field(default_factory=list)

    @property
    def ctor(self) -> cst.Call | None:
        return self.value if isinstance(self.value, cst.Call) else None


_CONTAINER_DISPLAYS = (cst.List, cst.Tuple, cst.Dict, cst.Set, cst.ListComp, cst.DictComp, cst.SetComp)


@dataclass(eq=False)
class Chain:
    ops: list[Op]
    cls: ClassInfo | None
    origin: str  # "sequential" or the method name
    owner_attr: str | None = None


class Structure:
    """What the layer rules share about one file, computed lazily and once."""

    def __init__(self, ctx: SourceContext) -> None:
        # a weak reference: the cache below is keyed weakly by ctx, so a strong one here
        # would keep every linted file's tree alive for the whole run
        self._ctx = weakref.ref(ctx)
        self._layer_uses: dict[int, list[Use]] | None = None
        self._attrs: dict[str, dict[str, Attr]] = {}
        self._chains: list[Chain] | None = None
        self._seq_cache: dict[int, list[Op]] = {}
        self._parents: dict[int, list[ClassInfo]] = {}
        self._flattened: set[int] = set()  # Sequential calls inlined into an outer one
        self._descendants: dict[str, set[str]] | None = None
        #: (class, method) -> local names bound to a list/tuple/dict/set display or comprehension
        self.local_containers: dict[tuple[str, str], set[str]] = {}

    @property
    def ctx(self) -> SourceContext:
        ctx = self._ctx()
        assert ctx is not None, "Structure outlived its SourceContext"
        return ctx

    # classes -----------------------------------------------------------------------
    def parents(self, cls: ClassInfo) -> list[ClassInfo]:
        """In-file ancestors, nearest first."""
        cached = self._parents.get(id(cls))
        if cached is not None:
            return cached
        out: list[ClassInfo] = []
        todo = [b for b in cls.bases]
        seen = {cls.name}
        while todo:
            b = todo.pop(0)
            info = self.ctx.class_by_name.get(b)
            if info is None or info.name in seen:
                continue
            seen.add(info.name)
            out.append(info)
            todo.extend(info.bases)
        self._parents[id(cls)] = out
        return out

    def family(self, cls: ClassInfo) -> set[str]:
        """Names of the class, its in-file ancestors and its in-file descendants."""
        if self._descendants is None:
            self._descendants = {}
            for other in self.ctx.classes:
                for p in self.parents(other):
                    self._descendants.setdefault(p.name, set()).add(other.name)
        return {cls.name} | {p.name for p in self.parents(cls)} | self._descendants.get(cls.name, set())

    def attrs(self, cls: ClassInfo) -> dict[str, Attr]:
        """``self.X`` assignments of the class and its in-file parents (own ones win)."""
        if cls.name in self._attrs:
            return self._attrs[cls.name]
        self._attrs[cls.name] = {}  # cycle guard
        merged: dict[str, Attr] = {}
        for parent in reversed(self.parents(cls)):
            merged.update(self.attrs(parent))
        own: dict[str, Attr] = {}
        for mname, method in cls.methods.items():
            sname = self_name(method)
            local = self.local_containers.setdefault((cls.name, mname), set())
            for stmt in walk(method.body, (cst.Assign, cst.AnnAssign)):
                value: cst.BaseExpression | None
                if isinstance(stmt, cst.Assign):
                    targets = [t.target for t in stmt.targets]
                    value = stmt.value
                else:
                    targets = [stmt.target]
                    value = stmt.value
                if isinstance(value, _CONTAINER_DISPLAYS):
                    local.update(t.value for t in targets if isinstance(t, cst.Name))
                for t in targets:
                    elems = [e.value for e in t.elements] if isinstance(t, (cst.Tuple, cst.List)) else [t]
                    for el in elems:
                        name = is_self_attr(el, sname)
                        if name is None:
                            continue
                        v = value if el is t else None
                        prev = own.get(name)
                        if prev is None:
                            prev = own[name] = self._make_attr(cls, name, stmt, el, v)
                        elif prev.qual is None or not isinstance(v, cst.Call):
                            prev.ambiguous = True
                        elif normalize_torch_name(self.ctx.qualname(v.func) or "") != prev.qual:
                            prev.ambiguous = True
                        prev.sites.append((stmt, v, method))
        merged.update(own)
        self._attrs[cls.name] = merged
        return merged

    def _make_attr(self, cls: ClassInfo, name: str, stmt: cst.CSTNode, target: cst.CSTNode, value) -> Attr:
        a = Attr(name=name, stmt=stmt, target=target, value=value, owner=cls.name)
        if isinstance(value, cst.Call):
            q = self.ctx.qualname(value.func)
            a.qual = normalize_torch_name(q) if q else None
            mk = module_kind(q)
            if mk is not None:
                a.kind, a.act = mk
                if a.kind == "sequential":
                    a.elements = self.sequential_ops(value, cls)
            elif q in self.ctx.class_by_name and self.ctx.is_module_class(self.ctx.class_by_name[q]):
                a.custom = self.ctx.class_by_name[q]
                a.kind = "custom"
        return a

    def attr_kind(self, cls: ClassInfo, name: str) -> Attr | None:
        a = self.attrs(cls).get(name)
        if a is None or a.ambiguous:
            return None
        return a

    # Sequential ----------------------------------------------------------------------
    def sequential_ops(self, call: cst.Call, cls: ClassInfo | None) -> list[Op]:
        key = id(call)
        if key in self._seq_cache:
            return self._seq_cache[key]
        self._seq_cache[key] = []
        items: list[cst.BaseExpression | None] = []
        args = call.args
        single = args[0].value if len(args) == 1 and not args[0].star and args[0].keyword is None else None
        if isinstance(single, cst.Call) and short(self.ctx.qualname(single.func)) == "OrderedDict":
            od = single
            inner = positional(od)
            if len(inner) == 1 and isinstance(inner[0], (cst.List, cst.Tuple)):
                for el in inner[0].elements:
                    v = el.value
                    if isinstance(v, cst.Tuple) and len(v.elements) == 2:
                        items.append(v.elements[1].value)
                    else:
                        items.append(None)
            elif len(inner) == 1 and isinstance(inner[0], cst.Dict):
                items = [el.value if isinstance(el, cst.DictElement) else None for el in inner[0].elements]
            else:
                items = [None]
        else:
            for a in args:
                items.append(None if (a.star or a.keyword is not None) else a.value)
        ops: list[Op] = []
        for item in items:
            ops.extend(self._element_ops(item, cls, call))
        self._seq_cache[key] = ops
        return ops

    def _element_ops(self, item, cls: ClassInfo | None, seq: cst.Call) -> list[Op]:
        if isinstance(item, cst.Call):
            q = self.ctx.qualname(item.func)
            mk = module_kind(q)
            if mk is not None:
                kind, act = mk
                if kind == "sequential":
                    self._flattened.add(id(item))
                    return self.sequential_ops(item, cls) or [Op("other", None, item, "Sequential", ctor=item)]
                if kind in CHAIN_KINDS:
                    return [Op(kind, act, item, short(q), ctor=item)]
            return [Op("other", None, item, short(q), ctor=item)]
        if item is not None and cls is not None:
            name = is_self_attr(item)
            a = self.attr_kind(cls, name) if name else None
            if a is not None and name and a.kind in CHAIN_KINDS and a.ctor is not None:
                return [Op(a.kind, a.act, a.ctor, name, ctor=a.ctor, attr=name, site=item)]
            if a is not None and a.elements is not None:
                return list(a.elements) or [Op("other", None, item, "?")]
        return [Op("other", None, item if item is not None else seq, "?")]

    # chains --------------------------------------------------------------------------
    def chains(self) -> list[Chain]:
        """Every layer sequence in the file: each ``nn.Sequential(...)`` literal (nested
        literals flattened) and each chain of single-use layer calls in the methods of
        module classes (``self.bn1(self.conv1(x))`` or ``x = self.conv1(x); x = self.bn1(x)``)."""
        if self._chains is not None:
            return self._chains
        chains: list[Chain] = []
        ctx = self.ctx
        for call, func in ctx.calls:
            cls = func.cls if func is not None else None
            if module_kind(ctx.qualname(call.func)) != ("sequential", None):
                # `class ConvBN(nn.Sequential): super().__init__(conv, bn, act)`
                if not (
                    cls is not None
                    and func is not None
                    and func.name == "__init__"
                    and _is_super_init(call)
                    and self.is_sequential_class(cls)
                ):
                    continue
            ops = self.sequential_ops(call, cls)
            if id(call) in self._flattened:
                continue  # an element of an enclosing Sequential, analysed there
            owner_attr = None
            if cls is not None:
                for a in self.attrs(cls).values():
                    if a.value is call:
                        owner_attr = a.name
            chains.append(Chain(ops, cls, "sequential", owner_attr))
        from nnlint.analysis.layer_flow import LayerFlow  # it reads this class model: imported when used

        for cls in ctx.module_classes():
            attrs = self.attrs(cls)
            for mname, method in cls.methods.items():
                if mname == "__init__":
                    continue
                flow = LayerFlow(ctx, self, cls, attrs, self_name(method))
                flow.run(method)
                for ops in flow.paths():
                    chains.append(Chain(ops, cls, mname))
        self._chains = chains
        return chains

    def is_sequential_class(self, cls: ClassInfo) -> bool:
        """Subclass of nn.Sequential (directly or through in-file classes)."""
        for c in [cls, *self.parents(cls)]:
            for b in c.bases:
                if normalize_torch_name(qual_of_dotted(self.ctx, b)) == "torch.nn.Sequential":
                    return True
        return False

    def class_has_residual(self, cls: ClassInfo) -> bool:
        """A ``+`` of two non-constant values in a method other than __init__."""
        for mname, method in cls.methods.items():
            if mname == "__init__":
                continue
            for n in walk(method.body, (cst.BinaryOperation, cst.AugAssign)):
                if isinstance(n, cst.BinaryOperation) and isinstance(n.operator, cst.Add):
                    if number(n.left) is None and number(n.right) is None and not isinstance(n.left, cst.SimpleString):
                        return True
                if isinstance(n, cst.AugAssign) and isinstance(n.operator, cst.AddAssign) and number(n.value) is None:
                    return True
        return False


def _is_super_init(call: cst.Call) -> bool:
    func = call.func
    return (
        isinstance(func, cst.Attribute)
        and func.attr.value == "__init__"
        and isinstance(func.value, cst.Call)
        and isinstance(func.value.func, cst.Name)
        and func.value.func.value == "super"
    )


_CACHE: weakref.WeakKeyDictionary[SourceContext, Structure] = weakref.WeakKeyDictionary()


def structure(ctx: SourceContext) -> Structure:
    s = _CACHE.get(ctx)
    if s is None:
        s = Structure(ctx)
        _CACHE[ctx] = s
    return s


@dataclass
class Use:
    """One occurrence of a Linear/Conv layer in a chain."""

    op: Op
    nxt: Op | None  # the op right after it (None at the end of the chain)
    hidden: bool  # nxt is an activation whose output feeds another Linear/Conv
    followed: bool  # some Linear/Conv comes later in the chain
    depth: int  # Linear/Conv layers in the chain


def layer_uses(st: Structure) -> dict[int, list[Use]]:
    """Occurrences of every Linear/Conv constructor (by ``id`` of the constructor call)
    in the file's chains."""
    if st._layer_uses is not None:
        return st._layer_uses
    out: dict[int, list[Use]] = {}
    for chain in st.chains():
        ops = chain.ops
        depth = sum(1 for o in ops if o.kind in AFFINE_KINDS)
        for i, op in enumerate(ops):
            if op.kind not in AFFINE_KINDS or op.ctor is None:
                continue
            nxt = ops[i + 1] if i + 1 < len(ops) else None
            rest = [o for o in ops[i + 2 :]]
            while rest and rest[0].kind == "dropout":
                rest.pop(0)
            hidden = nxt is not None and nxt.kind == "act" and bool(rest) and rest[0].kind in AFFINE_KINDS
            followed = any(o.kind in AFFINE_KINDS for o in ops[i + 1 :])
            out.setdefault(id(op.ctor), []).append(Use(op, nxt, hidden, followed, depth))
    st._layer_uses = out
    return out
