"""``--format text`` (default): ``path:line:col: CODE severity: message`` and a summary,
coloured with rich only on a TTY (rich honours NO_COLOR and FORCE_COLOR).

Uncoloured output (pipes, pre-commit, CI logs) is written without importing rich, which
takes a noticeable share of a one-file run's start-up."""

from __future__ import annotations

import os
from typing import Any, TextIO

from nnlint.diagnostics import Severity

STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(result: Any) -> str:
    """``Found 2 problems (...): 1 file, 3 models found: 2 checked, 1 not checked (1 NN002) in 1.2s.``
    Never "All checks passed" when the files define models and none of them was checked."""
    e, w, i = (result.count(s) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO))
    total = e + w + i
    checked = result.models
    not_checked = getattr(result, "models_not_checked", 0)
    not_probed = result.models_not_probed
    ran = getattr(result, "files_run", 0)
    if total:
        head = f"Found {_plural(total, 'problem')} ({e} error{'s' * (e != 1)}, {_plural(w, 'warning')}, {i} info)"
    elif ran and not checked:
        head = "No problems found, but no model was checked"
    else:
        head = "All checks passed"
    parts = [f"{_plural(result.files, 'file')}"]
    if ran or checked or not_checked or not_probed:
        # models not checked, by the finding that says why (NN002 is one per model; a file
        # that failed to import, NN003/NN007, counts the models it defines)
        why_counts = {"NN002": 0, "NN003": 0, "NN007": 0}
        for d in getattr(result, "diagnostics", []):
            if d.code in why_counts:
                why_counts[d.code] += 1 if d.code == "NN002" else int(d.evidence.get("models_not_checked", 0))
        why = ", ".join(f"{n} {c}" for c, n in why_counts.items() if n) or "see --verbose"
        found = f"{_plural(checked + not_checked, 'model')} found: {checked} checked"
        found += f", {not_checked} not checked ({why})" if not_checked else ""
        parts.append(found)
    if not_probed:
        parts.append(f"{not_probed} not probed")
    return f"{head}: {', '.join(parts)} in {result.duration_s:.2f}s."


# the control characters rich's Text drops (bell, backspace, VT, FF, CR), so that the
# plain path prints exactly what rich would
_CONTROL = {7: None, 8: None, 11: None, 12: None, 13: None}


def _wants_rich(stream: TextIO, color: bool | None) -> bool:
    if color is not None:
        return color
    if os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE") == "1":
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty()) and os.environ.get("TTY_COMPATIBLE") != "0"
    except ValueError:  # a closed stream
        return False


def where(d: Any) -> str:
    """``path:line:col``, or ``nb.ipynb:cell 3:5:9`` in a notebook (as ruff prints it)."""
    cell = getattr(d, "cell", None)
    return f"{d.path}:cell {cell}:{d.line}:{d.column}" if cell else f"{d.path}:{d.line}:{d.column}"


def _line(d: Any) -> str:
    module = f" [{d.module}]" if d.module else ""
    return f"{where(d)}: {d.code} {d.severity.value}: {d.message}{module}"


def write(result: Any, stream: TextIO, color: bool | None = None) -> None:
    if not _wants_rich(stream, color):
        for d in result.diagnostics:
            stream.write(_line(d).translate(_CONTROL) + "\n")
        stream.write(summary_line(result).translate(_CONTROL) + "\n")
        return
    from rich.console import Console
    from rich.text import Text

    if color is None:  # auto: rich looks at isatty(), NO_COLOR, FORCE_COLOR and TERM
        console = Console(file=stream, highlight=False, soft_wrap=True)
    elif color:  # --color always beats NO_COLOR, as no-color.org asks of explicit flags
        console = Console(
            file=stream, highlight=False, soft_wrap=True, force_terminal=True, no_color=False, color_system="standard"
        )
    else:  # --color never: no escape codes at all, not even bold
        console = Console(file=stream, highlight=False, soft_wrap=True, force_terminal=False, no_color=True)
    for d in result.diagnostics:
        line = Text()
        line.append(f"{where(d)}:", style="bold")
        line.append(" ")
        line.append(d.code, style=STYLE[d.severity.value])
        line.append(f" {d.severity.value}: ", style=STYLE[d.severity.value])
        line.append(d.message)
        if d.module:
            line.append(f" [{d.module}]", style="dim")
        console.print(line)
    console.print(Text(summary_line(result), style="bold" if result.diagnostics else "green"))
