"""The probe's per-layer measurements as plain JSON-safe data (``summarize``), for the HTML report.

For ``nnlint --report`` and ``Report._repr_html_`` (nnlint/report.py draws them). Read from the ``ProbeContext`` the
probe rules see; nothing is measured again."""

from __future__ import annotations

from typing import Any

from nnlint.contexts.probe import ProbeContext
from nnlint.diagnostics import json_safe


def summarize(ctx: ProbeContext) -> dict[str, Any]:
    own: dict[str, int] = {}
    for p in ctx.params.values():
        n = 1
        for s in p.shape:
            n *= int(s)
        own[p.module] = own.get(p.module, 0) + n
    modules = []
    for m in sorted(ctx.modules.values(), key=lambda m: (m.order, m.name)):
        prefix = f"{m.name}." if m.name else ""
        total = sum(n for mod, n in own.items() if mod == m.name or not m.name or mod.startswith(prefix))
        modules.append(
            {
                "name": m.name,
                "type": m.type,
                "order": m.order,
                "leaf": m.leaf,
                "calls": m.calls,
                "out_shape": list(m.out_shape) if m.out_shape else None,
                "params": total,
                "out_std": m.out_std,
                "grad_norm": m.grad_norm,
                "nonfinite": m.nonfinite,
            }
        )
    layers = [
        {
            "module": l.module,
            "type": l.type,
            "order": l.order,
            "grad_norm": l.grad_norm,
            "rel": l.rel,
            "weight_rms": l.weight_rms,
            "in_std": l.in_std,
            "out_std": l.out_std,
        }
        for l in ctx.layers
    ]
    acts = [
        {
            "kind": a.kind,
            "module": a.module,
            "producer": a.producer,
            "line": a.line,
            "order": a.order,
            "dead_frac": a.dead_frac,
            "saturated_frac": a.saturated_frac,
            "units": a.units,
        }
        for a in ctx.activations
    ]
    loss = (
        None
        if ctx.loss is None
        else {"value": ctx.loss.value, "kind": ctx.loss.kind, "source": ctx.loss.source, "classes": ctx.loss.classes}
    )
    return json_safe(
        {
            "model": ctx.model_name,
            "path": ctx.path,
            "device": ctx.device,
            "batch_size": ctx.batch_size,
            "input_std": ctx.input_std,
            "loss": loss,
            "modules": modules,
            "layers": layers,
            "activations": acts,
        }
    )
