"""Helpers shared by the probe rules (and the data rules' ``fmt``): number formatting, where an activation points.

Rules only read the probe's measured numbers; nothing here runs a model."""

from __future__ import annotations

import math
from typing import Any

from nnlint.contexts.probe import ActivationStat, ProbeContext


def fmt(x: float | None) -> str:
    """3 significant digits, plain for ordinary magnitudes, scientific for extreme ones."""
    if x is None:
        return "n/a"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    a = abs(x)
    if 1e-3 <= a < 1e5:
        return f"{x:.3g}"
    return f"{x:.2e}"


def name(ctx: ProbeContext, module: str | None) -> str:
    """A module's qualified name for messages ("" is the model itself)."""
    return module if module else ctx.model_name


def activation_site(act: ActivationStat) -> tuple[str | None, int | None, str]:
    """(module, line, label) to report an activation at: the nn activation module's own
    line; for a functional call, the layer whose output it takes (its ``self.x = ...``),
    else the call's line in forward."""
    if act.is_module:
        return act.module, None, act.module
    if act.producer is not None:
        return act.producer, None, f"the {act.kind} after {act.producer}"
    return act.module or None, act.line, f"the {act.kind} at line {act.line}" if act.line else f"a {act.kind}"


def layer_norms(ctx: ProbeContext, limit: int = 24) -> dict[str, float | None]:
    return {l.module: l.grad_norm for l in ctx.layers[:limit]}


def gradient_layers(ctx: ProbeContext) -> list[Any]:  # Layers whose rel is a positive float (Any: not Optional)
    """Weight layers whose relative gradient is measurable: not embeddings (their
    gradients are sparse by nature), not zero-initialised, not cut off entirely (a
    None/zero gradient is NN309's business, or the effect of a zero-init downstream)."""
    return [
        l
        for l in ctx.layers
        if not l.embedding
        and not l.zero_init
        and not l.zero_grad
        and l.rel is not None
        and l.rel > 0
        and math.isfinite(l.rel)
        and not attention_score_projection(l.module)
    ]


#: attention query/key projections: at init the attention is nearly uniform, so their gradient
#: (through the softmax of q·k) is orders of magnitude below the value path's, by design
_QK_NAMES = {
    "query",
    "key",
    "q_proj",
    "k_proj",
    "q_lin",
    "k_lin",
    "q",
    "k",
    "query_proj",
    "key_proj",
    "wq",
    "wk",
    "to_q",
    "to_k",
    "w_q",
    "w_k",
    "query_key",
    "qk",
}


def attention_score_projection(module: str | None) -> bool:
    if not module:
        return False
    return module.rsplit(".", 1)[-1].lower() in _QK_NAMES
