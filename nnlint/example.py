"""How a model is given to the graph and probe passes. Plain data: user files may return
dicts with the same keys from ``nnlint_examples()`` without importing nnlint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EXAMPLE_KEYS = ("model", "inputs", "loss", "target", "name", "data", "classes")


@dataclass
class Example:
    #: an nn.Module instance (or a zero-argument callable that builds one)
    model: Any
    #: a tensor, a tuple of tensors (positional) or a dict of keyword tensors
    inputs: Any = None
    #: callable(output, target) -> scalar loss; None: the probe picks one from the head
    loss: Callable[..., Any] | None = None
    #: the target for ``loss``; None: random targets that fit the loss and head
    target: Any = None
    name: str | None = None
    #: opt-in data probe: an iterable of (inputs, target) batches of real data
    data: Any = None
    #: number of classes of a single-label head, when known
    classes: int | None = None
    #: facts found elsewhere (source file, declaration): e.g. loss_name="CrossEntropyLoss"
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Example:
        unknown = set(d) - set(EXAMPLE_KEYS)
        if unknown:
            raise ValueError(f"unknown key(s) {sorted(unknown)} in an nnlint example; known: {', '.join(EXAMPLE_KEYS)}")
        if "model" not in d:
            raise ValueError("an nnlint example needs a 'model'")
        return cls(**d)
