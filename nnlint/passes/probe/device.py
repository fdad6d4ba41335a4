"""Which device the probe runs on (``resolve_device``)."""

from __future__ import annotations

import torch
from torch import nn


def resolve_device(requested: str | None, model: nn.Module | None = None) -> tuple[torch.device, str]:
    """``auto``: CUDA when available (the model's own CUDA device when it already lives
    there), else CPU. ``cuda`` without CUDA falls back to CPU with a note."""
    requested = (requested or "auto").lower()
    note = ""
    if model is not None:
        try:
            p = next(model.parameters())
        except (StopIteration, AttributeError, TypeError):
            p = None
        if p is not None and p.device.type == "cuda" and requested in ("auto", "cuda"):
            return p.device, note
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda"), note
    if requested == "cuda":
        note = "CUDA was requested but is not available; the probe ran on the CPU"
    return torch.device("cpu"), note
