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
#: torch functions and tensor classes a file calls to make an example input tensor
TENSOR_FACTORIES = {
    "randn",
    "rand",
    "zeros",
    "ones",
    "empty",
    "randint",
    "full",
    "randn_like",
    "tensor",
    "arange",
    "FloatTensor",
    "LongTensor",
    "randperm",
}
#: a loss as the file names it (class or function) -> its torch.nn class, in order of preference
LOSS_CLASS_OF_NAME = {
    "CrossEntropyLoss": "CrossEntropyLoss",
    "cross_entropy": "CrossEntropyLoss",
    "NLLLoss": "NLLLoss",
    "nll_loss": "NLLLoss",
    "BCEWithLogitsLoss": "BCEWithLogitsLoss",
    "binary_cross_entropy_with_logits": "BCEWithLogitsLoss",
    "BCELoss": "BCELoss",
    "binary_cross_entropy": "BCELoss",
    "MultiLabelSoftMarginLoss": "MultiLabelSoftMarginLoss",
    "multilabel_soft_margin_loss": "MultiLabelSoftMarginLoss",
    "MSELoss": "MSELoss",
    "mse_loss": "MSELoss",
    "L1Loss": "L1Loss",
    "l1_loss": "L1Loss",
    "SmoothL1Loss": "SmoothL1Loss",
    "smooth_l1_loss": "SmoothL1Loss",
    "HuberLoss": "HuberLoss",
    "huber_loss": "HuberLoss",
    "KLDivLoss": "KLDivLoss",
    "kl_div": "KLDivLoss",
    "CTCLoss": "CTCLoss",
    "ctc_loss": "CTCLoss",
}


# --- activations, norms, dropout (probe side) ---------------------------------------------

#: weight-bearing layers the probe measures (names under ``torch.nn``; a dotted name is a
#: path below it, for base classes ``torch.nn`` does not export)
WEIGHT_LAYER_MODULES = ("Linear", "Bilinear", "modules.conv._ConvNd", "RNNBase", "Embedding", "EmbeddingBag")
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

