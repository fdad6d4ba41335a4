"""``--format github``: GitHub Actions workflow commands, one annotation per finding."""

from __future__ import annotations

from typing import Any, TextIO

LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def write(result: Any, stream: TextIO, color: bool = False) -> None:
    for d in result.diagnostics:
        props = ",".join(
            f"{k}={_escape_prop(str(v))}"
            for k, v in (
                ("file", d.path),
                ("line", d.line),
                ("col", d.column),
                ("endLine", d.end_line),
                ("endColumn", d.end_column),
                ("title", f"{d.code} {d.name}" + (f" (cell {d.cell})" if d.cell else "")),
            )
        )
        # a notebook: GitHub has no cells, so the message says where (line/col are cell-relative)
        where = f"cell {d.cell}, line {d.line}: " if d.cell else ""
        stream.write(f"::{LEVEL[d.severity.value]} {props}::{_escape_data(f'{d.code} {where}{d.message}')}\n")
