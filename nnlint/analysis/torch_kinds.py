"""Torch semantics by name: what kind of layer (linear, conv, norm, dropout, activation...) a ``torch.nn`` name is."""

from __future__ import annotations

from nnlint.contexts.source import (
    normalize_torch_name,
)

_LINEAR = {"Linear", "LazyLinear"}
_CONV = {
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
}
_BATCHNORM = {
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
    "SyncBatchNorm",
}
_INSTANCENORM = {
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "LazyInstanceNorm1d",
    "LazyInstanceNorm2d",
    "LazyInstanceNorm3d",
}
_OTHER_NORM = {
    "LayerNorm": "layernorm",
    "GroupNorm": "groupnorm",
    "RMSNorm": "rmsnorm",
    "LocalResponseNorm": "norm",
    "CrossMapLRN2d": "norm",
}
_DROPOUT = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"}
_ACT_MODULES = {
    "ReLU": "relu",
    "ReLU6": "relu6",
    "LeakyReLU": "leaky_relu",
    "PReLU": "prelu",
    "RReLU": "rrelu",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "Hardtanh": "hardtanh",
    "Hardsigmoid": "hardsigmoid",
    "Hardswish": "hardswish",
    "GELU": "gelu",
    "SiLU": "silu",
    "Mish": "mish",
    "ELU": "elu",
    "CELU": "celu",
    "SELU": "selu",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "Tanhshrink": "tanhshrink",
    "LogSigmoid": "logsigmoid",
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
    "Softmin": "softmin",
    "Softmax2d": "softmax",
    "GLU": "glu",
    "Threshold": "threshold",
}
_CONTAINERS = {"ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}
_EMBEDDING = {"Embedding", "EmbeddingBag"}

ACT_FUNCS: dict[str, str] = {"torch.special.expit": "sigmoid"}
for _n, _a in [
    ("relu", "relu"),
    ("relu_", "relu"),
    ("relu6", "relu6"),
    ("leaky_relu", "leaky_relu"),
    ("leaky_relu_", "leaky_relu"),
    ("tanh", "tanh"),
    ("sigmoid", "sigmoid"),
    ("hardtanh", "hardtanh"),
    ("hardtanh_", "hardtanh"),
    ("gelu", "gelu"),
    ("silu", "silu"),
    ("mish", "mish"),
    ("elu", "elu"),
    ("elu_", "elu"),
    ("selu", "selu"),
    ("celu", "celu"),
    ("softplus", "softplus"),
    ("softsign", "softsign"),
    ("logsigmoid", "logsigmoid"),
    ("hardsigmoid", "hardsigmoid"),
    ("hardswish", "hardswish"),
    ("softmax", "softmax"),
    ("log_softmax", "log_softmax"),
    ("glu", "glu"),
    ("prelu", "prelu"),
    ("rrelu", "rrelu"),
]:
    ACT_FUNCS[f"torch.nn.functional.{_n}"] = _a
for _n, _a in [
    ("relu", "relu"),
    ("relu_", "relu"),
    ("tanh", "tanh"),
    ("tanh_", "tanh"),
    ("sigmoid", "sigmoid"),
    ("sigmoid_", "sigmoid"),
    ("selu", "selu"),
    ("celu", "celu"),
    ("softmax", "softmax"),
    ("log_softmax", "log_softmax"),
    ("prelu", "prelu"),
    ("rrelu", "rrelu"),
]:
    ACT_FUNCS[f"torch.{_n}"] = _a
ACT_METHODS = {
    "relu": "relu",
    "relu_": "relu",
    "sigmoid": "sigmoid",
    "sigmoid_": "sigmoid",
    "tanh": "tanh",
    "tanh_": "tanh",
}
DROPOUT_FUNCS = {
    "torch.nn.functional.dropout",
    "torch.nn.functional.dropout1d",
    "torch.nn.functional.dropout2d",
    "torch.nn.functional.dropout3d",
    "torch.nn.functional.alpha_dropout",
    "torch.nn.functional.feature_alpha_dropout",
    "torch.dropout",
    "torch.alpha_dropout",
    "torch.feature_alpha_dropout",
}

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
    if name in _LINEAR:
        return "linear", None
    if name in _CONV:
        return "conv", None
    if name in _BATCHNORM:
        return "batchnorm", None
    if name in _INSTANCENORM:
        return "instancenorm", None
    if name in _OTHER_NORM:
        return _OTHER_NORM[name], None
    if name in _DROPOUT:
        return "dropout", None
    if name in _ACT_MODULES:
        return "act", _ACT_MODULES[name]
    if name == "Sequential":
        return "sequential", None
    if name in _CONTAINERS:
        return "container", None
    if name in _EMBEDDING:
        return "embedding", None
    if name in ("Parameter", "UninitializedParameter"):
        return "parameter", None
    if name in ("Buffer", "UninitializedBuffer"):
        return None
    return "module", None


def short(q: str | None) -> str:
    return (q or "?").rsplit(".", 1)[-1]
