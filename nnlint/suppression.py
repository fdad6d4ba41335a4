"""``# noqa`` handling, applied by the engine after every pass (source, graph, probe alike).

- ``x = f(y)  # noqa: NN101, NN102`` suppresses those codes (or prefixes) on that line;
- a bare ``# noqa`` suppresses everything on the line;
- ``# nnlint: noqa`` on a line of its own suppresses the whole file,
  ``# nnlint: noqa: NN3`` only those codes in the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nnlint.diagnostics import Diagnostic

NOQA_RE = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]*(?:[\s,]+[A-Z]+[0-9]*)*))?", re.IGNORECASE)
FILE_NOQA_RE = re.compile(
    r"^\s*#\s*nnlint:\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]*(?:[\s,]+[A-Z]+[0-9]*)*))?\s*$", re.IGNORECASE
)
ALL = None  # marker: every code


@dataclass
class Suppressions:
    by_line: dict[int, set[str] | None] = field(default_factory=dict)
    file_codes: set[str] | None = field(default_factory=set)  # None = whole file

    def suppresses(self, diag: Diagnostic) -> bool:
        if self.file_codes is None or _hit(diag.code, self.file_codes):
            return True
        if diag.line in self.by_line:
            codes = self.by_line[diag.line]
            return codes is None or _hit(diag.code, codes)
        return False


def _hit(code: str, codes: set[str]) -> bool:
    return any(code.startswith(c) for c in codes)


def _codes(text: str | None) -> set[str] | None:
    if not text:
        return None
    return {c.upper() for c in re.split(r"[\s,]+", text.strip()) if c}


def parse(text: str) -> Suppressions:
    sup = Suppressions()
    if "noqa" not in text.lower():
        return sup
    for lineno, line in enumerate(text.splitlines(), start=1):
        if "noqa" not in line.lower():
            continue
        m = FILE_NOQA_RE.match(line)
        if m:
            codes = _codes(m.group("codes"))
            if codes is None:
                sup.file_codes = None
            elif sup.file_codes is not None:
                sup.file_codes |= codes
            continue
        for m in NOQA_RE.finditer(line):  # the first one in a comment, not one inside a string before it
            if in_comment(line, m.start()):
                sup.by_line[lineno] = _codes(m.group("codes"))
                break
    return sup


def in_comment(line: str, hash_at: int) -> bool:
    """True when the '#' at ``hash_at`` is in a comment (it starts one, or an earlier '#'
    did: `# type: ignore  # noqa`), not in a string's content."""
    quote = None
    i = 0
    while i < hash_at:
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return True
        i += 1
    return quote is None


def apply(diags: list[Diagnostic], text_by_path: dict[str, str]) -> list[Diagnostic]:
    cache: dict[str, Suppressions] = {}
    kept = []
    for d in diags:
        if d.code == "NN001":  # a syntax error cannot be silenced by the file it breaks
            kept.append(d)
            continue
        text = text_by_path.get(d.path)
        if text is None:
            kept.append(d)
            continue
        if d.path not in cache:
            cache[d.path] = parse(text)
        if not cache[d.path].suppresses(d):
            kept.append(d)
    return kept
