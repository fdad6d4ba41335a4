"""Jupyter notebooks (``.ipynb``): the code cells as one Python program, and back.

Every pass lints a notebook through its *program*: the code cells in order, IPython magics
(``%time``, ``%%bash``) and shell escapes (``!pip install``) masked as ``pass`` statements so
that nothing that is not Python is parsed or run, and every cell's lines keep their numbers
inside the program. ``Notebook.locate`` maps a program line back to ``(cell, line)``; cells
are numbered 1-based among *all* cells (markdown too), as ``docs/diagnostics.schema.json``
defines, and lines are relative to the cell, as ruff reports them.

Reading uses ``nbformat`` when it is installed (the ``notebook`` extra) and plain ``json``
otherwise, so the static core keeps only libcst and rich as requirements. Writing a fixed
notebook (``Notebook.with_sources``) replaces only the edited cells' ``source`` values in
the original text: indentation, key order, metadata and outputs stay byte-for-byte.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

#: cell magics whose body is Python (the magic line alone is masked)
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug", "autoreload", "skip"}
_ASSIGNED_MAGIC = re.compile(r"^(\s*)([A-Za-z_][\w.,\s]*?)\s*=\s*[!%]")
MASK = "pass  # nnlint: masked IPython syntax"


def is_notebook(path: str) -> bool:
    return path.endswith(".ipynb")


class NotebookError(ValueError):
    """The file is not a readable notebook; ``line`` points into the JSON when known."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class Cell:
    index: int  # 1-based among all cells
    kind: str
    source: str  # the cell's text as written (magics unmasked)
    first_line: int = 0  # 1-based line of the cell's first line in the program (code cells)


@dataclass
class Notebook:
    path: str
    raw: str
    cells: list[Cell]
    program: str = ""
    #: program line (1-based) -> (cell index, line in cell); index 0 unused
    line_map: list[tuple[int, int]] = field(default_factory=list)

    def locate(self, line: int) -> tuple[int, int] | None:
        if 0 < line < len(self.line_map):
            return self.line_map[line]
        return None

    def cell(self, index: int) -> Cell:
        return self.cells[index - 1]

    def code_cells(self) -> list[Cell]:
        return [c for c in self.cells if c.kind == "code"]

    def with_sources(self, sources: dict[int, str]) -> str:
        """The notebook's text with the ``source`` of the cells in ``sources`` (index ->
        new text) replaced, everything else byte-for-byte as it was."""
        if not sources:
            return self.raw
        spans = _source_spans(self.raw)
        out = []
        pos = 0
        for index in sorted(sources):
            start, end = spans[index - 1]
            out.append(self.raw[pos:start])
            out.append(_dump_source(self.raw, start, end, sources[index]))
            pos = end
        out.append(self.raw[pos:])
        return "".join(out)


def mask_ipython(source: str) -> str:
    """``source`` with IPython-only lines replaced by ``pass`` (same line count)."""
    lines = source.split("\n")
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        name = first[2:].split()[0] if first[2:].split() else ""
        if name not in PYTHON_CELL_MAGICS:  # %%bash, %%writefile, %%html: not Python at all
            return "\n".join("# " + line if line.strip() else line for line in lines)
    out = []
    continued = False
    for line in lines:
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if continued:  # the continuation of a masked magic line (`%time f(\` ...)
            out.append("#" + line)
            continued = line.rstrip().endswith("\\")
            continue
        if stripped.startswith(("%", "!")) or (
            stripped.endswith("?") and not stripped.startswith("#") and re.fullmatch(r"[\w.]+\?\??", stripped)
        ):
            out.append(indent + MASK)
            continued = line.rstrip().endswith("\\")
            continue
        m = _ASSIGNED_MAGIC.match(line)
        if m and "(" not in m.group(2) and not stripped.startswith("#"):
            targets = m.group(2)
            out.append(f"{indent}{targets} = None  # nnlint: masked IPython syntax")
            continued = line.rstrip().endswith("\\")
            continue
        out.append(line)
    return "\n".join(out)


