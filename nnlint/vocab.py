"""The torch vocabulary every pass and rule shares: which ``torch.nn`` classes and functions
are affine layers, norms, activations, dropouts, losses, pass-through ops, and so on, by name.

Names only (strings), so the source pass can import it without importing torch; a pass that
needs the classes looks them up with ``getattr(torch.nn, name)``. One name means one thing here:
a set of module class names is ``*_MODULES``, of functional names ``*_FUNCTIONS``, of tensor
method names ``*_METHODS``; a table that maps a name to a kind says so in its name
(``*_KIND``).

Organised by concept. Each torch name is listed once, in a *base table* (a literal: layers by
kind, activations, norms, dropout, losses, ...); every other set is *derived* from the base
tables (unions, differences, comprehensions) with a comment saying who uses it and for what.
A derived set may still name a few members of a base table to pick a subset or to leave one
out: those are references, not a second listing (tests/test_vocab_unique.py checks that no
name appears in two base tables).
"""

from __future__ import annotations

_DIMS = (1, 2, 3)


def _nd(prefix: str) -> tuple[str, ...]:
    """``Conv`` -> ``("Conv1d", "Conv2d", "Conv3d")``: the 1-, 2- and 3-d forms of a layer or function."""
    return tuple(f"{prefix}{d}d" for d in _DIMS)


# === nn.Module classes, containers and wrappers ==========================================

