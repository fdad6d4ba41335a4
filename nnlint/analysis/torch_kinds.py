"""Torch semantics by name: what kind of layer (linear, conv, norm, dropout, activation...) a ``torch.nn`` name is."""

from __future__ import annotations

from nnlint.contexts.source import (
    normalize_torch_name,
)
from nnlint.vocab import (
    ACTIVATION_MODULES_KIND,
    BATCHNORM_MODULES,
    CONTAINER_MODULES,
    CONV_MODULES,
    DROPOUT_MODULES,
    EMBEDDING_MODULES,
    INSTANCENORM_MODULES,
    LINEAR_MODULES,
    OTHER_NORM_MODULES_KIND,
)

NORM_KINDS = frozenset({"batchnorm", "instancenorm", "layernorm", "groupnorm", "rmsnorm", "norm"})
AFFINE_KINDS = frozenset({"linear", "conv"})
SATURATING = frozenset({"tanh", "sigmoid"})
RELU_FAMILY = frozenset({"relu", "relu6", "leaky_relu"})
#: kinds that take part in a layer sequence; anything else in a Sequential is opaque
CHAIN_KINDS = AFFINE_KINDS | NORM_KINDS | {"dropout", "act"}


def torch_nn_class(q: str | None) -> str | None:
    """'Conv2d' for 'torch.nn.Conv2d' / 'torch.nn.modules.conv.Conv2d', else None."""
    if not q:
        return None
    q = normalize_torch_name(q)
    parts = q.split(".")
    if len(parts) == 3 and parts[0] == "torch" and parts[1] == "nn" and parts[2][:1].isupper():
        return parts[2]
    return None


def module_kind(q: str | None) -> tuple[str, str | None] | None:
    """(kind, activation) of the torch.nn class named ``q``; None when ``q`` is no
    torch.nn class. Kinds: linear, conv, batchnorm, instancenorm, layernorm, groupnorm,
    rmsnorm, norm, dropout, act, sequential, container, embedding, parameter, module."""
    name = torch_nn_class(q)
    if name is None:
        return None
    if name in LINEAR_MODULES:
        return "linear", None
    if name in CONV_MODULES:
        return "conv", None
    if name in BATCHNORM_MODULES:
        return "batchnorm", None
    if name in INSTANCENORM_MODULES:
        return "instancenorm", None
    if name in OTHER_NORM_MODULES_KIND:
        return OTHER_NORM_MODULES_KIND[name], None
    if name in DROPOUT_MODULES:
        return "dropout", None
    if name in ACTIVATION_MODULES_KIND:
        return "act", ACTIVATION_MODULES_KIND[name]
    if name == "Sequential":
        return "sequential", None
    if name in CONTAINER_MODULES:
        return "container", None
    if name in EMBEDDING_MODULES:
        return "embedding", None
    if name in ("Parameter", "UninitializedParameter"):
        return "parameter", None
    if name in ("Buffer", "UninitializedBuffer"):
        return None
    return "module", None


def short(q: str | None) -> str:
    return (q or "?").rsplit(".", 1)[-1]
