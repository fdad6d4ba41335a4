"""What a probe run returns (``ProbeResult``) or raises when user code fails (``ProbeError``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nnlint.diagnostics import Diagnostic


class ProbeError(RuntimeError):
    """User code failed while the probe ran it. ``phase`` is one of ``forward``,
    ``loss``, ``backward``, ``data``; the original exception is ``__cause__``. The
    model's state has been restored when this is raised."""

    def __init__(self, phase: str, exc: BaseException) -> None:
        super().__init__(f"{phase} failed: {type(exc).__name__}: {exc}")
        self.phase = phase
        self.exc = exc


class ProbeResult(list):
    """The diagnostics (a list), plus ``errors``: rules that crashed (the others ran), and
    ``notes``: one-line remarks for the user (an extra measurement that could not run, a
    CUDA request served on the CPU)."""

    def __init__(
        self, items: Iterable[Diagnostic] = (), errors: list[str] | None = None, notes: list[str] | None = None
    ) -> None:
        super().__init__(items)
        self.errors: list[str] = errors or []
        self.notes: list[str] = notes or []
        #: the per-layer measurements (nnlint/passes/probe/stats.py), for --report
        self.stats: dict[str, Any] | None = None


# ---------------------------------------------------------------------------------------
