"""The source rules' context (``SourceContext``): one file's imports, classes, functions, calls and loops.

Indexed in one walk, with name resolution through the file's imports, positions, and the
syntax-tree traversal helpers rules use (``dotted``, ``iter_nodes``, ``child_nodes``,
``normalize_torch_name``). Torch-free and public: every rule under rules/source and
rules/training receives a ``SourceContext``; the source pass (nnlint/passes/source.py) builds
it and runs the rules. Speed matters (pre-commit): names resolve through the file's import
table (a dict lookup, not libcst's QualifiedNameProvider) and positions are resolved only for
files that have findings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast, overload

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from nnlint.vocab import TORCH_MODULE_BASES


@dataclass
class ClassInfo:
    node: cst.ClassDef
    name: str
    bases: list[str]  # qualified (or plain) names of the bases
    methods: dict[str, cst.FunctionDef] = field(default_factory=dict)


@dataclass
class FunctionInfo:
    node: cst.FunctionDef
    name: str
    cls: ClassInfo | None  # enclosing class when this is a method


class _Indexer(cst.CSTVisitor):
    """One walk that records what rules ask for most: imports, classes, functions,
    calls and loops, with the enclosing class/function of each."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.classes: list[ClassInfo] = []
        self.functions: list[FunctionInfo] = []
        self.calls: list[tuple[cst.Call, FunctionInfo | None]] = []
        self.loops: list[tuple[cst.For | cst.While, FunctionInfo | None]] = []
        self._class_stack: list[ClassInfo] = []
        self._func_stack: list[FunctionInfo] = []

    # imports -------------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            full = dotted(alias.name)
            if full is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.aliases[alias.asname.name.value] = full
            else:
                top = full.split(".")[0]
                self.aliases.setdefault(top, top)
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        if node.relative or node.module is None:
            base = "." * len(node.relative) + (dotted(node.module) or "" if node.module else "")
        else:
            base = dotted(node.module) or ""
        if isinstance(node.names, cst.ImportStar):
            return False
        for alias in node.names:
            name = dotted(alias.name)
            if name is None:
                continue
            local = (
                alias.asname.name.value
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name)
                else name
            )
            self.aliases[local] = f"{base}.{name}" if base else name
        return False

    # structure -----------------------------------------------------------------
    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        info = ClassInfo(node=node, name=node.name.value, bases=[])
        info.bases = [b for b in (dotted(arg.value) for arg in node.bases) if b]
        self.classes.append(info)
        self._class_stack.append(info)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._class_stack.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        cls = None
        if self._class_stack and (not self._func_stack or self._func_stack[-1].cls is not self._class_stack[-1]):
            # a def directly in the class body (not nested in another method)
            if self._class_stack[-1].node.body is not None and node in self._class_stack[-1].node.body.body:
                cls = self._class_stack[-1]
                cls.methods.setdefault(node.name.value, node)
        info = FunctionInfo(node=node, name=node.name.value, cls=cls)
        self.functions.append(info)
        self._func_stack.append(info)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._func_stack.pop()

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append((node, self._func_stack[-1] if self._func_stack else None))

    def visit_For(self, node: cst.For) -> None:
        self.loops.append((node, self._func_stack[-1] if self._func_stack else None))

    def visit_While(self, node: cst.While) -> None:
        self.loops.append((node, self._func_stack[-1] if self._func_stack else None))


