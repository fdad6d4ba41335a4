"""``--format text`` (default): ``path:line:col: CODE severity: message`` and a summary,
coloured with rich only on a TTY (rich honours NO_COLOR and FORCE_COLOR)."""

from __future__ import annotations

from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from nnlint.diagnostics import Severity

STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(result: Any) -> str:
    e, w, i = (result.count(s) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO))
    total = e + w + i
    head = "All checks passed" if total == 0 else f"Found {_plural(total, 'problem')} ({e} error{'s' * (e != 1)}, {_plural(w, 'warning')}, {i} info)"
    parts = [f"{_plural(result.files, 'file')}"]
    if result.models or result.models_not_probed:
        parts.append(f"{_plural(result.models, 'model')} checked")
    if result.models_not_probed:
        parts.append(f"{result.models_not_probed} not probed (see NN002)")
    return f"{head}: {', '.join(parts)} in {result.duration_s:.2f}s."


def write(result: Any, stream: TextIO, color: bool | None = None) -> None:
    console = Console(file=stream, highlight=False, soft_wrap=True,
                      force_terminal=True if color else None, no_color=True if color is False else None)
    for d in result.diagnostics:
        line = Text()
        line.append(f"{d.path}:{d.line}:{d.column}:", style="bold")
        line.append(" ")
        line.append(d.code, style=STYLE[d.severity.value])
        line.append(f" {d.severity.value}: ", style=STYLE[d.severity.value])
        line.append(d.message)
        if d.module:
            line.append(f" [{d.module}]", style="dim")
        console.print(line)
    console.print(Text(summary_line(result), style="bold" if result.diagnostics else "green"))
