"""Shared by NN202/NN203: the dead regions of a traced forward."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nnlint.contexts.graph import GraphContext


def dead_regions(ctx: GraphContext) -> list[list[Any]]:
    """Groups (weakly connected) of computation nodes whose values never reach the output
    nor a side effect, in execution order. Empty when the forward failed."""
    if ctx.failure is not None or ctx.output is None:
        return []
    import networkx as nx

    live = ctx.live
    dead = [
        n
        for n in ctx.nodes
        if n.idx not in live and n.op in ("call_module", "call_function", "call_method") and n.tensor_out
    ]
    if not dead:
        return []
    sub = ctx.g.subgraph(n.idx for n in dead)
    regions = [sorted(c) for c in nx.weakly_connected_components(sub)]
    regions.sort(key=lambda c: c[0])
    return [[ctx.nodes[i] for i in comp] for comp in regions]


def region_exempt(ctx: GraphContext, region: list[Any]) -> bool:
    """Dead on purpose: a side-effect statement (stored on self, logged, appended,
    asserted) or a value used only under a condition the constructor or caller chose."""
    lines = {n.line for n in region if n.line}
    if not lines:
        return True  # nothing of it in the user's file: a library's internals
    if any(ctx.source.is_side_effect_line(l) for l in lines):
        return True
    last = max(lines)
    return any(ctx.source.used_only_conditionally(l) for l in sorted(lines)) or ctx.source.used_only_conditionally(last)


def data_dependent(ctx: GraphContext) -> set[int]:
    import networkx as nx

    out: set[int] = set()
    for p in ctx.placeholders:
        out.add(p)
        out.update(nx.descendants(ctx.g, p))
    return out
