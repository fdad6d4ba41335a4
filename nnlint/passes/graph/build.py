"""Builds a model on the meta device (no memory for weights) or for real."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def build_meta(build: Callable[[], Any]) -> Any:
    """Build under the meta device: parameters get shapes, no memory."""
    with torch.device("meta"):
        model = build()
    if isinstance(model, nn.Module):
        to_meta(model)
    return model


def to_meta(model: nn.Module) -> None:
    if any(p.device.type != "meta" for p in model.parameters()) or any(
        b.device.type != "meta" for b in model.buffers()
    ):
        model.to("meta")


def build_real(build: Callable[[], Any]) -> Any:
    return build()
