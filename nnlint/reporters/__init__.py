"""Reporters turn a RunResult into output. They know diagnostics, never passes."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TextIO

Reporter = Callable[..., None]


def _lazy(module: str) -> Reporter:
    """The module's ``write``, imported on first use: a run pays only for its own format."""

    def write(result: Any, stream: TextIO, **kwargs: Any) -> None:
        importlib.import_module(f"nnlint.reporters.{module}").write(result, stream, **kwargs)

    write.__name__ = write.__qualname__ = f"{module}.write"
    return write


REPORTERS: dict[str, Reporter] = {
    "text": _lazy("text"),
    "json": _lazy("json_report"),
    "sarif": _lazy("sarif"),
    "github": _lazy("github"),
}

__all__ = ["REPORTERS", "Reporter", "TextIO"]
