"""The source pass: one libcst parse per file, one ``SourceContext`` (nnlint/contexts/source.py), every source rule.

Speed matters here (pre-commit): this module never imports torch or user code. Measured
(docs/MEASUREMENTS.md and benchmarks/static_speed.py): libcst's ScopeProvider +
QualifiedNameProvider cost ~6x the parse itself and PositionProvider ~2x, so the pass
resolves names through the file's import table (``SourceContext.qualname``: the same
answers QualifiedNameProvider gives for imports, at the cost of a dict lookup) and
resolves positions only for files that have findings.
"""

from __future__ import annotations

from collections.abc import Iterable

import libcst as cst

from nnlint.contexts.source import SourceContext
from nnlint.diagnostics import Diagnostic, Location
from nnlint.rule import Finding, Rule


def to_diagnostic(rule: type[Rule] | Rule, ctx: SourceContext, f: Finding) -> Diagnostic:
    if f.node is not None:
        line, col, end_line, end_col = ctx.position(f.node)
    else:
        line, col = f.line or 1, f.column or 1
        end_line, end_col = f.end_line or line, f.end_column or (col + 1 if f.line else col + 1)
    if f.line is not None and f.node is None and f.end_column is None and 0 < line <= len(ctx.lines):
        end_col = len(ctx.lines[line - 1]) + 1
    return Diagnostic(
        code=rule.code,
        name=rule.name,
        severity=f.severity or rule.severity,
        message=f.message,
        pass_=rule.pass_ if rule.pass_ != "tool" else "tool",
        path=ctx.path,
        line=line,
        column=col,
        end_line=end_line,
        end_column=end_col,
        model=f.model,
        module=f.module,
        evidence=f.evidence,
        fix=f.fix,
        related=tuple(
            Location(path=ctx.path, line=where if isinstance(where, int) else ctx.position(where)[0], message=msg)
            for where, msg in f.related
        ),
    )


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
    out: list[Diagnostic] = []
    crashes: list[RuleCrash] = []
    for rule in rules:
        found: list[Diagnostic] = []
        try:
            for finding in rule.check(ctx):
                found.append(to_diagnostic(rule, ctx, finding))
        except Exception as exc:  # a rule bug must not hide other rules' findings
            crashes.append(RuleCrash(rule.code, exc))
            continue
        out.extend(found)
    return out, crashes


class SyntaxIssue(Exception):
    def __init__(self, message: str, line: int, column: int, detail: str) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.detail = detail


class RuleCrash(Exception):
    def __init__(self, code: str, exc: BaseException) -> None:
        super().__init__(f"{code} crashed: {type(exc).__name__}: {exc}")
        self.code = code
        self.exc = exc
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        self.where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
