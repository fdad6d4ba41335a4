"""Where a probe finding points in the user's file, and its Diagnostic (``to_diagnostic``)."""

from __future__ import annotations

import os
from typing import Any

from nnlint.diagnostics import Diagnostic, json_safe
from nnlint.passes import locate
from nnlint.rule import Finding, Rule


def model_line(model: Any, path: str, module: str | None) -> int | None:
    real = os.path.realpath(path)
    if module:
        p, line = locate.module_line(model, module, prefer_path=path)
        if p is not None and line is not None and os.path.realpath(p) == real:
            return line
    p, line = locate.class_line(type(model))
    if p is not None and line is not None and os.path.realpath(p) == real:
        return line
    return None


def source_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def to_diagnostic(
    rule: Rule,
    f: Finding,
    model: Any,
    path: str,
    model_name: str,
    extra: dict[str, Any] | None = None,
    lines: list[str] | None = None,
    default_line: int | None = None,
) -> Diagnostic:
    line = f.line if f.line is not None else model_line(model, path, f.module)
    line = line or default_line or 1  # a library model: the user's line that builds it
    evidence = dict(f.evidence)
    if extra:
        evidence.setdefault("probe", extra)
    column, end_column = f.column, f.end_column
    text = lines[line - 1] if lines and 0 < line <= len(lines) else ""
    if column is None and text.strip():  # span the statement, like the graph pass does
        column = len(text) - len(text.lstrip()) + 1
        end_column = end_column or len(text.rstrip()) + 1
    return Diagnostic(
        code=rule.code,
        name=rule.name,
        severity=f.severity or rule.severity,
        message=f.message,
        pass_=rule.pass_,
        path=path,
        line=line,
        column=column or 1,
        end_line=f.end_line,
        end_column=end_column,
        model=f.model or model_name,
        module=f.module,
        evidence=json_safe(evidence),
        fix=f.fix,
    )
