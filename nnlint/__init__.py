"""nnlint: a linter for PyTorch model code (source, graph and probe passes)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
