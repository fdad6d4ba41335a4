"""What the graph pass tells the rest of nnlint about a model: its sizes, its unused modules, its class count."""

from __future__ import annotations

from typing import Any

from torch import nn

from nnlint.contexts.graph import GraphContext
from nnlint.passes.graph.tensors import nbytes_of
from nnlint.vocab import CLASSIFIER_LOSSES


def model_info(ctx: GraphContext | None, model: nn.Module, batch_size: int | None = None) -> dict[str, Any]:
    """Sizes measured on the (meta) model: parameters, buffers, activations of one
    forward, and the estimate of what a forward+backward step needs."""
    seen: set[int] = set()
    n_params = p_bytes = trainable_bytes = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        n_params += p.numel()
        p_bytes += nbytes_of(p)
        if p.requires_grad:
            trainable_bytes += nbytes_of(p)
    b_bytes = sum(nbytes_of(b) for b in model.buffers())
    act = sum(n.nbytes for n in ctx.nodes if n.op in ("call_module", "call_function", "call_method")) if ctx else 0
    # weights + gradients + optimizer-free step: activations are kept for backward
    estimated = p_bytes + b_bytes + trainable_bytes + 2 * act
    info: dict[str, Any] = {
        "parameters": int(n_params),
        "param_bytes": int(p_bytes),
        "buffer_bytes": int(b_bytes),
        "activation_bytes": int(act),
        "estimated_bytes": int(estimated),
    }
    if ctx is not None:
        info.update(
            {
                "fallback": ctx.fallback,
                "nodes": len(ctx.nodes),
                "output_shapes": [list(s) for s in ctx.output_shapes],
                "failure": None if ctx.failure is None else ctx.failure.kind,
            }
        )
    return info


def unused_modules(ctx: Any) -> list[str]:
    """Qualified names of the modules the forward never runs or whose output it discards
    (NN202's findings): the probe need not report their missing gradients again."""
    if ctx.failure is not None:
        return []
    out = [q for q in ctx.modules if q and q not in ctx.executed]
    out += [n.target for n in ctx.nodes if n.op == "call_module" and n.tensor_out and n.idx not in ctx.live]
    return sorted(set(out))


def infer_classes(ctx: GraphContext) -> int | None:
    """k of the head, when the file's loss says it is a classifier: the class dimension of
    the first output (the last one for a (batch, time, vocab) language model)."""
    if not ctx.output_shapes or ctx.loss_name not in CLASSIFIER_LOSSES:
        return None
    shape = ctx.output_shapes[0]
    if len(shape) < 2:
        return None
    if ctx.loss_name in ("BCEWithLogitsLoss", "BCELoss", "MultiLabelSoftMarginLoss"):
        return int(shape[-1])
    token_input = any((ctx.nodes[i].dtype or "").startswith("int") for i in ctx.placeholders)
    return int(shape[-1]) if len(shape) == 3 and token_input else int(shape[1])
