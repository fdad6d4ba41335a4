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

#: layers that are one affine map of their input
AFFINE_MODULES = {"Linear", "LazyLinear", "Conv1d", "Conv2d", "Conv3d", "LazyConv1d", "LazyConv2d", "LazyConv3d"}
CONV_TRANSPOSE_MODULES = {
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
}
#: resampling ops, module class names and functional names alike
UPSAMPLE_OPS = {
    "Upsample",
    "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
    "PixelShuffle",
    "interpolate",
    "upsample",
    "upsample_nearest",
    "upsample_bilinear",
    "pixel_shuffle",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
}
NORM_MODULES = {
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "SyncBatchNorm",
    "LayerNorm",
    "GroupNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "LocalResponseNorm",
    "RMSNorm",
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
}
NORM_FUNCTIONS = {
    "batch_norm",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "rms_norm",
    "normalize",
    "local_response_norm",
}
#: activation module class -> the functional name of the same activation (its kind)
ACTIVATION_KIND = {
    "ReLU": "relu",
    "ReLU6": "relu6",
    "LeakyReLU": "leaky_relu",
    "PReLU": "prelu",
    "RReLU": "rrelu",
    "ELU": "elu",
    "SELU": "selu",
    "CELU": "celu",
    "GELU": "gelu",
    "SiLU": "silu",
    "Mish": "mish",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
    "Softmax2d": "softmax",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "Hardtanh": "hardtanh",
    "Hardswish": "hardswish",
    "Hardsigmoid": "hardsigmoid",
    "Tanhshrink": "tanhshrink",
    "LogSigmoid": "logsigmoid",
    "Threshold": "threshold",
    "GLU": "glu",
}
ACTIVATION_FUNCTIONS = {
    "relu",
    "relu6",
    "leaky_relu",
    "prelu",
    "rrelu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "mish",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "softplus",
    "softsign",
    "hardtanh",
    "hardswish",
    "hardsigmoid",
    "tanhshrink",
    "logsigmoid",
    "threshold",
    "glu",
    "swish",
}
PASS_THROUGH_MODULES = {
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
    "Identity",
    "Flatten",
    "Unflatten",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
}
#: value-preserving or linear reshaping ops: composing through them keeps a map linear
PASS_THROUGH_FUNCTIONS = {
    "view",
    "reshape",
    "flatten",
    "unflatten",
    "permute",
    "transpose",
    "t",
    "contiguous",
    "squeeze",
    "unsqueeze",
    "clone",
    "to",
    "float",
    "half",
    "double",
    "bfloat16",
    "type",
    "type_as",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "alpha_dropout",
    "feature_alpha_dropout",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "getitem",
    "split",
    "chunk",
    "unbind",
    "narrow",
    "select",
    "expand",
    "expand_as",
    "view_as",
    "reshape_as",
    "movedim",
    "swapaxes",
    "detach",
    "identity",
    "mT",
    "T",
}
#: ops whose (non-tensor) result steers Python: their inputs influence the output
CONTROL_FUNCTIONS = {
    "__bool__",
    "bool",
    "item",
    "tolist",
    "__int__",
    "__float__",
    "__index__",
    "__len__",
    "size",
    "dim",
    "numel",
    "nelement",
    "shape",
    "ndim",
    "ndimension",
    "is_nonzero",
    "equal",
    "data_ptr",
    "stride",
    "__format__",
    "__repr__",
    "numpy",
}
SIDE_EFFECT_FUNCTIONS = {
    "_assert",
    "_assert_is_none",
    "setitem",
    "__setitem__",
    "copy_",
    "print",
    "_assert_async",
    "register_hook",
    "retain_grad",
    "backward",
}

#: tensor functions without side effects: called as a statement, their result is lost
PURE_FUNCTIONS = (ACTIVATION_FUNCTIONS | PASS_THROUGH_FUNCTIONS | NORM_FUNCTIONS | UPSAMPLE_OPS) - {"detach"} | {
    "add",
    "sub",
    "mul",
    "div",
    "matmul",
    "mm",
    "bmm",
    "cat",
    "stack",
    "sum",
    "mean",
    "max",
    "min",
    "exp",
    "log",
    "sqrt",
    "abs",
    "pow",
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "embedding",
    "scaled_dot_product_attention",
    "where",
    "clamp",
    "norm",
    "einsum",
}

#: losses whose use says the model is a classifier (its head's width is the class count)
CLASSIFIER_LOSSES = {"CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss", "BCELoss", "MultiLabelSoftMarginLoss"}


# --- activations, norms, dropout (probe side) ---------------------------------------------


# --- source side (losses, resampling, dtypes, call helpers' tables) -------------------------
