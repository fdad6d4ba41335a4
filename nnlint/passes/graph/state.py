"""Saves and restores what a forward on real tensors changes: train/eval flags, buffers, the RNG."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


@contextlib.contextmanager
def preserved(model: nn.Module) -> Iterator[None]:
    """Restore what a forward on real tensors changes: train/eval flags, buffers
    (BatchNorm running statistics) and the RNG (dropout)."""
    modes = [(m, m.training) for m in model.modules()]
    real = [(b, b.detach().clone()) for b in model.buffers() if b.device.type != "meta"]
    rng = torch.get_rng_state() if real or any(p.device.type != "meta" for p in model.parameters()) else None
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
        with torch.no_grad():
            for b, saved in real:
                try:
                    b.copy_(saved)
                except RuntimeError:
                    pass
        if rng is not None:
            torch.set_rng_state(rng)
