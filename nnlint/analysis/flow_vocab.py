"""The value-flow analysis' torch vocabulary (full names after import resolution)."""

from __future__ import annotations

# --------------------------------------------------------------------------------------
# torch vocabulary (full names after import resolution)

FUNC_PREFIXES = ("torch.nn.functional.", "torch.special.", "torch.")
SOFTMAX_NAMES = {"softmax": "softmax", "softmin": "softmax", "log_softmax": "log_softmax"}
SIGMOID_NAMES = {"sigmoid", "expit"}
ACT_NAMES = {
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "mish",
    "softplus",
    "tanh",
    "hardtanh",
    "hardswish",
    "hardsigmoid",
    "prelu",
    "rrelu",
    "softsign",
    "tanhshrink",
    "threshold",
    "glu",
    "hardshrink",
    "softshrink",
}
TENSOR_ACT_METHODS = {"softmax", "log_softmax", "sigmoid", "relu", "tanh", "sigmoid_", "relu_", "tanh_"}

MODULE_ACTS = {
    "Softmax": "softmax",
    "Softmin": "softmax",
    "LogSoftmax": "log_softmax",
    "Sigmoid": "sigmoid",
    "ReLU": "act",
    "ReLU6": "act",
    "LeakyReLU": "act",
    "ELU": "act",
    "SELU": "act",
    "CELU": "act",
    "GELU": "act",
    "SiLU": "act",
    "Mish": "act",
    "Softplus": "act",
    "Tanh": "act",
    "Hardtanh": "act",
    "Hardswish": "act",
    "Hardsigmoid": "act",
    "PReLU": "act",
    "RReLU": "act",
    "Softsign": "act",
    "Tanhshrink": "act",
    "Threshold": "act",
    "GLU": "act",
    "Hardshrink": "act",
    "Softshrink": "act",
}
SOFTMAX_MODULES = {"Softmax", "Softmin", "LogSoftmax"}
# module name -> (index of the width argument, its keyword, which dim it sizes)
AFFINE_MODULES = {
    "Linear": (1, "out_features", "last"),
    "LazyLinear": (0, "out_features", "last"),
    "Bilinear": (2, "out_features", "last"),
    **{f"Conv{d}d": (1, "out_channels", "chan") for d in (1, 2, 3)},
    **{f"ConvTranspose{d}d": (1, "out_channels", "chan") for d in (1, 2, 3)},
    **{f"LazyConv{d}d": (0, "out_channels", "chan") for d in (1, 2, 3)},
    **{f"LazyConvTranspose{d}d": (0, "out_channels", "chan") for d in (1, 2, 3)},
}
AFFINE_FUNCS = {
    "linear",
    "bilinear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
}
PASS_MODULES = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "Identity"}
PASS_FUNCS = {"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"}
NORM_MODULES = {
    "BatchNorm1d": None,
    "BatchNorm2d": "yes",
    "BatchNorm3d": "yes",
    "SyncBatchNorm": None,
    "LayerNorm": None,
    "GroupNorm": None,
    "InstanceNorm1d": None,
    "InstanceNorm2d": None,
    "InstanceNorm3d": None,
    "LocalResponseNorm": None,
    "RMSNorm": None,
}
POOL_PREFIXES = ("MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "LPPool")
UPSAMPLE_MODULES = {"Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"}
#: functional resampling: the values keep what made them (logits stay logits)
RESAMPLE_FUNCS = {
    "interpolate",
    "upsample",
    "upsample_nearest",
    "upsample_bilinear",
    *(
        f"{p}{d}d"
        for p in ("avg_pool", "max_pool", "adaptive_avg_pool", "adaptive_max_pool", "lp_pool")
        for d in (1, 2, 3)
    ),
}
LOSS_MODULES = {
    "CrossEntropyLoss": "ce",
    "NLLLoss": "nll",
    "NLLLoss2d": "nll",
    "BCELoss": "bce",
    "BCEWithLogitsLoss": "bcewl",
    "MSELoss": "mse",
}
LOSS_FUNCS = {
    "cross_entropy": "ce",
    "nll_loss": "nll",
    "binary_cross_entropy": "bce",
    "binary_cross_entropy_with_logits": "bcewl",
    "mse_loss": "mse",
}
LOADERS = {"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"}
WRAPPERS = {
    "torch.compile",
    "torch.nn.DataParallel",
    "torch.nn.parallel.DataParallel",
    "torch.nn.parallel.DistributedDataParallel",
    "torch.nn.parallel.distributed.DistributedDataParallel",
    "torch.jit.script",
}
INDEX_DTYPES = {"torch.long", "torch.int64", "torch.int", "torch.int32", "torch.LongTensor", "torch.cuda.LongTensor"}
FLOAT_DTYPES = {
    "torch.float",
    "torch.float32",
    "torch.float64",
    "torch.double",
    "torch.half",
    "torch.float16",
    "torch.bfloat16",
    "torch.FloatTensor",
    "torch.cuda.FloatTensor",
}

TRANSPARENT_METHODS = {"contiguous", "clone", "detach", "cpu", "cuda", "requires_grad_", "type_as", "detach_"}
MODULE_SELF_METHODS = {
    "to",
    "cuda",
    "cpu",
    "train",
    "eval",
    "double",
    "float",
    "half",
    "bfloat16",
    "requires_grad_",
    "share_memory",
    "type",
}
MUTATORS = {
    "append",
    "extend",
    "insert",
    "add_module",
    "register_module",
    "pop",
    "__setitem__",
    "__delitem__",
    "update",
    "register_forward_hook",
    "register_forward_pre_hook",
}
MODEL_PARAM_WORDS = ("model", "net", "classifier", "clf")

LOSS_DISPLAY = {
    "ce": "CrossEntropyLoss",
    "nll": "NLLLoss",
    "bce": "BCELoss",
    "bcewl": "BCEWithLogitsLoss",
    "mse": "MSELoss",
}
