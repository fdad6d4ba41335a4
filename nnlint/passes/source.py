"""The source pass: one libcst parse per file, one ``SourceContext`` (nnlint/contexts/source.py), every source rule.

Speed matters here (pre-commit): this module never imports torch or user code. Measured
(docs/MEASUREMENTS.md and benchmarks/static_speed.py): libcst's ScopeProvider +
QualifiedNameProvider cost ~6x the parse itself and PositionProvider ~2x, so the pass
resolves names through the file's import table (``SourceContext.qualname``: the same
answers QualifiedNameProvider gives for imports, at the cost of a dict lookup) and
resolves positions only for files that have findings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import libcst as cst

from nnlint import findings
from nnlint.contexts.source import SourceContext
from nnlint.diagnostics import Diagnostic
from nnlint.findings import RuleCrash, Span
from nnlint.rule import Finding, Rule


def span(ctx: SourceContext, f: Finding) -> Span:
    """Where a source finding is reported: its node's range, or its line (the whole line
    when the rule gives no columns)."""
    if f.node is not None:
        return Span(*ctx.position(f.node))
    line, col = f.line or 1, f.column or 1
    end_line, end_col = f.end_line or line, f.end_column or col + 1
    if f.line is not None and f.end_column is None and 0 < line <= len(ctx.lines):
        end_col = len(ctx.lines[line - 1]) + 1
    return Span(line, col, end_line, end_col)


def to_diagnostic(rule: type[Rule] | Rule, ctx: SourceContext, f: Finding) -> Diagnostic:
    return findings.to_diagnostic(
        rule, f, ctx.path, span(ctx, f), findings.related_places(f, ctx.path, _related_line(ctx))
    )


def _related_line(ctx: SourceContext) -> Callable[[Any], int | None]:
    return lambda node: ctx.position(node)[0]


def mentions_torch(text: str) -> bool:
    return "torch" in text or "lightning" in text


def run(path: str, text: str, rules: Iterable[Rule]) -> tuple[list[Diagnostic], list[RuleCrash]]:
    """Parse ``text`` once and run every source rule on it. Raises ``SyntaxIssue`` for
    text libcst cannot parse. A crashing rule is returned as a ``RuleCrash`` and the
    other rules still run."""
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        raise SyntaxIssue(
            str(exc).splitlines()[0] if str(exc) else "invalid syntax", exc.raw_line, exc.raw_column + 1, str(exc)
        ) from None
    except RecursionError:
        raise SyntaxIssue("too deeply nested to parse", 1, 1, "too deeply nested") from None
    ctx = SourceContext(path, text, module)
    return findings.run_rules(rules, ctx, lambda f: span(ctx, f), path=path, related_line=_related_line(ctx))


class SyntaxIssue(Exception):
    def __init__(self, message: str, line: int, column: int, detail: str) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.detail = detail
