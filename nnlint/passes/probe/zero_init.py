"""Extra.ZERO_INIT_CHECK: are zero gradients only the effect of deliberately zero-initialised weights?"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from nnlint.contexts.probe import ProbeContext
from nnlint.passes.probe.tensors import dense
from nnlint.passes.state import ModelState, reseed

if TYPE_CHECKING:
    from nnlint.passes.probe.run import Probe


def measure(probe: Probe, ctx: ProbeContext, saved: ModelState) -> None:
    zero_grads = [s for s in ctx.params.values() if s.grad in ("none", "zero") and s.used and s.requires_grad]
    zero_weights = [s for s in ctx.params.values() if s.zero_weight and not s.name.endswith("bias")]
    if not zero_grads or not zero_weights:
        return
    named = dict(probe.model.named_parameters())
    named_mods = dict(probe.model.named_modules())
    saved.snapshot_params()
    try:
        with torch.no_grad():
            for s in zero_weights:
                p = named[s.name]
                mod = named_mods.get(s.module)
                if p.ndim <= 1 and mod is not None and "norm" in type(mod).__name__.lower():
                    p.fill_(1.0)
                else:
                    p.normal_(0.0, 0.02, generator=None)
        with torch.enable_grad(), torch.inference_mode(False):
            reseed()
            probe.set_mode(True)
            out = probe.forward(probe.inputs)
            probe.loss.total(out).backward()
        for s in zero_grads:
            g = named[s.name].grad
            if g is not None and bool(torch.count_nonzero(dense(g)) > 0):
                s.zero_grad_explained = True
    except Exception as exc:
        ctx.notes.append(f"zero-init re-check failed: {type(exc).__name__}: {exc}")
    finally:
        saved.restore_params()