# layer kinds of the in-file class model (nnlint/analysis/torch_kinds.py: module_kind)
LINEAR_MODULES = {"Linear", "LazyLinear"}
CONV_MODULES = {
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
BATCHNORM_MODULES = {
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
    "SyncBatchNorm",
}
INSTANCENORM_MODULES = {
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "LazyInstanceNorm1d",
    "LazyInstanceNorm2d",
    "LazyInstanceNorm3d",
}
#: norm module class -> its kind (batch and instance norms are above)
OTHER_NORM_MODULES_KIND = {
    "LayerNorm": "layernorm",
    "GroupNorm": "groupnorm",
    "RMSNorm": "rmsnorm",
    "LocalResponseNorm": "norm",
    "CrossMapLRN2d": "norm",
}
DROPOUT_MODULES = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"}
#: activation module class -> the activation it applies (Softmin included, unlike the graph side)
ACTIVATION_MODULES_KIND = {
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
CONTAINER_MODULES = {"ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}
EMBEDDING_MODULES = {"Embedding", "EmbeddingBag"}
#: qualified functional activation -> its kind
ACTIVATION_QUALNAMES_KIND: dict[str, str] = {
    "torch.special.expit": "sigmoid",
    **{
        f"torch.nn.functional.{name}": kind
        for name, kind in [
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
        ]
    },
    **{
        f"torch.{name}": kind
        for name, kind in [
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
        ]
    },
}
#: tensor activation method -> its kind
ACTIVATION_METHODS_KIND = {
    "relu": "relu",
    "relu_": "relu",
    "sigmoid": "sigmoid",
    "sigmoid_": "sigmoid",
    "tanh": "tanh",
    "tanh_": "tanh",
}
#: functional dropouts by qualified name
DROPOUT_QUALNAMES = {
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

# the value-flow analysis (nnlint/analysis/interpreter.py): how a value is shaped
TORCH_FUNCTION_PREFIXES = ("torch.nn.functional.", "torch.special.", "torch.")
#: functional name -> the value-flow tag it gives its output
SOFTMAX_FUNCTIONS_KIND = {"softmax": "softmax", "softmin": "softmax", "log_softmax": "log_softmax"}
SIGMOID_FUNCTIONS = {"sigmoid", "expit"}
#: functional activations other than softmax and sigmoid (the value-flow tag "act")
OTHER_ACTIVATION_FUNCTIONS = {
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
ACTIVATION_METHODS = {"softmax", "log_softmax", "sigmoid", "relu", "tanh", "sigmoid_", "relu_", "tanh_"}
#: activation module class -> the value-flow tag of its output (softmax, log_softmax, sigmoid, act)
ACTIVATION_MODULES_TAG = {
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
AFFINE_MODULES_WIDTH = {
    "Linear": (1, "out_features", "last"),
    "LazyLinear": (0, "out_features", "last"),
    "Bilinear": (2, "out_features", "last"),
    **{f"Conv{d}d": (1, "out_channels", "chan") for d in (1, 2, 3)},
    **{f"ConvTranspose{d}d": (1, "out_channels", "chan") for d in (1, 2, 3)},
    **{f"LazyConv{d}d": (0, "out_channels", "chan") for d in (1, 2, 3)},
    **{f"LazyConvTranspose{d}d": (0, "out_channels", "chan") for d in (1, 2, 3)},
}
AFFINE_FUNCTIONS = {
    "linear",
    "bilinear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
}
#: modules whose output keeps the value-flow tag of their input
DROPOUT_OR_IDENTITY_MODULES = {
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
    "Identity",
}
#: functional dropouts by short name
DROPOUT_FUNCTIONS = {"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"}
#: norm module class -> "yes" when its input must be a batch (BatchNorm2d/3d), else None
NORM_MODULES_BATCHED = {
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
POOL_MODULE_PREFIXES = ("MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "LPPool")
UPSAMPLE_MODULES = {"Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"}
#: functional resampling: the values keep what made them (logits stay logits)
RESAMPLE_FUNCTIONS = {
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
#: loss module class -> the loss kind (ce, nll, bce, bcewl, mse)
LOSS_MODULES_KIND = {
    "CrossEntropyLoss": "ce",
    "NLLLoss": "nll",
    "NLLLoss2d": "nll",
    "BCELoss": "bce",
    "BCEWithLogitsLoss": "bcewl",
    "MSELoss": "mse",
}
#: functional loss -> the loss kind
LOSS_FUNCTIONS_KIND = {
    "cross_entropy": "ce",
    "nll_loss": "nll",
    "binary_cross_entropy": "bce",
    "binary_cross_entropy_with_logits": "bcewl",
    "mse_loss": "mse",
}
DATALOADER_CLASSES = {"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"}
#: calls that wrap a model and return something that behaves as the model
MODEL_WRAPPERS = {
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
#: tensor methods that return the same values
VALUE_PRESERVING_METHODS = {"contiguous", "clone", "detach", "cpu", "cuda", "requires_grad_", "type_as", "detach_"}
#: nn.Module methods that return the module itself
RETURNS_SELF_MODULE_METHODS = {
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
#: methods that change a container of submodules after it is built
CONTAINER_MUTATOR_METHODS = {
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
#: loss kind -> the module class that shows it in messages
LOSS_KIND_DISPLAY = {
    "ce": "CrossEntropyLoss",
    "nll": "NLLLoss",
    "bce": "BCELoss",
    "bcewl": "BCEWithLogitsLoss",
    "mse": "MSELoss",
}
#: torch.nn layers that compute the same in train and eval mode

# train/eval mode (NN403, rules/training/_modes.py)
MODE_FREE_MODULES = {
    "Linear",
    "Bilinear",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "SELU",
    "CELU",
    "GELU",
    "SiLU",
    "Mish",
    "Tanh",
    "Sigmoid",
    "Hardtanh",
    "Hardswish",
    "Hardsigmoid",
    "Softplus",
    "Softmax",
    "LogSoftmax",
    "Softmax2d",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "Flatten",
    "Unflatten",
    "Identity",
    "Embedding",
    "EmbeddingBag",
    "LayerNorm",
    "GroupNorm",
    "RMSNorm",
    "Upsample",
    "PixelShuffle",
    "PixelUnshuffle",
    "ZeroPad2d",
    "ConstantPad2d",
    "ReflectionPad2d",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "Parameter",
    "ParameterList",
    "ParameterDict",
    "Module",
}
RNN_MODULES = {"RNN", "LSTM", "GRU"}
RNN_CELL_MODULES = {"RNNCell", "LSTMCell", "GRUCell"}

# training scripts (rules/training/_loops.py)
NO_GRAD_CONTEXTS = {
    "torch.no_grad",
    "torch.inference_mode",
    "torch.autograd.no_grad",
    "torch.autograd.grad_mode.no_grad",
    "torch.autograd.grad_mode.inference_mode",
}
SET_GRAD_ENABLED = {
    "torch.set_grad_enabled",
    "torch.autograd.set_grad_enabled",
    "torch.autograd.grad_mode.set_grad_enabled",
}
#: optimizer class names (torch.optim and common third-party ones)
OPTIMIZER_CLASSES = {
    "SGD",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "ASGD",
    "Rprop",
    "LBFGS",
    "SparseAdam",
    "Adafactor",
    "Lion",
    "LAMB",
    "Lamb",
    "Muon",
    "Adam8bit",
    "AdamW8bit",
    "PagedAdamW",
    "PagedAdamW8bit",
    "FusedAdam",
    "FusedLAMB",
    "DeepSpeedCPUAdam",
}
#: distributed autograd: gradients live in a per-``with`` context, not in ``.grad`` (NN401)
DIST_AUTOGRAD_CONTEXTS = {"torch.distributed.autograd.context"}
DIST_AUTOGRAD_BACKWARD = {"torch.distributed.autograd.backward"}
ITERABLE_DATASETS = {
    "torch.utils.data.IterableDataset",
    "torch.utils.data.dataset.IterableDataset",
    "torch.utils.data.IterDataPipe",
    "torchdata.datapipes.iter.IterDataPipe",
}
#: packages whose datasets are iterable pipes (the DataLoader cannot shuffle them)
ITERABLE_DATASET_PACKAGES = ("torchtext.datasets.", "torchdata.")
