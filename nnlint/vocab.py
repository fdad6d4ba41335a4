"""The torch vocabulary every pass and rule shares: which ``torch.nn`` classes and functions
are affine layers, norms, activations, dropouts, losses, pass-through ops, and so on, by name.

Names only (strings), so the source pass can import it without importing torch; a pass that
needs the classes looks them up with ``getattr(torch.nn, name)``. One name means one thing here:
a set of module class names is ``*_MODULES``, of functional names ``*_FUNCTIONS``, of tensor
method names ``*_METHODS``; a table that maps a name to a kind says so in its name
(``*_KIND``).
"""

from __future__ import annotations

# --- layers (graph side) ----------------------------------------------------------------


# --- activations, norms, dropout (probe side) ---------------------------------------------

#: weight-bearing layers the probe measures (names under ``torch.nn``; a dotted name is a
#: path below it, for base classes ``torch.nn`` does not export)
WEIGHT_LAYER_MODULES = ("Linear", "Bilinear", "modules.conv._ConvNd", "RNNBase", "Embedding", "EmbeddingBag")
EMBEDDING_MODULES = ("Embedding", "EmbeddingBag")
#: activation modules: a functional activation called inside one is attributed to it
ACTIVATION_MODULES = (
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "ELU",
    "SELU",
    "CELU",
    "GELU",
    "SiLU",
    "Mish",
    "Sigmoid",
    "Tanh",
    "Hardtanh",
    "PReLU",
    "Softplus",
)
#: batch norms whose input tells that the layer before them is scale-invariant
BATCH_NORM_MODULES = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm")
#: base classes: normalisations with running statistics, and the instance norms among them
NORM_BASE_MODULE = "modules.batchnorm._NormBase"
INSTANCE_NORM_BASE_MODULE = "modules.instancenorm._InstanceNorm"
#: tensor methods that reshape (where a batch dimension can be folded away)
VIEW_METHODS = frozenset({"view", "reshape", "flatten", "unflatten", "view_as", "reshape_as"})
#: activation functions, functional and tensor-method forms, by dotted name -> activation kind
#: (``torch.nn.functional.X``, ``torch.X``, ``torch.Tensor.X``); names absent in a torch
#: version are skipped
ACTIVATION_FUNCTION_KIND = {
    **dict.fromkeys(
        (
            "torch.nn.functional.relu",
            "torch.nn.functional.relu_",
            "torch.relu",
            "torch.relu_",
            "torch.Tensor.relu",
            "torch.Tensor.relu_",
        ),
        "relu",
    ),
    **dict.fromkeys(
        ("torch.nn.functional.leaky_relu", "torch.nn.functional.leaky_relu_", "torch.nn.functional.rrelu"),
        "leaky_relu",
    ),
    **dict.fromkeys(("torch.nn.functional.elu", "torch.nn.functional.elu_", "torch.nn.functional.celu"), "elu"),
    **dict.fromkeys(("torch.nn.functional.selu", "torch.selu", "torch.selu_"), "selu"),
    "torch.nn.functional.gelu": "gelu",
    **dict.fromkeys(("torch.nn.functional.silu", "torch.nn.functional.mish"), "silu"),
    **dict.fromkeys(
        (
            "torch.nn.functional.sigmoid",
            "torch.sigmoid",
            "torch.sigmoid_",
            "torch.Tensor.sigmoid",
            "torch.Tensor.sigmoid_",
        ),
        "sigmoid",
    ),
    **dict.fromkeys(
        ("torch.nn.functional.tanh", "torch.tanh", "torch.tanh_", "torch.Tensor.tanh", "torch.Tensor.tanh_"), "tanh"
    ),
    **dict.fromkeys(("torch.nn.functional.hardtanh", "torch.nn.functional.hardtanh_"), "hardtanh"),
}


# --- source side (losses, resampling, dtypes, call helpers' tables) -------------------------
