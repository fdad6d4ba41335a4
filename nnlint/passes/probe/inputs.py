"""The probe's batch: re-batch the example's inputs to the probe's batch size (``prepare_inputs``)."""

from __future__ import annotations

import math
from typing import Any

import torch

from nnlint.passes.probe.tensors import first_tensor, map_tensors


def prepare_inputs(inputs: Any, n_wanted: int, gen: torch.Generator) -> tuple[Any, int | None, int | None]:
    """Re-batch every tensor whose dim 0 is the batch to ``n_wanted`` samples (extra
    samples drawn like the given ones). Returns (inputs, new batch, old batch)."""
    first = first_tensor(inputs, floating=False)
    if first is None or first.ndim == 0:
        return inputs, None, None
    b0 = first.shape[0]
    if b0 == n_wanted:
        return inputs, b0, b0

    def fix(t: torch.Tensor) -> torch.Tensor:
        if t.ndim == 0 or t.shape[0] != b0:
            return t
        if n_wanted <= b0:
            return t[:n_wanted]
        extra = n_wanted - b0
        shape = (extra, *t.shape[1:])
        if t.dtype == torch.bool:
            p = t.float().mean().item() if t.numel() else 0.5
            new = torch.rand(shape, generator=gen) < p
        elif t.is_floating_point():
            mean = t.detach().float().mean().item() if t.numel() else 0.0
            std = t.detach().float().std().item() if t.numel() > 1 else 1.0
            if not math.isfinite(std) or std == 0:
                std = 1.0 if t.numel() <= 1 else 0.0
            new = (torch.randn(shape, generator=gen) * std + mean).to(t.dtype)
        elif t.is_complex():
            new = torch.randn(shape, generator=gen, dtype=t.dtype)
        else:
            lo = int(t.min().item()) if t.numel() else 0
            hi = int(t.max().item()) if t.numel() else 1
            new = torch.randint(lo, hi + 1, shape, generator=gen).to(t.dtype)
        return torch.cat([t.detach(), new.to(t.device)], dim=0)

    return map_tensors(inputs, fix), n_wanted, b0
