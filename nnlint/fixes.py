"""Fixes, the way ruff applies them: ``--fix`` (safe fixes), ``--unsafe-fixes`` (the others
too), ``--diff`` (a unified diff, nothing written) and ``--add-noqa``.

A rule offers a fix by setting ``fix_applicability`` and yielding
``Finding(..., fix=self.make_fix("what it does", edit, ...))``; the edit helpers here
(``replace``, ``add_keyword``, ``insert_before``, ``remove``) turn libcst nodes into
``Edit`` ranges. Fixes are source-pass rules' only: the graph and probe passes measure,
they do not know the text well enough to rewrite it.

Applying: per iteration, the fixes whose edits do not overlap an earlier fix's are applied,
then the file is linted again, until nothing more applies (at most ``MAX_ITERATIONS``, as
ruff does). Files are written atomically (a temp file beside them, then ``os.replace``),
keeping their encoding (BOM and PEP 263 cookie included), line endings and permissions;
notebooks keep their JSON byte-for-byte apart from the edited cells' ``source``.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnlint.diagnostics import Diagnostic, Edit

if TYPE_CHECKING:
    from nnlint.rule import Rule

MAX_ITERATIONS = 10
_NEWLINE = re.compile(r"\r\n|\r|\n")


def table_markdown() -> str:
    """The README's fix table, from the registry (tests/test_fixes.py keeps it current)."""
    from nnlint import registry

    lines = ["| code | name | applicability | the fix |", "|---|---|---|---|"]
    for code, rule in registry.all_rules().items():
        if rule.fix_applicability:
            lines.append(
                f"| {code} | {rule.name} | {rule.fix_applicability} | {rule.fix_summary.replace('|', chr(92) + '|')} |"
            )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# edit helpers for rules (libcst nodes -> Edit)


def span(ctx: Any, node: Any) -> tuple[int, int, int, int]:
    """``node``'s range *with* its own parentheses (libcst positions leave them out, while
    ``code_for_node`` writes them), so that a replacement built from its code fits."""
    line, col, end_line, end_col = ctx.position(node)
    if getattr(node, "lpar", None):
        full = ctx.module.code_for_node(node)
        inner = ctx.module.code_for_node(node.with_changes(lpar=[], rpar=[]))
        at = full.find(inner)
        head, tail = full[:at], full[at + len(inner) :]
        if at >= 0 and "\n" not in head and "\n" not in tail:
            col -= len(head)
            end_col += len(tail)
    return line, col, end_line, end_col


def replace(ctx: Any, node: Any, text: str) -> Edit:
    """Replace ``node``'s code (its parentheses included) with ``text``."""
    line, col, end_line, end_col = span(ctx, node)
    return Edit(line, col, end_line, end_col, text)


def remove(ctx: Any, start: Any, end: Any | None = None) -> Edit:
    """Delete from the start of ``start`` to the end of ``end`` (default ``start``)."""
    line, col, _, _ = ctx.position(start)
    _, _, end_line, end_col = ctx.position(end if end is not None else start)
    return Edit(line, col, end_line, end_col, "")


def insert_before(ctx: Any, node: Any, text: str) -> Edit:
    line, col, _, _ = span(ctx, node)
    return Edit(line, col, line, col, text)


def insert_after(ctx: Any, node: Any, text: str) -> Edit:
    _, _, end_line, end_col = span(ctx, node)
    return Edit(end_line, end_col, end_line, end_col, text)


def wrap(ctx: Any, node: Any, before: str, after: str) -> list[Edit]:
    """``before`` + node + ``after``, touching only the two ends (the node keeps its layout)."""
    l0, c0, l1, c1 = span(ctx, node)
    return [Edit(l0, c0, l0, c0, before), Edit(l1, c1, l1, c1, after)]


def insert_line_before(ctx: Any, stmt: Any, code: str) -> Edit:
    """A new statement ``code`` on its own line above ``stmt``, at its indentation."""
    line, col, _, _ = ctx.position(stmt)
    indent = ctx.lines[line - 1][: col - 1]
    return Edit(line, col, line, col, f"{code}\n{indent}")


