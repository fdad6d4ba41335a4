"""What a forward on real tensors changes, restored: the shared ``ModelState`` plus the torch RNG."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from nnlint.passes.state import ModelState


@contextlib.contextmanager
def preserved(model: nn.Module) -> Iterator[None]:
    """Restore what a forward on real tensors changes: train/eval flags, buffers (BatchNorm
    running statistics), gradients, and the RNG (dropout). The RNG is forked, not seeded:
    seeding would change the graph pass's dropout draws."""
    with torch.random.fork_rng(devices=[]), ModelState(model):
        yield
