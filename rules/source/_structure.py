"""Model structure shared by the layer-level source rules (NN101, NN102, NN110, NN111,
NN112, NN114, NN115, NN116): what each ``self.X`` of a module class is, the layer
sequences of ``nn.Sequential(...)`` literals and of forward-style methods, and the
``isinstance`` guards around weight-init calls.

No metadata providers and no re-parsing: everything starts from the indexer's classes,
functions and calls, walks only the bodies it needs, and is cached per ``SourceContext``
so the rules that share it pay for it once.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

import libcst as cst

from nnlint.contexts.source import (
    ClassInfo,
    FunctionInfo,
    SourceContext,
    child_nodes,
    dotted,
    iter_nodes,
    normalize_torch_name,
)

# --------------------------------------------------------------------------------------
# what a torch.nn name is
# --------------------------------------------------------------------------------------

_LINEAR = {"Linear", "LazyLinear"}
_CONV = {
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
}
_BATCHNORM = {
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
    "SyncBatchNorm",
}
_INSTANCENORM = {
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "LazyInstanceNorm1d",
    "LazyInstanceNorm2d",
    "LazyInstanceNorm3d",
}
_OTHER_NORM = {
    "LayerNorm": "layernorm",
    "GroupNorm": "groupnorm",
    "RMSNorm": "rmsnorm",
    "LocalResponseNorm": "norm",
    "CrossMapLRN2d": "norm",
}
_DROPOUT = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"}
_ACT_MODULES = {
    "ReLU": "relu",
    "ReLU6": "relu6",
    "LeakyReLU": "leaky_relu",
    "PReLU": "prelu",
    "RReLU": "rrelu",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "Hardtanh": "hardtanh",
    "Hardsigmoid": "hardsigmoid",
    "Hardswish": "hardswish",
    "GELU": "gelu",
    "SiLU": "silu",
    "Mish": "mish",
    "ELU": "elu",
    "CELU": "celu",
    "SELU": "selu",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "Tanhshrink": "tanhshrink",
    "LogSigmoid": "logsigmoid",
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
    "Softmin": "softmin",
    "Softmax2d": "softmax",
    "GLU": "glu",
    "Threshold": "threshold",
}
_CONTAINERS = {"ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}
_EMBEDDING = {"Embedding", "EmbeddingBag"}

_ACT_FUNCS: dict[str, str] = {"torch.special.expit": "sigmoid"}
for _n, _a in [
    ("relu", "relu"),
    ("relu_", "relu"),
    ("relu6", "relu6"),
    ("leaky_relu", "leaky_relu"),
    ("leaky_relu_", "leaky_relu"),
    ("tanh", "tanh"),
    ("sigmoid", "sigmoid"),
    ("hardtanh", "hardtanh"),
    ("hardtanh_", "hardtanh"),
    ("gelu", "gelu"),
    ("silu", "silu"),
    ("mish", "mish"),
    ("elu", "elu"),
    ("elu_", "elu"),
    ("selu", "selu"),
    ("celu", "celu"),
    ("softplus", "softplus"),
    ("softsign", "softsign"),
    ("logsigmoid", "logsigmoid"),
    ("hardsigmoid", "hardsigmoid"),
    ("hardswish", "hardswish"),
    ("softmax", "softmax"),
    ("log_softmax", "log_softmax"),
    ("glu", "glu"),
    ("prelu", "prelu"),
    ("rrelu", "rrelu"),
]:
    _ACT_FUNCS[f"torch.nn.functional.{_n}"] = _a
for _n, _a in [
    ("relu", "relu"),
    ("relu_", "relu"),
    ("tanh", "tanh"),
    ("tanh_", "tanh"),
    ("sigmoid", "sigmoid"),
    ("sigmoid_", "sigmoid"),
    ("selu", "selu"),
    ("celu", "celu"),
    ("softmax", "softmax"),
    ("log_softmax", "log_softmax"),
    ("prelu", "prelu"),
    ("rrelu", "rrelu"),
]:
    _ACT_FUNCS[f"torch.{_n}"] = _a
ACT_METHODS = {
    "relu": "relu",
    "relu_": "relu",
    "sigmoid": "sigmoid",
    "sigmoid_": "sigmoid",
    "tanh": "tanh",
    "tanh_": "tanh",
}
DROPOUT_FUNCS = {
    "torch.nn.functional.dropout",
    "torch.nn.functional.dropout1d",
    "torch.nn.functional.dropout2d",
    "torch.nn.functional.dropout3d",
    "torch.nn.functional.alpha_dropout",
    "torch.nn.functional.feature_alpha_dropout",
    "torch.dropout",
    "torch.alpha_dropout",
    "torch.feature_alpha_dropout",
}

NORM_KINDS = frozenset({"batchnorm", "instancenorm", "layernorm", "groupnorm", "rmsnorm", "norm"})
AFFINE_KINDS = frozenset({"linear", "conv"})
SATURATING = frozenset({"tanh", "sigmoid"})
RELU_FAMILY = frozenset({"relu", "relu6", "leaky_relu"})
#: kinds that take part in a layer sequence; anything else in a Sequential is opaque
CHAIN_KINDS = AFFINE_KINDS | NORM_KINDS | {"dropout", "act"}


def torch_nn_class(q: str | None) -> str | None:
    """'Conv2d' for 'torch.nn.Conv2d' / 'torch.nn.modules.conv.Conv2d', else None."""
    if not q:
        return None
    q = normalize_torch_name(q)
    parts = q.split(".")
    if len(parts) == 3 and parts[0] == "torch" and parts[1] == "nn" and parts[2][:1].isupper():
        return parts[2]
    return None


def module_kind(q: str | None) -> tuple[str, str | None] | None:
    """(kind, activation) of the torch.nn class named ``q``; None when ``q`` is no
    torch.nn class. Kinds: linear, conv, batchnorm, instancenorm, layernorm, groupnorm,
    rmsnorm, norm, dropout, act, sequential, container, embedding, parameter, module."""
    name = torch_nn_class(q)
    if name is None:
        return None
    if name in _LINEAR:
        return "linear", None
    if name in _CONV:
        return "conv", None
    if name in _BATCHNORM:
        return "batchnorm", None
    if name in _INSTANCENORM:
        return "instancenorm", None
    if name in _OTHER_NORM:
        return _OTHER_NORM[name], None
    if name in _DROPOUT:
        return "dropout", None
    if name in _ACT_MODULES:
        return "act", _ACT_MODULES[name]
    if name == "Sequential":
        return "sequential", None
    if name in _CONTAINERS:
        return "container", None
    if name in _EMBEDDING:
        return "embedding", None
    if name in ("Parameter", "UninitializedParameter"):
        return "parameter", None
    if name in ("Buffer", "UninitializedBuffer"):
        return None
    return "module", None


def short(q: str | None) -> str:
    return (q or "?").rsplit(".", 1)[-1]


# --------------------------------------------------------------------------------------
# small CST helpers
# --------------------------------------------------------------------------------------


walk = iter_nodes


def qual_of_dotted(ctx: SourceContext, name: str) -> str:
    """``ctx.qualname`` for a dotted string (a class base as the indexer stores it)."""
    return ctx.resolve_dotted(name)


def words(node: cst.CSTNode) -> set[str]:
    """Lower-case word tokens of the names, attributes and strings in ``node``: a cheap
    stand-in for looking at its source text."""
    out: set[str] = set()
    for n in [node, *walk(node, (cst.Name, cst.SimpleString, cst.FormattedStringText), into_defs=True)]:
        if isinstance(n, cst.Name):
            out |= name_tokens(n.value)
        elif isinstance(n, cst.SimpleString):
            out |= name_tokens(n.value)
        elif isinstance(n, cst.FormattedStringText):
            out |= name_tokens(n.value)
    return out


def same_expr(ctx: SourceContext, a: cst.BaseExpression, b: cst.BaseExpression) -> bool:
    da, db = dotted(a), dotted(b)
    if da is not None or db is not None:
        return da == db
    return a.deep_equals(b)


def positional(call: cst.Call) -> list[cst.BaseExpression]:
    """Positional arguments up to the first ``*args`` (after which positions are unknown)."""
    out = []
    for a in call.args:
        if a.keyword is not None:
            continue
        if a.star:
            break
        out.append(a.value)
    return out


def has_star(call: cst.Call) -> bool:
    return any(a.star for a in call.args)


def keyword(call: cst.Call, name: str) -> cst.BaseExpression | None:
    for a in call.args:
        if a.keyword is not None and a.keyword.value == name:
            return a.value
    return None


def arg(call: cst.Call, index: int, name: str) -> cst.BaseExpression | None:
    """Argument by keyword ``name`` or position ``index``."""
    kw = keyword(call, name)
    if kw is not None:
        return kw
    pos = positional(call)
    return pos[index] if index < len(pos) else None


def number(expr: cst.BaseExpression | None) -> float | None:
    """Value of a numeric literal (``0``, ``-0.5``, ``1e-3``), else None."""
    if isinstance(expr, (cst.Integer, cst.Float)):
        try:
            return float(expr.evaluated_value)
        except (ValueError, TypeError):
            return None
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
        v = number(expr.expression)
        if v is None:
            return None
        return -v if isinstance(expr.operator, cst.Minus) else v
    return None


def string(expr: cst.BaseExpression | None) -> str | None:
    if isinstance(expr, cst.SimpleString):
        v = expr.evaluated_value
        return v if isinstance(v, str) else None
    return None


def is_self_attr(expr: cst.BaseExpression | None, self_name: str = "self") -> str | None:
    """'X' for ``self.X``."""
    if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == self_name:
        return expr.attr.value
    return None


def self_name(fn: cst.FunctionDef) -> str:
    """Name of a method's first parameter (``self`` by convention)."""
    params = [*fn.params.posonly_params, *fn.params.params]
    return params[0].name.value if params else "self"