def add_keyword(ctx: Any, call: Any, name: str, value: str) -> Edit:
    """``name=value`` appended to ``call``'s arguments: an insertion right after the last
    argument (before its trailing comma, if any), so the call's own layout stays as written."""
    text = f"{name}={value}"
    if call.args:
        _, _, line, col = span(ctx, call.args[-1].value)
        return Edit(line, col, line, col, ", " + text)
    _, _, line, col = ctx.position(call)  # just after ')'
    return Edit(line, col - 1, line, col - 1, text)


def set_keyword(ctx: Any, call: Any, name: str, value: str) -> Edit:
    """``call`` with its ``name=`` argument set to ``value`` (added when missing)."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return replace(ctx, arg.value, value)
    return add_keyword(ctx, call, name, value)


def torch_nn_prefix(ctx: Any) -> str | None:
    """How this file spells ``torch.nn`` (``nn``, ``torch.nn``), or None when it cannot."""
    for local, full in ctx.aliases.items():
        if full == "torch.nn" and "." not in local:
            return local
    if ctx.aliases.get("torch") == "torch":
        return "torch.nn"
    return None


def torch_prefix(ctx: Any) -> str | None:
    return next((local for local, full in ctx.aliases.items() if full == "torch"), None)


def call_spelling(ctx: Any, qualname: str) -> str | None:
    """How this file can spell ``qualname`` (e.g. torch.nn.BCEWithLogitsLoss) with its imports."""
    best = None
    for local, full in ctx.aliases.items():
        if qualname == full:
            return local
        if qualname.startswith(full + "."):
            cand = local + qualname[len(full) :]
            if best is None or len(cand) < len(best):
                best = cand
    return best


def statement_of(ctx: Any, node: Any) -> Any | None:
    """The simple statement line (``x = f(y)``, ``loss.backward()``) that holds ``node``."""
    import libcst as cst

    from nnlint.contexts.source import iter_nodes

    for stmt in iter_nodes(ctx.module, cst.SimpleStatementLine, into_defs=True):
        if any(n is node for n in iter_nodes(stmt, into_defs=True)):
            return stmt
    return None


def move_statement_before(ctx: Any, node: Any, before: Any) -> list[Edit] | None:
    """Edits that move the statement holding ``node`` to just above the one holding
    ``before``, when both are whole lines at the same indentation."""
    a, b = statement_of(ctx, node), statement_of(ctx, before)
    if a is None or b is None or a is b or len(a.body) != 1 or len(b.body) != 1:
        return None
    a0, acol, a1, _ = ctx.position(a)
    b0, bcol, _, _ = ctx.position(b)
    if acol != bcol or a1 >= len(ctx.lines) + 1:
        return None
    text = "\n".join(ctx.lines[a0 - 1 : a1]) + "\n"
    return [Edit(b0, 1, b0, 1, text), Edit(a0, 1, a1 + 1, 1, "")]


_ATOMIC = ("Name", "Attribute", "Call", "Subscript", "SimpleString", "Integer", "Float", "List", "Tuple", "Dict")


def drop_call(ctx: Any, at: Any) -> list[Edit] | None:
    """Edits that remove the activation ``at``: ``F.softmax(h, dim=1)`` / ``torch.relu(h)``
    / ``h.softmax(1)`` / ``self.act(h)`` -> ``h``; an ``nn.Softmax(...)`` element of an
    ``nn.Sequential(...)`` is removed from it. Only the removed text is touched (the rest
    keeps its layout). None where no such mechanical rewrite exists."""
    import libcst as cst

    if not isinstance(at, cst.Call):
        return None
    q = ctx.qualname(at.func) or ""
    if q.startswith("torch.nn.") and q.rsplit(".", 1)[-1][:1].isupper():  # a layer built in a Sequential
        for call, _ in ctx.calls:
            if not (ctx.qualname(call.func) or "").endswith("Sequential"):
                continue
            args = list(call.args)
            for i, a in enumerate(args):
                if a.value is at and not a.star and a.keyword is None:
                    if len(args) == 1:
                        return None
                    if i < len(args) - 1:  # up to the next element
                        l0, c0, _, _ = span(ctx, a.value)
                        l1, c1, _, _ = span(ctx, args[i + 1].value)
                    else:  # the last element: from the end of the one before it
                        _, _, l0, c0 = span(ctx, args[i - 1].value)
                        _, _, l1, c1 = span(ctx, a.value)
                    return [Edit(l0, c0, l1, c1, "")]
        return None
    if q.startswith("torch."):  # F.softmax(h, dim=1), torch.relu(h)
        inner = at.args[0].value if at.args and at.args[0].keyword is None and not at.args[0].star else None
    elif isinstance(at.func, cst.Attribute) and q.startswith("self."):
        # self.act(h): a module attribute applied to one argument
        inner = at.args[0].value if len(at.args) == 1 and at.args[0].keyword is None and not at.args[0].star else None
    elif isinstance(at.func, cst.Attribute):  # h.softmax(dim=1): the tensor method
        inner = at.func.value
    else:
        return None
    if inner is None:
        return None
    a0, a1, a2, a3 = span(ctx, at)
    i0, i1, i2, i3 = span(ctx, inner)
    wrap = type(inner).__name__ not in _ATOMIC and not getattr(inner, "lpar", None)
    return [Edit(a0, a1, i0, i1, "(" if wrap else ""), Edit(i2, i3, a2, a3, ")" if wrap else "")]


# ---------------------------------------------------------------------------------------
# applying edits to text


def _offsets(text: str) -> list[int]:
    """Offset of the start of each line (1-based lines: index 0 unused)."""
    starts = [0, 0]
    for m in _NEWLINE.finditer(text):
        starts.append(m.end())
    return starts


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """``text`` with ``edits`` (1-based line/column, non-overlapping) applied. Newlines in
    replacements follow the text's own line-ending style."""
    nl = newline_of(text)
    starts = _offsets(text)

    def off(line: int, col: int) -> int:
        if line >= len(starts):
            return len(text)
        return min(starts[line] + col - 1, len(text))

    out = text
    for e in sorted(edits, key=lambda e: (e.line, e.column, e.end_line, e.end_column), reverse=True):
        a, b = off(e.line, e.column), off(e.end_line, e.end_column)
        rep = e.replacement if nl == "\n" else _NEWLINE.sub(nl, e.replacement)
        out = out[:a] + rep + out[b:]
    return out