def parse(path: str, raw: str) -> Notebook:
    """The notebook in ``raw`` (the file's text); raises ``NotebookError``."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"not a Jupyter notebook: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            exc.lineno,
            exc.colno,
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError(
            "not a Jupyter notebook: the JSON has no 'cells' list (nnlint reads notebooks in nbformat 4)"
        )
    try:
        import nbformat  # the `notebook` extra: validates the structure
    except ImportError:
        nb = data
    else:
        import warnings

        try:
            with warnings.catch_warnings():  # MissingIDFieldWarning and friends: not the user's finding
                warnings.simplefilter("ignore")
                nb = nbformat.reads(raw, as_version=4)
        except Exception as exc:  # nbformat raises several kinds for malformed notebooks
            raise NotebookError(f"not a readable Jupyter notebook: {type(exc).__name__}: {exc}") from None
    cells = []
    for i, c in enumerate(nb.get("cells") or [], start=1):
        if not isinstance(c, dict):
            raise NotebookError(f"not a Jupyter notebook: cell {i} is not an object")
        src = c.get("source", "")
        if isinstance(src, list):
            src = "".join(str(s) for s in src)
        cells.append(Cell(index=i, kind=str(c.get("cell_type", "")), source=str(src)))
    book = Notebook(path=path, raw=raw, cells=cells)
    _build_program(book)
    return book


def _build_program(book: Notebook) -> None:
    parts: list[str] = []
    line_map: list[tuple[int, int]] = [(0, 0)]
    for cell in book.cells:
        if cell.kind != "code":
            continue
        text = mask_ipython(cell.source)
        if text and not text.endswith("\n"):
            text += "\n"
        cell.first_line = len(line_map)
        n = text.count("\n")
        line_map.extend((cell.index, k) for k in range(1, n + 1))
        parts.append(text)
    book.program = "".join(parts)
    book.line_map = line_map


# ---------------------------------------------------------------------------------------
# positions of each cell's "source" value in the JSON text, for byte-exact rewriting


_WS = " \t\r\n"


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WS:
        i += 1
    return i


def _value_end(s: str, i: int) -> int:
    """The index just past the JSON value that starts at ``s[i]``."""
    ch = s[i]
    if ch == '"':
        i += 1
        while s[i] != '"':
            i += 2 if s[i] == "\\" else 1
        return i + 1
    if ch in "[{":
        close = "]" if ch == "[" else "}"
        i = _skip_ws(s, i + 1)
        if s[i] == close:
            return i + 1
        while True:
            if ch == "{":
                i = _skip_ws(s, _value_end(s, i))  # key
                i = _skip_ws(s, i + 1)  # ':'
            i = _skip_ws(s, _value_end(s, i))
            if s[i] == ",":
                i = _skip_ws(s, i + 1)
                continue
            return i + 1
    m = re.compile(r"-?[0-9.eE+\-]+|true|false|null").match(s, i)
    if not m:
        raise NotebookError(f"unexpected character {ch!r} in the notebook JSON")
    return m.end()


def _members(s: str, i: int) -> list[tuple[str, int, int]]:
    """(key, value start, value end) of the object starting at ``s[i]``."""
    out: list[tuple[str, int, int]] = []
    i = _skip_ws(s, i + 1)
    if s[i] == "}":
        return out
    while True:
        kend = _value_end(s, i)
        key = json.loads(s[i:kend])
        i = _skip_ws(s, kend)
        i = _skip_ws(s, i + 1)
        vend = _value_end(s, i)
        out.append((key, i, vend))
        i = _skip_ws(s, vend)
        if s[i] == ",":
            i = _skip_ws(s, i + 1)
            continue
        return out


def _source_spans(raw: str) -> list[tuple[int, int]]:
    top = _skip_ws(raw, 0)
    cells = next((a, b) for k, a, b in _members(raw, top) if k == "cells")
    spans = []
    i = _skip_ws(raw, cells[0] + 1)
    while raw[i] != "]":
        end = _value_end(raw, i)
        src = next(((a, b) for k, a, b in _members(raw, i) if k == "source"), None)
        spans.append(src if src is not None else (end - 1, end - 1))
        i = _skip_ws(raw, end)
        if raw[i] == ",":
            i = _skip_ws(raw, i + 1)
    return spans


def _dump_source(raw: str, start: int, end: int, text: str) -> str:
    """``text`` as a JSON ``source`` value in the style of the one at ``raw[start:end]``."""
    ascii_only = "\\u" in raw and not any(ord(ch) > 127 for ch in raw)
    old = raw[start:end]
    if not old.startswith("["):
        return json.dumps(text, ensure_ascii=ascii_only)
    lines = text.splitlines(keepends=True)
    if not lines:
        return "[]"
    m = re.match(r"\[(\s*)", old)
    sep = m.group(1) if m else ""
    if "\n" not in sep:  # `["a", "b"]` on one line
        return "[" + ", ".join(json.dumps(x, ensure_ascii=ascii_only) for x in lines) + "]"
    line_start = raw.rfind("\n", 0, start) + 1
    indent = re.match(r"[ \t]*", raw[line_start:start])  # always matches, perhaps empty
    outer = indent.group(0) if indent else ""
    return "[" + sep + ("," + sep).join(json.dumps(x, ensure_ascii=ascii_only) for x in lines) + "\n" + outer + "]"


def map_diagnostic(book: Notebook, d: Any) -> Any:
    """``d`` (positions in ``book.program``) at its cell and cell-relative line; fix edits
    and related locations are mapped the same way."""
    from dataclasses import replace

    from nnlint.diagnostics import Location

    where = book.locate(d.line)
    if where is None:  # past the last cell (an empty notebook's NN001): the first cell
        return d
    cell, line = where
    end = book.locate(d.end_line or d.line)
    end_line, end_column = (
        (end[1], d.end_column) if end and end[0] == cell else (line, len(_cell_line(book, cell, line)) + 1)
    )
    fix = d.fix
    if fix is not None:
        edits = []
        for e in fix.edits:
            a, b = book.locate(e.line), book.locate(e.end_line)
            if a is None or b is None or a[0] != b[0]:
                fix = None  # an edit across cells cannot be applied to a notebook
                break
            edits.append(replace(e, line=a[1], end_line=b[1], cell=a[0]))
        if fix is not None:
            fix = replace(fix, edits=tuple(edits))
    related = []
    for r in d.related:
        loc = book.locate(r.line) if r.path == d.path else None
        related.append(
            Location(path=r.path, line=loc[1], column=r.column, message=f"cell {loc[0]}: {r.message}") if loc else r
        )
    return replace(
        d,
        line=line,
        end_line=end_line,
        end_column=end_column,
        cell=cell,
        fix=fix,
        related=tuple(related),
        message=_LINE_REF.sub(lambda m: _line_ref(book, m), d.message),
    )


#: "line 15" / "lines 3" in a message: a line of the program, said as a cell's line
_LINE_REF = re.compile(r"\bline (\d+)\b")


def _line_ref(book: Notebook, m: re.Match) -> str:
    where = book.locate(int(m.group(1)))
    return f"cell {where[0]}, line {where[1]}" if where else m.group(0)


def _cell_line(book: Notebook, cell: int, line: int) -> str:
    lines = book.cell(cell).source.split("\n")
    return lines[line - 1] if 0 < line <= len(lines) else ""
