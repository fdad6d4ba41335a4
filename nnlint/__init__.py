"""nnlint: a linter for PyTorch model code (source, graph and probe passes).

``import nnlint`` stays cheap and torch-free; ``nnlint.check`` (the Python API for tests)
imports torch when first used.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "check", "Example", "Report"]


def __getattr__(name: str) -> Any:
    if name in ("check", "Report"):
        from nnlint import api

        return getattr(api, name)
    if name == "Example":
        from nnlint.example import Example

        return Example
    raise AttributeError(f"module 'nnlint' has no attribute {name!r}")
