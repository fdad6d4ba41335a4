"""Where a probe finding points in the user's file (``span_of``, the probe's own way of locating) and the run it came from."""

from __future__ import annotations

import os
from typing import Any

from nnlint.findings import Span
from nnlint.passes import locate
from nnlint.rule import Finding


def model_line(model: Any, path: str, module: str | None) -> int | None:
    """The line in ``path`` that creates ``module`` (a qualified submodule name), else the
    model's class line; None when neither is in ``path``."""
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


def span_of(f: Finding, model: Any, path: str, lines: list[str] | None, default_line: int | None = None) -> Span:
    """The finding's own line, else the line that creates its module (or the model's class),
    else ``default_line`` (a library model: the user's line that builds it), else 1; without
    a column, the span covers the statement, like the graph pass's."""
    line = f.line if f.line is not None else model_line(model, path, f.module)
    line = line or default_line or 1
    column, end_column = f.column, f.end_column
    text = lines[line - 1] if lines and 0 < line <= len(lines) else ""
    if column is None and text.strip():  # span the statement, like the graph pass does
        column = len(text) - len(text.lstrip()) + 1
        end_column = end_column or len(text.rstrip()) + 1
    return Span(line, column or 1, f.end_line, end_column)


def with_run(f: Finding, run: dict[str, Any] | None) -> dict[str, Any]:
    """The finding's evidence, plus the probe run's settings under ``probe`` (device, batch)."""
    evidence = dict(f.evidence)
    if run:
        evidence.setdefault("probe", run)
    return evidence