def newline_of(text: str) -> str:
    m = _NEWLINE.search(text)
    return m.group(0) if m else "\n"


def _overlaps(a: Edit, b: Edit) -> bool:
    a0, a1 = (a.cell or 0, a.line, a.column), (a.cell or 0, a.end_line, a.end_column)
    b0, b1 = (b.cell or 0, b.line, b.column), (b.cell or 0, b.end_line, b.end_column)
    if (a.cell or 0) != (b.cell or 0):
        return False
    return not (a1 < b0 or b1 < a0) or (a0 == b0)


def applicable(diags: Iterable[Diagnostic], unsafe: bool) -> list[Diagnostic]:
    """The diagnostics whose fix may be applied now, without overlapping edits."""
    chosen: list[Diagnostic] = []
    taken: list[Edit] = []
    for d in sorted(diags, key=lambda d: d.sort_key):
        if d.fix is None or not d.fix.edits or not (d.fix.safe or unsafe):
            continue
        if any(_overlaps(e, t) for e in d.fix.edits for t in taken):
            continue  # the next iteration, after re-linting
        chosen.append(d)
        taken.extend(d.fix.edits)
    return chosen


# ---------------------------------------------------------------------------------------
# files: read, fix in memory, write back atomically


@dataclass
class SourceFile:
    path: str
    raw: bytes
    text: str  # .py: the decoded file; .ipynb: the notebook's JSON text
    encoding: str = "utf-8"
    bom: bool = False

    @classmethod
    def read(cls, path: str) -> SourceFile:
        raw = Path(path).read_bytes()
        bom = raw.startswith(b"\xef\xbb\xbf")
        encoding = "utf-8"
        if not path.endswith(".ipynb"):
            import io
            import tokenize

            try:
                encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
            except SyntaxError:
                encoding = "utf-8"
            if encoding == "utf-8-sig":
                encoding = "utf-8"
        text = raw[3:].decode(encoding) if bom else raw.decode(encoding)
        return cls(path=path, raw=raw, text=text, encoding=encoding, bom=bom)

    def encode(self, text: str) -> bytes:
        return (b"\xef\xbb\xbf" if self.bom else b"") + text.encode(self.encoding)


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``,
    keeping the file's permission bits."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = None
    fd, tmp = tempfile.mkstemp(prefix=".nnlint-fix-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def lint_text(path: str, text: str, rules: list[Any], cfg: Any, force: bool = False) -> tuple[list[Diagnostic], Any]:
    """Source-pass diagnostics of ``text`` (a .py file's text or a notebook's JSON), noqa
    and per-file ignores applied, notebook positions mapped to cells. Returns the notebook
    object (or None) too; raises ValueError when the text cannot be linted. Like the engine,
    text that never mentions torch is not linted, unless ``force`` (the rule examples)."""
    from nnlint import suppression
    from nnlint.passes import source

    book = None
    program = text
    if path.endswith(".ipynb"):
        from nnlint import notebook

        book = notebook.parse(path, text)
        program = book.program
    if not force and not source.mentions_torch(program):
        return [], book
    try:
        diags, _ = source.run(path, program, rules)
    except source.SyntaxIssue as exc:
        raise ValueError(exc.message) from None
    ignored = cfg.ignored_codes_for(path) if cfg is not None else []
    diags = [d for d in diags if not any(d.code.startswith(c) for c in ignored)]
    diags = suppression.apply(diags, {path: program})
    if book is not None:
        from nnlint import notebook

        diags = [notebook.map_diagnostic(book, d) for d in diags]
    return diags, book


def apply_fixes(text: str, book: Any, chosen: list[Diagnostic]) -> str:
    edits = [e for d in chosen if d.fix is not None for e in d.fix.edits]  # chosen: fixable ones
    if book is None:
        return apply_edits(text, edits)
    by_cell: dict[int, list[Edit]] = {}
    for e in edits:
        by_cell.setdefault(e.cell or 0, []).append(e)
    sources = {cell: apply_edits(book.cell(cell).source, es) for cell, es in by_cell.items() if cell}
    return book.with_sources(sources)


@dataclass
class FixOutcome:
    path: str
    before: str
    after: str
    applied: dict[str, int] = field(default_factory=dict)  # code -> fixes applied
    error: str | None = None
    hidden: int = 0  # unsafe fixes left because --unsafe-fixes was not given

    @property
    def changed(self) -> bool:
        return self.after != self.before


def fix_text(
    path: str, text: str, rules: list[Any], cfg: Any = None, unsafe: bool = False, force: bool = False
) -> FixOutcome:
    """``text`` with every applicable fix applied, re-linting until nothing more applies."""
    out = FixOutcome(path=path, before=text, after=text)
    current = text
    for _ in range(MAX_ITERATIONS):
        try:
            diags, book = lint_text(path, current, rules, cfg, force)
        except ValueError as exc:  # unparsable (NN001 reports it) or not a notebook
            if current != text:
                out.error = str(exc)
            break
        chosen = applicable(diags, unsafe)
        if not chosen:
            out.hidden = 0 if unsafe else sum(1 for d in diags if d.fix is not None and d.fix.edits and not d.fix.safe)
            break
        new = apply_fixes(current, book, chosen)
        if new == current:
            break
        if not _parses(path, new):  # never write a file a fix broke
            out.error = "a fix produced invalid code and was not applied; please report this"
            break
        for d in chosen:
            out.applied[d.code] = out.applied.get(d.code, 0) + 1
        current = new
    out.after = current
    return out


def _parses(path: str, text: str) -> bool:
    import libcst as cst

    try:
        if path.endswith(".ipynb"):
            from nnlint import notebook

            text = notebook.parse(path, text).program
        cst.parse_module(text)
        compile(text, path, "exec", dont_inherit=True, flags=ast.PyCF_ONLY_AST)
    except Exception:
        return False
    return True


def unified_diff(outcome: FixOutcome) -> str:
    if outcome.path.endswith(".ipynb"):  # a diff of the cells' code, not of the JSON
        from nnlint import notebook

        a_book, b_book = notebook.parse(outcome.path, outcome.before), notebook.parse(outcome.path, outcome.after)
        parts = []
        for ca, cb in zip(a_book.cells, b_book.cells):
            if ca.source != cb.source:
                parts.append(
                    "".join(
                        difflib.unified_diff(
                            _lines(ca.source, cell=True),
                            _lines(cb.source, cell=True),
                            f"a/{outcome.path}:cell {ca.index}",
                            f"b/{outcome.path}:cell {cb.index}",
                        )
                    )
                )
        return "".join(parts)
    return "".join(
        difflib.unified_diff(_lines(outcome.before), _lines(outcome.after), f"a/{outcome.path}", f"b/{outcome.path}")
    )


def _lines(text: str, cell: bool = False) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):  # a cell's last line has no newline by design
        lines[-1] += "\n" if cell else "\n\\ No newline at end of file\n"
    return lines


