"""The probe's torch classes and functions, looked up from the names in nnlint.vocab."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from nnlint import vocab


def nn_class(name: str) -> type[Any]:
    """``torch.nn.<name>``; a dotted name is a path below ``torch.nn``."""
    obj: Any = nn
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def nn_classes(names: Iterable[str]) -> tuple[type[Any], ...]:
    """The classes, in a stable order (the names may come as a set)."""
    return tuple(nn_class(n) for n in sorted(names))


def _function(dotted: str) -> Any:
    owner_name, _, attr = dotted.rpartition(".")
    if owner_name == "torch.Tensor":
        owner: Any = torch.Tensor
    else:
        owner = importlib.import_module(owner_name)
    return getattr(owner, attr, None)


def _activation_table() -> dict[Any, str]:
    table: dict[Any, str] = {}
    for dotted, kind in vocab.ACTIVATION_FUNCTION_KIND.items():
        fn = _function(dotted)
        if fn is not None:
            try:
                table[fn] = kind
            except TypeError:  # unhashable builtin: never seen so far
                pass
    return table


WEIGHT_LAYERS = nn_classes(vocab.WEIGHT_LAYER_MODULES)
EMBEDDINGS = nn_classes(vocab.EMBEDDING_MODULES)
ACTIVATION_MODULES = nn_classes(vocab.ACTIVATION_MODULES)
#: batch norms: the layer whose output goes straight into one is scale-invariant
BATCH_NORMS = nn_classes(vocab.BATCHNORM_MODULES)
NORM_BASE = nn_class(vocab.NORM_BASE_MODULE)
INSTANCE_NORM_BASE = nn_class(vocab.INSTANCE_NORM_BASE_MODULE)
VIEW_NAMES = vocab.VIEW_METHODS
#: activation function object -> kind (relu, leaky_relu, elu, selu, gelu, silu, sigmoid, tanh, hardtanh)
ACTIVATIONS = _activation_table()