def names_read(node: cst.CSTNode) -> set[str]:
    """Names a node reads, nested functions and lambdas included; the attribute part of
    ``a.b`` and keyword names of calls are not reads."""
    out: set[str] = set()
    stack: list[cst.CSTNode] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Name):
            out.add(n.value)
            continue
        if isinstance(n, cst.Attribute):
            stack.append(n.value)
            continue
        if isinstance(n, cst.Arg):
            stack.append(n.value)
            continue
        stack.extend(child_nodes(n))
    return out


def target_names(target: cst.CSTNode) -> set[str]:
    """Names bound by an assignment target (tuples and starred unpacked)."""
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        out: set[str] = set()
        for el in target.elements:
            out |= target_names(el.value)
        return out
    if isinstance(target, cst.StarredElement):
        return target_names(target.value)
    return set()


def names_assigned(node: cst.CSTNode) -> set[str]:
    """Names a statement (and the blocks inside it, not nested defs) binds."""
    out: set[str] = set()
    nodes = [node, *walk(node)]
    for n in nodes:
        if isinstance(n, cst.AssignTarget):
            out |= target_names(n.target)
        elif isinstance(n, (cst.AugAssign, cst.AnnAssign)):
            out |= target_names(n.target)
        elif isinstance(n, (cst.For, cst.CompFor)):
            out |= target_names(n.target)
        elif isinstance(n, cst.AsName):
            out |= target_names(n.name)
        elif isinstance(n, cst.NamedExpr):
            out |= target_names(n.target)
        elif isinstance(n, cst.Del):
            out |= target_names(n.target)
        elif isinstance(n, (cst.FunctionDef, cst.ClassDef)):
            out.add(n.name.value)
        elif isinstance(n, cst.Global | cst.Nonlocal):
            out |= {x.name.value for x in n.names}
    return out