def dotted(node: cst.BaseExpression | None) -> str | None:
    """'a.b.c' for a Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


class SourceContext:
    """Everything a source rule may ask about one file."""

    def __init__(self, path: str, text: str, module: cst.Module) -> None:
        self.path = path
        self.text = text
        self.lines = text.splitlines()
        self.module = module
        self.wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        self._positions: Mapping[cst.CSTNode, CodeRange] | None = None
        idx = _Indexer()
        module.visit(idx)
        self.aliases = idx.aliases
        self.classes = idx.classes
        self.functions = idx.functions
        self.calls = idx.calls
        self.loops = idx.loops
        self.class_by_name = {c.name: c for c in self.classes}
        self._module_classes: dict[str, bool] = {}
        #: per-file analyses shared by several rules (e.g. the value flow), keyed by owner
        self.cache: dict[str, object] = {}

    # names -------------------------------------------------------------------------
    def qualname(self, node: cst.BaseExpression | None) -> str | None:
        """Fully qualified name of a Name/Attribute (or of a Call's callee) through the
        file's imports: with ``import torch.nn as nn``, ``nn.Softmax`` ->
        ``torch.nn.Softmax``; with ``from torch.nn import functional as F``,
        ``F.softmax`` -> ``torch.nn.functional.softmax``. Unimported names resolve to
        themselves (``self.fc`` -> ``self.fc``)."""
        if isinstance(node, cst.Call):
            node = node.func
        name = dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        if head in self.aliases:
            full = self.aliases[head]
            return f"{full}.{rest}" if rest else full
        return name

    def resolve_dotted(self, name: str) -> str:
        """``qualname`` for a dotted string (e.g. a class base as the indexer stores it)."""
        head, _, rest = name.partition(".")
        if head in self.aliases:
            full = self.aliases[head]
            return f"{full}.{rest}" if rest else full
        return name

    def is_torch(self, node: cst.BaseExpression | None, *names: str) -> bool:
        """True when ``node`` resolves to one of ``names`` (e.g. 'torch.nn.Softmax');
        ``torch.nn.modules.<file>.X`` counts as ``torch.nn.X``. Other spellings of the same
        function (``torch.softmax`` vs ``torch.nn.functional.softmax``) must be listed."""
        q = self.qualname(node)
        if q is None:
            return False
        q = normalize_torch_name(q)
        return q in {normalize_torch_name(n) for n in names}

    def is_module_class(self, cls: ClassInfo, _seen: frozenset[str] = frozenset()) -> bool:
        """True for an nn.Module subclass (directly, through another class in this file,
        or through a base whose name ends in 'Module')."""
        if cls.name in self._module_classes:
            return self._module_classes[cls.name]
        result = False
        for base in cls.bases:
            q = self.resolve_dotted(base)
            if q in TORCH_MODULE_BASES or (q or "").endswith("Module") or (q or "").endswith("LightningModule"):
                result = True
            elif base in self.class_by_name and base not in _seen:
                result = self.is_module_class(self.class_by_name[base], _seen | {cls.name})
            if result:
                break
        self._module_classes[cls.name] = result
        return result

    def module_classes(self) -> list[ClassInfo]:
        return [c for c in self.classes if self.is_module_class(c)]

    # positions ---------------------------------------------------------------------
    def position(self, node: cst.CSTNode) -> tuple[int, int, int, int]:
        """1-based (line, column, end_line, end_column) of ``node``."""
        if self._positions is None:
            self._positions = _positions(self.module) or self.wrapper.resolve(PositionProvider)
        rng = self._positions[node]
        return rng.start.line, rng.start.column + 1, rng.end.line, rng.end.column + 1

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)


class _PositionSink:
    """Stands in for PositionProvider: the codegen state records each node's range here."""

    def __init__(self) -> None:
        self._computed: dict = {}


def _positions(module: cst.Module) -> dict | None:
    """PositionProvider's ranges from one plain codegen pass, without the metadata
    wrapper's visitor machinery (about 2x cheaper; it is on every file with findings)."""
    try:
        from libcst.metadata.position_provider import PositionProvidingCodegenState

        sink = _PositionSink()
        state = PositionProvidingCodegenState(
            default_indent=module.default_indent, default_newline=module.default_newline, provider=cast(Any, sink)
        )  # a stand-in: the state only writes `_computed`
        module._codegen(state)
        return sink._computed
    except Exception:  # a libcst without these internals: the public provider
        return None


def normalize_torch_name(q: str) -> str:
    """``torch.nn.modules.loss.CrossEntropyLoss`` -> ``torch.nn.CrossEntropyLoss``."""
    if q.startswith("torch.nn.modules."):
        parts = q.split(".")
        return ".".join(["torch", "nn", *parts[4:]]) if len(parts) > 4 else q
    return q


# Fields that hold whitespace and punctuation, never code a rule looks at.
_SKIPPED_FIELDS = (
    "whitespace",
    "lpar",
    "rpar",
    "leading_lines",
    "lines_after",
    "header",
    "footer",
    "trailing_whitespace",
    "comma",
    "semicolon",
    "dot",
    "equal",
    "colon",
)
_FIELDS: dict[type, tuple[str, ...]] = {}
_NODE_TYPES: dict[type, bool] = {}


def child_nodes(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The syntactic children of ``node`` in source order, without whitespace and
    punctuation. libcst's ``node.children`` runs a visitor per call and returns the
    whitespace too; reading the dataclass fields is ~10x faster and yields a third of
    the nodes (measured on torch's own sources), which keeps rules cheap for pre-commit."""
    names = _FIELDS.get(type(node))
    if names is None:
        names = _FIELDS[type(node)] = tuple(
            f.name for f in dataclasses.fields(node) if not f.name.startswith(_SKIPPED_FIELDS)
        )
    out: list[cst.CSTNode] = []
    for name in names:
        v = getattr(node, name)
        t = type(v)
        if t is list or t is tuple:
            out.extend(v)  # libcst sequences hold nodes only
        else:
            is_node = _NODE_TYPES.get(t)
            if is_node is None:  # isinstance() against libcst's ABCs is slow; cache per type
                is_node = _NODE_TYPES[t] = issubclass(t, cst.CSTNode)
            if is_node:
                out.append(v)
    return out


_MATCH: dict[tuple[type, object], bool] = {}
_DEFS = (cst.FunctionDef, cst.ClassDef, cst.Lambda)


def _is(t: type, kind: type | tuple[type, ...]) -> bool:
    # libcst's node classes are ABCs, whose isinstance() is slow; the answer per type is fixed
    key = (t, kind)
    m = _MATCH.get(key)
    if m is None:
        m = _MATCH[key] = issubclass(t, kind)
    return m


_N = TypeVar("_N", bound=cst.CSTNode)
_N2 = TypeVar("_N2", bound=cst.CSTNode)
_N3 = TypeVar("_N3", bound=cst.CSTNode)


# typed like isinstance(): iter_nodes(body, cst.Call) yields Calls
@overload
def iter_nodes(node: cst.CSTNode, kind: None = None, *, into_defs: bool = False) -> Iterator[cst.CSTNode]: ...
@overload
def iter_nodes(node: cst.CSTNode, kind: type[_N], *, into_defs: bool = False) -> Iterator[_N]: ...
@overload
def iter_nodes(
    node: cst.CSTNode, kind: tuple[type[_N], type[_N2]], *, into_defs: bool = False
) -> Iterator[_N | _N2]: ...
@overload
def iter_nodes(
    node: cst.CSTNode, kind: tuple[type[_N], type[_N2], type[_N3]], *, into_defs: bool = False
) -> Iterator[_N | _N2 | _N3]: ...
@overload
def iter_nodes(node: cst.CSTNode, kind: tuple[type, ...], *, into_defs: bool = False) -> Iterator[cst.CSTNode]: ...
def iter_nodes(
    node: cst.CSTNode, kind: type | tuple[type, ...] | None = None, *, into_defs: bool = False
) -> Iterator[cst.CSTNode]:
    """Depth-first descendants of ``node`` (not ``node`` itself) in source order,
    optionally only of ``kind``; nested function/class/lambda bodies are skipped unless
    ``into_defs``. Whitespace and comments are not visited (see ``child_nodes``)."""
    stack = child_nodes(node)
    stack.reverse()
    while stack:
        n = stack.pop()
        t = type(n)
        if kind is None or _is(t, kind):
            yield n
        if not into_defs and _is(t, _DEFS):
            continue
        more = child_nodes(n)
        more.reverse()
        stack.extend(more)
