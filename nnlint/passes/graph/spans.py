"""Where a graph finding is reported in the user's file: its line (the finding's, its module's, the model's) and columns."""

from __future__ import annotations

from typing import Any

from nnlint.contexts.graph import GNode, GraphContext
from nnlint.findings import Span
from nnlint.rule import Finding


def span_of(ctx: GraphContext, f: Finding) -> Span:
    """The finding's own line, else the line that creates its module, else the model's
    class line; the columns cover the line's text unless the finding gives them."""
    line = f.line
    if line is None and f.module is not None:
        line = ctx.module_line(f.module)
    if line is None:
        line = ctx.model_line or 1
    end_col = None
    text = ctx.source.lines[line - 1] if 0 < line <= len(ctx.source.lines) else ""
    col = f.column or (len(text) - len(text.lstrip()) + 1 if text.strip() else 1)
    if f.end_column is None and text.strip():
        end_col = len(text.rstrip()) + 1
    return Span(line, col, f.end_line or line, f.end_column or end_col)


def related_line(ctx: GraphContext, where: Any) -> int | None:
    """The user's line of a ``Finding.related`` place: a traced node or a module's path."""
    if isinstance(where, GNode):
        return ctx.best_line(where)
    if isinstance(where, str):
        return ctx.module_line(where)
    return None
