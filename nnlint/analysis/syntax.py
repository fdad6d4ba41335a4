"""Syntax-tree helpers with no analysis state: call arguments, literals, names read and assigned, ``self`` attributes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypeGuard, overload

import libcst as cst

from nnlint.contexts.source import (
    SourceContext,
    child_nodes,
    dotted,
    iter_nodes,
)

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


# call arguments: one set, one parameter order (call, position, keyword), as Python binds them.
# Two ways to count positions, both kept because rules rely on each: ``arg``/``positional``
# stop at the first ``*args`` (later positions are unknown); ``arg_expr``/``call_arg``/
# ``positional_args`` skip ``*args`` and count the plain positional arguments after it.


def has_star(call: cst.Call) -> bool:
    """The call passes ``*args`` or ``**kwargs``."""
    return any(a.star for a in call.args)


def keyword_arg(call: cst.Call, keyword: str) -> cst.Arg | None:
    """The argument passed as ``keyword=...``."""
    for a in call.args:
        if a.keyword is not None and a.keyword.value == keyword:
            return a
    return None


def keyword_value(call: cst.Call, keyword: str) -> cst.BaseExpression | None:
    """The expression passed as ``keyword=...``."""
    a = keyword_arg(call, keyword)
    return a.value if a is not None else None


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


def arg(call: cst.Call, position: int, keyword: str) -> cst.BaseExpression | None:
    """Argument by ``keyword`` or by ``position`` (positions after a ``*args`` are unknown)."""
    kw = keyword_value(call, keyword)
    if kw is not None:
        return kw
    pos = positional(call)
    return pos[position] if position < len(pos) else None


def positional_args(call: cst.Call) -> list[cst.Arg]:
    """The plain positional arguments, ``*args`` skipped."""
    return [a for a in call.args if a.keyword is None and not a.star]


def call_arg(call: cst.Call, position: int | None, keyword: str | None) -> cst.Arg | None:
    """The argument passed as ``keyword`` or, failing that, at ``position`` among the plain
    positional arguments (``*args`` skipped)."""
    if keyword is not None:
        a = keyword_arg(call, keyword)
        if a is not None:
            return a
    pos = positional_args(call)
    if position is not None and position < len(pos):
        return pos[position]
    return None


def arg_expr(call: cst.Call, position: int | None, keyword: str | None) -> cst.BaseExpression | None:
    """The expression of ``call_arg``."""
    a = call_arg(call, position, keyword)
    return a.value if a is not None else None


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


def name_tokens(text: str) -> set[str]:
    return {t for t in re.split(r"[^a-z]+", text.lower()) if t}


def int_value(e: cst.Integer) -> int | None:
    try:
        return int(e.value.replace("_", ""), 0)
    except ValueError:
        return None


def is_number_literal(e: cst.BaseExpression) -> bool:
    if isinstance(e, cst.UnaryOperation) and isinstance(e.operator, cst.Minus):
        e = e.expression
    return isinstance(e, (cst.Integer, cst.Float))


def is_bare_slice(e: cst.BaseSlice | None) -> bool:
    return isinstance(e, cst.Slice) and e.lower is None and e.upper is None and e.step is None


def positional_params(fn: cst.FunctionDef) -> list[cst.Param]:
    p = fn.params
    return [*p.posonly_params, *p.params]


def short_expr(ctx: SourceContext, node: cst.CSTNode, limit: int = 40) -> str:
    text = " ".join(ctx.code(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@overload
def line_of(ctx: SourceContext, node: cst.CSTNode) -> int: ...
@overload
def line_of(ctx: SourceContext, node: cst.CSTNode | None) -> int | None: ...
def line_of(ctx: SourceContext, node: cst.CSTNode | None) -> int | None:
    """The 1-based line where ``node`` starts (None for no node)."""
    return ctx.position(node)[0] if node is not None else None


COMPOUND_STATEMENTS = (
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


def is_attribute_of(node: cst.BaseExpression, selfname: str) -> TypeGuard[cst.Attribute]:
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
        elif isinstance(node, COMPOUND_STATEMENTS):
            parts = [getattr(node, "body", None), getattr(node, "orelse", None), getattr(node, "finalbody", None)]
            parts += list(getattr(node, "handlers", ()) or ())
            stack.extend((p, owner) for p in reversed(parts) if p is not None)
        elif isinstance(node, cst.Match):
            stack.extend((c.body, owner) for c in reversed(node.cases))
        elif into_defs and isinstance(node, cst.FunctionDef):
            stack.append((node.body, node))
        elif into_defs and isinstance(node, cst.ClassDef):
            stack.append((node.body, owner))