def fix_files(
    files: list[str], rules: Sequence[type[Rule] | Rule], cfg: Any, unsafe: bool, write: bool
) -> list[FixOutcome]:
    outcomes = []
    fixable = [r for r in rules if getattr(r, "pass_", "") == "source"]
    instances = [r(cfg.thresholds.get(r.code)) if isinstance(r, type) else r for r in fixable]
    for path in files:
        try:
            src = SourceFile.read(path)
        except (OSError, UnicodeDecodeError, LookupError):
            continue
        outcome = fix_text(path, src.text, instances, cfg, unsafe)
        if outcome.changed and write:
            write_atomic(path, src.encode(outcome.after))
        outcomes.append(outcome)
    return outcomes


# ---------------------------------------------------------------------------------------
# --add-noqa


def _no_comment_lines(text: str) -> set[int]:
    """Lines a comment cannot be appended to: inside a multi-line string, or ending in a
    backslash continuation."""
    import io
    import tokenize

    bad: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.STRING or getattr(tokenize, "FSTRING_MIDDLE", -1) == tok.type:
                bad.update(range(tok.start[0], tok.end[0]))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    for i, line in enumerate(text.splitlines(), start=1):
        if line.rstrip().endswith("\\"):
            bad.add(i)
    return bad


def add_noqa_to_text(text: str, codes_by_line: dict[int, set[str]]) -> tuple[str, int]:
    """``text`` with ``# noqa: CODES`` appended to each line in ``codes_by_line`` (merged
    into an existing ``# noqa: ...``). Returns (text, lines changed)."""
    from nnlint.suppression import NOQA_RE, in_comment

    nl = newline_of(text)
    parts = _NEWLINE.split(text)
    bad = _no_comment_lines(text)
    changed = 0
    for line, codes in codes_by_line.items():
        if line in bad or not 0 < line <= len(parts):
            continue
        src = parts[line - 1]
        m = next((m for m in NOQA_RE.finditer(src) if in_comment(src, m.start())), None)
        if m is not None:
            if m.group("codes") is None:
                continue  # a bare noqa already silences everything
            have = {c.upper() for c in re.split(r"[\s,]+", m.group("codes")) if c}
            merged = ", ".join(sorted(have | codes))
            new = src[: m.start()] + f"# noqa: {merged}" + src[m.end() :]
        else:
            new = src.rstrip() + f"  # noqa: {', '.join(sorted(codes))}"
        if new != src:
            parts[line - 1] = new
            changed += 1
    return nl.join(parts), changed


