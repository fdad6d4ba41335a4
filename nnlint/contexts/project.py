"""Source contexts of the user's own modules beside a linted file, parsed once (never imported)."""

from __future__ import annotations

import os

import libcst as cst

from .source import SourceContext

#: a module larger than this is not read (generated code, vendored libraries)
MAX_BYTES = 1_000_000
#: parsed modules kept per process; text-checked on every use, so an edited file is re-read
MAX_ENTRIES = 256

_PARSED: dict[str, tuple[str, SourceContext | None]] = {}


def project_context(path: str) -> SourceContext | None:
    """The parsed module at ``path``, or None when it cannot be read or parsed. Parsed once
    per process while its text stays the same."""
    key = os.path.realpath(path)
    try:
        if os.path.getsize(key) > MAX_BYTES:
            return None
        with open(key, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        return None
    hit = _PARSED.get(key)
    if hit is not None and hit[0] == text:
        return hit[1]
    try:
        ctx: SourceContext | None = SourceContext(key, text, cst.parse_module(text))
    except (cst.ParserSyntaxError, RecursionError):
        ctx = None
    if len(_PARSED) >= MAX_ENTRIES:
        _PARSED.clear()
    _PARSED[key] = (text, ctx)
    return ctx