# --------------------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------------------


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
        for cls in ctx.module_classes():
            attrs = self.attrs(cls)
            for mname, method in cls.methods.items():
                if mname == "__init__":
                    continue
                flow = _Flow(ctx, self, cls, attrs, self_name(method))
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


# --------------------------------------------------------------------------------------
# data flow through a method: which layer's output goes straight into which layer
# --------------------------------------------------------------------------------------

_META_ATTRS = {"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad", "size", "dim", "numel"}


class _Flow:
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
            if q in _ACT_FUNCS:
                return Op("act", _ACT_FUNCS[q], call, q, site=call), first
            if q in DROPOUT_FUNCS:
                tr = arg(call, 2, "training" if q.startswith("torch.nn.") else "train")
                if isinstance(tr, cst.Name) and tr.value == "False":
                    return None
                return Op("dropout", None, call, q, site=call), first
        if isinstance(func, cst.Attribute) and func.attr.value in ACT_METHODS and not call.args:
            if self.ctx.qualname(func.value) in ("torch", "torch.nn.functional"):
                return None
            return Op("act", ACT_METHODS[func.attr.value], call, f".{func.attr.value}()", site=call), func.value
        return None


# --------------------------------------------------------------------------------------
# weight-init sites: which layer a `<owner>.weight` is, under which guards
# --------------------------------------------------------------------------------------


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


def line_of(ctx: SourceContext, node: cst.CSTNode) -> int:
    return ctx.position(node)[0]


# --------------------------------------------------------------------------------------
# where each layer sits in the sequences, and init call sites
# --------------------------------------------------------------------------------------


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


def name_tokens(text: str) -> set[str]:
    return {t for t in re.split(r"[^a-z]+", text.lower()) if t}
