"""Reporters turn a RunResult into output. They know diagnostics, never passes."""

from __future__ import annotations

from typing import Callable, TextIO

from nnlint.reporters import github, json_report, sarif, text

Reporter = Callable[..., None]

REPORTERS: dict[str, Reporter] = {
    "text": text.write,
    "json": json_report.write,
    "sarif": sarif.write,
    "github": github.write,
}

__all__ = ["REPORTERS", "Reporter", "TextIO"]
