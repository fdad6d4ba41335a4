"""Chooses the capture of one forward: torch.fx first, then torch.export, then the eager recorder as the last resort."""

from __future__ import annotations

from torch import nn

from nnlint.contexts.graph import Trace
from nnlint.passes.graph.capture_eager import trace_eager
from nnlint.passes.graph.capture_export import trace_export
from nnlint.passes.graph.capture_fx import trace_fx
from nnlint.passes.graph.lines import UserFile
from nnlint.passes.graph.state import preserved


def capture(model: nn.Module, args: tuple, kwargs: dict, user: UserFile) -> tuple[Trace, bool, str | None]:
    """(the trace, whether it came from the eager fallback, why fx/export could not trace).
    The model's train/eval flags, buffers and RNG are restored afterwards."""
    with preserved(model):
        trace, why = trace_fx(model, args, kwargs, user)
        if trace is None:
            # Python control flow fx cannot follow: torch.export runs it on fake tensors
            exported, why_export = trace_export(model, args, kwargs, user)
            if exported is not None:
                trace, why = exported, None
            else:
                why = f"{why}; torch.export: {why_export}"
        fallback = trace is None
        fx_failure = trace.failure if trace is not None else None
        if trace is None or fx_failure is not None:
            # fx could not trace, or its interpretation failed: the eager run is the authority
            eager = trace_eager(model, args, kwargs, user)
            if fx_failure is not None and eager.failure is None:
                fallback, why = True, f"the fx graph failed where eager forward works ({fx_failure.exc_type})"
            elif trace is not None:
                fallback = False  # keep fx's view but eager's failure (it names the module)
                eager.fx = True
            trace = eager
    return trace, fallback, why