#: bases that make a class of the file an nn.Module (SourceContext.is_module_class)
TORCH_MODULE_BASES = {
    "torch.nn.Module",
    "torch.nn.modules.module.Module",
    "pytorch_lightning.LightningModule",
    "lightning.LightningModule",
    "lightning.pytorch.LightningModule",
    "torch.nn.Sequential",
    "torch.nn.ModuleList",
    "torch.nn.ModuleDict",
}
#: containers of submodules or parameters (the in-file class model)
CONTAINER_MODULES = {"ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}
#: calls that wrap a model and return something that behaves as the model
MODEL_WRAPPERS = {
    "torch.compile",
    "torch.nn.DataParallel",
    "torch.nn.parallel.DataParallel",
    "torch.nn.parallel.DistributedDataParallel",
    "torch.nn.parallel.distributed.DistributedDataParallel",
    "torch.jit.script",
}


# === layers ===============================================================================

# base: linear and convolution layers, their functional forms (ordered: tables below keep it)
_LINEAR = ("Linear", "LazyLinear")
_BILINEAR = "Bilinear"
_CONV = _nd("Conv")
_CONV_TRANSPOSE = _nd("ConvTranspose")
_LAZY_CONV = _nd("LazyConv")
_LAZY_CONV_TRANSPOSE = _nd("LazyConvTranspose")
_CONV_FUNCTIONS = _nd("conv")
_CONV_TRANSPOSE_FUNCTIONS = _nd("conv_transpose")

#: linear layers (the in-file class model's layer kind "linear")
LINEAR_MODULES = set(_LINEAR)
#: transposed convolutions (the graph pass: they resample)
CONV_TRANSPOSE_MODULES = {*_CONV_TRANSPOSE, *_LAZY_CONV_TRANSPOSE}
#: every convolution, transposed or not (the in-file class model's layer kind "conv")
CONV_MODULES = {*_CONV, *_LAZY_CONV} | CONV_TRANSPOSE_MODULES
#: layers that are one affine map of their input (graph side): linear and plain convolutions
AFFINE_MODULES = LINEAR_MODULES | {*_CONV, *_LAZY_CONV}
#: functional affine maps (value flow), transposed convolutions included
AFFINE_FUNCTIONS = {"linear", "bilinear", *_CONV_FUNCTIONS, *_CONV_TRANSPOSE_FUNCTIONS}
#: functional linear and plain convolutions, as the graph's call targets name them (NN204)
LINEAR_CONV_FUNCTIONS = {"linear", *_CONV_FUNCTIONS}


def _width_arg(name: str) -> int:
    """Position of ``out_features``/``out_channels``: lazy layers have no ``in_*`` before it."""
    return 0 if name.startswith("Lazy") else 1


# module name -> (index of the width argument, its keyword, which dim it sizes)
AFFINE_MODULES_WIDTH = {
    **{n: (_width_arg(n), "out_features", "last") for n in _LINEAR},
    _BILINEAR: (2, "out_features", "last"),
    **{
        n: (_width_arg(n), "out_channels", "chan")
        for n in (*_CONV, *_CONV_TRANSPOSE, *_LAZY_CONV, *_LAZY_CONV_TRANSPOSE)
    },
}

#: base: embedding layers
EMBEDDING_MODULES = {"Embedding", "EmbeddingBag"}
#: base: recurrent layers, and their single-step cells
RNN_MODULES = {"RNN", "LSTM", "GRU"}
RNN_CELL_MODULES = {"RNNCell", "LSTMCell", "GRUCell"}

#: weight-bearing layers the probe measures (names under ``torch.nn``; a dotted name is a
#: path below it, for base classes ``torch.nn`` does not export)
WEIGHT_LAYER_MODULES = (
    _LINEAR[0],
    _BILINEAR,
    "modules.conv._ConvNd",
    "RNNBase",
    *sorted(EMBEDDING_MODULES),
)

# base: pooling, module class prefix -> functional prefix (``MaxPool2d`` / ``max_pool2d``)
_POOLS = {
    "MaxPool": "max_pool",
    "AvgPool": "avg_pool",
    "AdaptiveAvgPool": "adaptive_avg_pool",
    "AdaptiveMaxPool": "adaptive_max_pool",
    "LPPool": "lp_pool",
}
#: pooling module class prefixes (value flow)
POOL_MODULE_PREFIXES = tuple(_POOLS)
#: average poolings, modules and functions: linear maps (they pass through an affine chain)
_AVG_POOL_MODULES = {*_nd("AvgPool"), *_nd("AdaptiveAvgPool")}
_AVG_POOL_FUNCTIONS = {*_nd("avg_pool"), *_nd("adaptive_avg_pool")}

# base: resampling
#: resampling module classes (value flow: the values keep what made them)
UPSAMPLE_MODULES = {"Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"}
_UPSAMPLE_FUNCTIONS = ("interpolate", "upsample", "upsample_nearest", "upsample_bilinear")
_PIXEL_SHUFFLE_MODULES = ("PixelShuffle", "PixelUnshuffle")
_PIXEL_SHUFFLE_FUNCTION = "pixel_shuffle"
#: padding layers
_PAD_MODULES = ("ZeroPad2d", "ConstantPad2d", "ReflectionPad2d")
#: layers that only reshape or pass their input on
_SHAPE_MODULES = ("Flatten", "Unflatten")
_IDENTITY_MODULE = "Identity"

#: resampling ops, module class names and functional names alike (graph side: they change
#: the spatial size, transposed convolutions included)
UPSAMPLE_OPS = (
    UPSAMPLE_MODULES
    | {_PIXEL_SHUFFLE_MODULES[0], _PIXEL_SHUFFLE_FUNCTION}
    | set(_UPSAMPLE_FUNCTIONS)
    | set(_CONV_TRANSPOSE_FUNCTIONS)
)
#: functional resampling and pooling (value flow: the values keep what made them, logits
#: stay logits)
RESAMPLE_FUNCTIONS = {*_UPSAMPLE_FUNCTIONS, *(f for prefix in _POOLS.values() for f in _nd(prefix))}


# === activations ==========================================================================

# base: activation module class -> the functional name of the same activation
# (first the activations the probe attributes functional activations to, in its order)
_PROBED_ACTIVATIONS = {
    "ReLU": "relu",
    "ReLU6": "relu6",
    "LeakyReLU": "leaky_relu",
    "ELU": "elu",
    "SELU": "selu",
    "CELU": "celu",
    "GELU": "gelu",
    "SiLU": "silu",
    "Mish": "mish",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Hardtanh": "hardtanh",
    "PReLU": "prelu",
    "Softplus": "softplus",
}
_OTHER_ACTIVATIONS = {
    "RReLU": "rrelu",
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
    "Softmax2d": "softmax",
    "Softsign": "softsign",
    "Hardswish": "hardswish",
    "Hardsigmoid": "hardsigmoid",
    "Tanhshrink": "tanhshrink",
    "LogSigmoid": "logsigmoid",
    "Threshold": "threshold",
    "GLU": "glu",
}
#: (activations only the in-file class model and value flow know: the graph side does not)
_SOURCE_ONLY_ACTIVATIONS = {
    "Softmin": "softmin",
    "Hardshrink": "hardshrink",
    "Softshrink": "softshrink",
}
_ACTIVATIONS = {**_PROBED_ACTIVATIONS, **_OTHER_ACTIVATIONS, **_SOURCE_ONLY_ACTIVATIONS}
#: base: in-place functional activations (``torch.nn.functional.relu_``, ...)
_INPLACE_FUNCTIONAL_ACTIVATIONS = ("relu_", "leaky_relu_", "hardtanh_", "elu_")

#: activation module class -> the functional name of the same activation (its kind; graph side)
ACTIVATION_KIND = {**_PROBED_ACTIVATIONS, **_OTHER_ACTIVATIONS}
#: activation module class -> the activation it applies (in-file class model): the graph
#: side's ACTIVATION_KIND and Softmin
ACTIVATION_MODULES_KIND = {**ACTIVATION_KIND, "Softmin": _SOURCE_ONLY_ACTIVATIONS["Softmin"]}
#: functional activations by short name (graph side), with the ``swish`` alias
ACTIVATION_FUNCTIONS = set(ACTIVATION_KIND.values()) | {"swish"}
#: activation modules the probe attributes functional activations to (a functional
#: activation called inside one is attributed to it)
ACTIVATION_MODULES = tuple(_PROBED_ACTIVATIONS)
#: tensor activation method -> its kind (base: the tensor methods the analyses follow)
ACTIVATION_METHODS_KIND = {
    "relu": "relu",
    "relu_": "relu",
    "sigmoid": "sigmoid",
    "sigmoid_": "sigmoid",
    "tanh": "tanh",
    "tanh_": "tanh",
}
#: qualified functional activation -> its kind (in-file layer chains): every functional
#: activation but tanhshrink and threshold, the in-place ones, and the ``torch.*`` forms
ACTIVATION_QUALNAMES_KIND: dict[str, str] = {
    "torch.special.expit": "sigmoid",
    **{
        f"torch.nn.functional.{name}": name.rstrip("_")
        for name in (
            *(f for f in dict.fromkeys(ACTIVATION_KIND.values()) if f not in {"tanhshrink", "threshold"}),
            *_INPLACE_FUNCTIONAL_ACTIVATIONS,
        )
    },
    **{
        f"torch.{name}": name.rstrip("_")
        for name in (
            *ACTIVATION_METHODS_KIND,
            "selu",
            "celu",
            "softmax",
            "log_softmax",
            "prelu",
            "rrelu",
        )
    },
}
#: activation functions, functional and tensor-method forms, by dotted name -> activation kind
#: (``torch.nn.functional.X``, ``torch.X``, ``torch.Tensor.X``) for the probe; the kind is the
#: gain family (rrelu is leaky_relu, celu is elu, mish is silu). Names absent in a torch
#: version are skipped. Order kept: the probe resolves the names in this order.
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

# value-flow tags of activations (nnlint/analysis/interpreter.py): softmax, log_softmax,
# sigmoid, or "act" for any other activation
#: functional name -> the value-flow tag it gives its output (base)
SOFTMAX_FUNCTIONS_KIND = {"softmax": "softmax", "softmin": "softmax", "log_softmax": "log_softmax"}
#: functional sigmoids by short name (base)
SIGMOID_FUNCTIONS = {"sigmoid", "expit"}
#: activations the value flow does not tag (logsigmoid gives log-probabilities)
_UNTAGGED_ACTIVATIONS = {"logsigmoid"}


def _value_tag(function: str) -> str:
    """The value-flow tag of an activation's output, by its functional name."""
    return SOFTMAX_FUNCTIONS_KIND.get(function) or ("sigmoid" if function in SIGMOID_FUNCTIONS else "act")


#: functional activations other than softmax and sigmoid (the value-flow tag "act")
OTHER_ACTIVATION_FUNCTIONS = {
    f for f in _ACTIVATIONS.values() if f not in _UNTAGGED_ACTIVATIONS and _value_tag(f) == "act"
}
#: activation module class -> the value-flow tag of its output (softmax, log_softmax,
#: sigmoid, act); Softmax2d and LogSigmoid are not followed
ACTIVATION_MODULES_TAG = {
    m: _value_tag(f) for m, f in _ACTIVATIONS.items() if m != "Softmax2d" and f not in _UNTAGGED_ACTIVATIONS
}
#: softmax-like module classes (value flow)
SOFTMAX_MODULES = {m for m, tag in ACTIVATION_MODULES_TAG.items() if tag in ("softmax", "log_softmax")}
#: tensor activation methods the value flow follows: ACTIVATION_METHODS_KIND and softmaxes
ACTIVATION_METHODS = set(ACTIVATION_METHODS_KIND) | (SOFTMAX_FUNCTIONS_KIND.keys() - {"softmin"})


# === normalisation ========================================================================

# base: norm layers (ordered: tables below keep it)
_BATCHNORM = (*_nd("BatchNorm"), "SyncBatchNorm")
_LAZY_BATCHNORM = _nd("LazyBatchNorm")
_INSTANCENORM = _nd("InstanceNorm")
_LAZY_INSTANCENORM = _nd("LazyInstanceNorm")
#: norm module class -> its kind (base: the norms other than batch and instance norms)
OTHER_NORM_MODULES_KIND = {
    "LayerNorm": "layernorm",
    "GroupNorm": "groupnorm",
    "RMSNorm": "rmsnorm",
    "LocalResponseNorm": "norm",
    "CrossMapLRN2d": "norm",
}
#: base: functional norms by short name
NORM_FUNCTIONS = {
    "batch_norm",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "rms_norm",
    "normalize",
    "local_response_norm",
}
#: base classes: normalisations with running statistics, and the instance norms among them
NORM_BASE_MODULE = "modules.batchnorm._NormBase"
INSTANCE_NORM_BASE_MODULE = "modules.instancenorm._InstanceNorm"

#: batch norms, lazy ones included (in-file class model)
BATCHNORM_MODULES = {*_BATCHNORM, *_LAZY_BATCHNORM}
#: instance norms, lazy ones included (in-file class model)
INSTANCENORM_MODULES = {*_INSTANCENORM, *_LAZY_INSTANCENORM}
#: norm layers (graph side): no lazy instance norm, no CrossMapLRN2d
NORM_MODULES = BATCHNORM_MODULES | set(_INSTANCENORM) | (OTHER_NORM_MODULES_KIND.keys() - {"CrossMapLRN2d"})
#: norm module class -> "yes" when its input must be a batch (BatchNorm2d/3d), else None
#: (value flow; no lazy norm)
NORM_MODULES_BATCHED = {
    m: ("yes" if m in _BATCHNORM[1:3] else None)
    for m in (*_BATCHNORM, *_INSTANCENORM, *OTHER_NORM_MODULES_KIND)
    if m in NORM_MODULES
}


# === dropout ==============================================================================

#: base: dropout layers
DROPOUT_MODULES = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"}
#: base: functional dropouts by short name
DROPOUT_FUNCTIONS = {"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"}
#: functional dropouts by qualified name: ``torch.nn.functional.*``, and ``torch.*`` for
#: those without a dimension
DROPOUT_QUALNAMES = {f"torch.nn.functional.{f}" for f in DROPOUT_FUNCTIONS} | {
    f"torch.{f}" for f in DROPOUT_FUNCTIONS if not f.endswith(("1d", "2d", "3d"))
}
#: modules whose output keeps the value-flow tag of their input
DROPOUT_OR_IDENTITY_MODULES = DROPOUT_MODULES | {_IDENTITY_MODULE}


# === tensor ops and methods ===============================================================

#: base: tensor methods that reshape (where a batch dimension can be folded away)
VIEW_METHODS = frozenset({"view", "reshape", "flatten", "unflatten", "view_as", "reshape_as"})
# base: methods shared by tensors and modules
_CAST_METHODS = {"to", "float", "half", "double", "bfloat16", "type"}
_DEVICE_METHODS = {"cpu", "cuda"}
_REQUIRES_GRAD = "requires_grad_"
#: base: tensor methods that copy or detach (values unchanged)
_COPY_METHODS = {"contiguous", "clone", "detach", "type_as"}

#: value-preserving or linear reshaping ops: composing through them keeps a map linear
PASS_THROUGH_FUNCTIONS = (
    set(VIEW_METHODS)
    | _CAST_METHODS
    | _COPY_METHODS
    | DROPOUT_FUNCTIONS
    | _AVG_POOL_FUNCTIONS
    | {
        "permute",
        "transpose",
        "t",
        "squeeze",
        "unsqueeze",
        "getitem",
        "split",
        "chunk",
        "unbind",
        "narrow",
        "slice",
        "select",
        "expand",
        "expand_as",
        "movedim",
        "swapaxes",
        "identity",
        "mT",
        "T",
    }
)
#: layers that pass their input on, up to a linear map (graph side): dropout, identity,
#: reshapes, average pooling
PASS_THROUGH_MODULES = DROPOUT_OR_IDENTITY_MODULES | set(_SHAPE_MODULES) | _AVG_POOL_MODULES
#: tensor methods that return the same values
VALUE_PRESERVING_METHODS = (_COPY_METHODS - {"type_as"}) | _DEVICE_METHODS | {_REQUIRES_GRAD, "type_as", "detach_"}
#: nn.Module methods that return the module itself
RETURNS_SELF_MODULE_METHODS = _CAST_METHODS | _DEVICE_METHODS | {_REQUIRES_GRAD, "train", "eval", "share_memory"}

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
#: ops the graph capture keeps although their result is unused
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
    *LINEAR_CONV_FUNCTIONS,
    *_nd("max_pool"),
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
    "embedding",
    "scaled_dot_product_attention",
    "where",
    "clamp",
    "norm",
    "einsum",
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
#: the namespaces whose functions the value flow follows, most specific first
TORCH_FUNCTION_PREFIXES = ("torch.nn.functional.", "torch.special.", "torch.")


# === train/eval mode (NN403, rules/training/_modes.py) ====================================

#: torch.nn layers that compute the same in train and eval mode: affine layers, activations
#: without randomness, pooling but LPPool, reshapes, embeddings, norms without running
#: statistics, resampling, padding, containers
MODE_FREE_MODULES = (
    {_LINEAR[0], _BILINEAR, *_CONV, *_CONV_TRANSPOSE}
    | (ACTIVATION_KIND.keys() - {"RReLU", "Softsign", "Tanhshrink", "LogSigmoid", "Threshold", "GLU"})
    | {m for prefix in POOL_MODULE_PREFIXES if prefix != "LPPool" for m in _nd(prefix)}
    | {*_SHAPE_MODULES, _IDENTITY_MODULE}
    | EMBEDDING_MODULES
    | (OTHER_NORM_MODULES_KIND.keys() - {"LocalResponseNorm", "CrossMapLRN2d"})
    | {"Upsample", *_PIXEL_SHUFFLE_MODULES, *_PAD_MODULES}
    | {"Sequential", "Module", "Parameter"}
    | CONTAINER_MODULES
)


# === losses ===============================================================================

# base: torch.nn loss class -> (its functional name, the loss kind the value flow tells apart
# or None, whether its use says the model is a classifier), in order of preference
_LOSSES: dict[str, tuple[str, str | None, bool]] = {
    "CrossEntropyLoss": ("cross_entropy", "ce", True),
    "NLLLoss": ("nll_loss", "nll", True),
    "BCEWithLogitsLoss": ("binary_cross_entropy_with_logits", "bcewl", True),
    "BCELoss": ("binary_cross_entropy", "bce", True),
    "MultiLabelSoftMarginLoss": ("multilabel_soft_margin_loss", None, True),
    "MSELoss": ("mse_loss", "mse", False),
    "L1Loss": ("l1_loss", None, False),
    "SmoothL1Loss": ("smooth_l1_loss", None, False),
    "HuberLoss": ("huber_loss", None, False),
    "KLDivLoss": ("kl_div", None, False),
    "CTCLoss": ("ctc_loss", None, False),
}
_KINDED_LOSSES = {cls: (fn, kind) for cls, (fn, kind, _) in _LOSSES.items() if kind is not None}

#: a loss as the file names it (class or function) -> its torch.nn class, in order of preference
LOSS_CLASS_OF_NAME = {name: cls for cls, (fn, _, _) in _LOSSES.items() for name in (cls, fn)}
#: losses whose use says the model is a classifier (its head's width is the class count)
CLASSIFIER_LOSSES = {cls for cls, (_, _, classifier) in _LOSSES.items() if classifier}
#: loss kind -> the module class that shows it in messages
LOSS_KIND_DISPLAY = {kind: cls for cls, (_, kind) in _KINDED_LOSSES.items()}
#: loss module class -> the loss kind (ce, nll, bce, bcewl, mse); NLLLoss2d is NLLLoss
LOSS_MODULES_KIND = {cls: kind for cls, (_, kind) in _KINDED_LOSSES.items()} | {"NLLLoss2d": "nll"}
#: functional loss -> the loss kind
LOSS_FUNCTIONS_KIND = {fn: kind for fn, kind in _KINDED_LOSSES.values()}


# === tensors, dtypes, data ================================================================

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
DATALOADER_CLASSES = {"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"}
ITERABLE_DATASETS = {
    "torch.utils.data.IterableDataset",
    "torch.utils.data.dataset.IterableDataset",
    "torch.utils.data.IterDataPipe",
    "torchdata.datapipes.iter.IterDataPipe",
}
#: packages whose datasets are iterable pipes (the DataLoader cannot shuffle them)
ITERABLE_DATASET_PACKAGES = ("torchtext.datasets.", "torchdata.")


# === training scripts (rules/training) ====================================================

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