def add_noqa(diags: list[Diagnostic], write: bool = True) -> dict[str, int]:
    """Append ``# noqa: CODE`` to every reported line. Returns path -> lines changed."""
    by_file: dict[str, dict[Any, set[str]]] = {}
    for d in diags:
        if d.code.startswith("NN00"):  # tool findings (a syntax error, a crash) are not silenced
            continue
        by_file.setdefault(d.path, {}).setdefault((d.cell, d.line), set()).add(d.code)
    done = {}
    for path, where in by_file.items():
        try:
            src = SourceFile.read(path)
        except (OSError, UnicodeDecodeError, LookupError):
            continue
        if path.endswith(".ipynb"):
            from nnlint import notebook

            book = notebook.parse(path, src.text)
            sources, total = {}, 0
            for cell in sorted({c for c, _ in where if c}):
                lines = {line: codes for (c, line), codes in where.items() if c == cell}
                sources[cell], n = add_noqa_to_text(book.cell(cell).source, lines)
                total += n
            new = book.with_sources({c: s for c, s in sources.items() if s != book.cell(c).source})
        else:
            new, total = add_noqa_to_text(src.text, {line: codes for (_, line), codes in where.items()})
        if total and write:
            write_atomic(path, src.encode(new))
        done[path] = total
    return done
