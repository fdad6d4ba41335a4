"""How an example's inputs reach ``forward``: positional and keyword arguments, bound to its parameter names."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn


def bind_inputs(
    model: nn.Module, args: tuple, kwargs: dict
) -> tuple[list[str], dict[str, Any], inspect.Signature | None]:
    """(names of the arguments given, name -> value, signature) for ``model.forward``."""
    try:
        sig = inspect.signature(model.forward)
        bound = sig.bind(*args, **kwargs)
    except (TypeError, ValueError):
        return (
            [f"arg{i}" for i in range(len(args))] + list(kwargs),
            {**{f"arg{i}": a for i, a in enumerate(args)}, **kwargs},
            None,
        )
    return list(bound.arguments), dict(bound.arguments), sig


def split_inputs(inputs: Any) -> tuple[tuple, dict]:
    if inputs is None:
        return (), {}
    if isinstance(inputs, dict):
        return (), dict(inputs)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    return (inputs,), {}
