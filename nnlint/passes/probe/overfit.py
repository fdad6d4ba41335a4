"""Extra.OVERFIT: optimizer steps on one tiny batch, and how far the loss fell."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from nnlint.contexts.probe import ProbeContext
from nnlint.example import Example
from nnlint.passes.probe.constants import MIN_BATCH, OVERFIT_LR, SEED
from nnlint.passes.probe.loss import Loss
from nnlint.passes.probe.tensors import map_tensors
from nnlint.passes.state import ModelState, reseed

if TYPE_CHECKING:
    from nnlint.passes.probe.run import Probe


def measure(probe: Probe, ctx: ProbeContext, saved: ModelState, integer_inputs: bool) -> None:
    steps = int(probe.settings.get("overfit_steps") or 30)
    k = min(MIN_BATCH, probe.batch)
    inputs = map_tensors(probe.inputs, lambda t: t[:k].detach() if t.ndim and t.shape[0] == probe.batch else t)
    saved.snapshot_params()
    params = [p for p, rg in zip(saved.params, saved.requires_grad) if rg]
    if not params:
        return
    for p in params:
        p.requires_grad_(True)
    ex = probe.example
    if isinstance(ex.target, torch.Tensor) and ex.target.ndim and ex.target.shape[0] == probe.batch:
        ex = Example(**{**ex.__dict__, "target": ex.target[:k]})
    losses: list[float] = []
    try:
        with torch.enable_grad(), torch.inference_mode(False):
            reseed()
            probe.set_mode(True)
            out = probe.forward(inputs)
            lossf = Loss(ex, out, torch.Generator().manual_seed(SEED + 1), integer_inputs)
            opt = torch.optim.Adam(params, lr=OVERFIT_LR)
            for step in range(steps):
                if step:
                    out = probe.forward(inputs)
                loss = lossf.fn(out)
                if loss.numel() != 1:
                    loss = loss.float().mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            probe.set_mode(False)
            with torch.no_grad():
                final_eval = float(lossf.fn(probe.forward(inputs)).float().mean())
            # BatchNorm's running stats lag after a few steps: eval mode alone can
            # look worse than the fit really is, so take the better of the two
            final = min(final_eval, losses[-1]) if losses else final_eval
        ctx.overfit = {
            "steps": steps,
            "lr": OVERFIT_LR,
            "optimizer": "Adam",
            "samples": k,
            "initial": losses[0] if losses else None,
            "final": final,
            "loss_kind": lossf.info.kind,
            "losses": losses[:: max(1, steps // 10)],
        }
    except Exception as exc:
        ctx.notes.append(f"overfit probe failed: {type(exc).__name__}: {exc}")
    finally:
        saved.restore_params()
