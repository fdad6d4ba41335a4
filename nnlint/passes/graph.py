"""The graph pass: trace a model, propagate shapes, run the graph rules on one context.

Tracing: ``torch.fx`` symbolic tracing first; every node gets the line of the user's file
it came from (read from the live frames when fx creates the node: fx's own
``record_stack_traces`` symbolizes through torch._inductor, a 1.5 s import per process).
Many real models cannot be traced that way (docs/MEASUREMENTS.md: nanoGPT's
``assert t <= block_size`` on a traced size): those go through ``torch.export(strict=False)``
(``capture_export``: Python control flow runs on fake tensors with concrete sizes; every
node keeps ``nn_module_stack`` and ``stack_trace``), converted to the same graph. Only
when that fails too (a branch on tensor values), the fallback runs the model eagerly
under forward hooks (one node per torch.nn leaf
module call) and a ``TorchFunctionMode`` recorder (one node per torch function or tensor
method called between modules, with its user line). Both produce the same ``GNode`` graph,
so every graph rule works on either; NN004 says when the fallback ran. Python control flow
on sizes is no problem for the eager run: sizes are concrete.

Shapes: large models are built on the meta device (``loader``/``worker``), so the forward
runs on meta tensors: shapes and dtypes are real, no weight or activation memory is
allocated (GPT-2-XL: ~0.3 GB instead of 6.4 GB). Small models (<= 256 MB of weights) run
on real CPU tensors instead: the meta device's first pointwise op imports torch._dynamo
(~2.5 s per process), far more than a small model's forward. Ops without a meta kernel or
that need data (``.item()``, boolean masks) end a meta forward with
``Failure.kind == "meta"``; the worker then retries on real tensors when the model fits
the memory budget. (``make_fx`` under ``FakeTensorMode`` would trace the same programs;
the eager recorder keeps module boundaries and ``F.*`` calls as the user wrote them,
which is what the rules reason about.)

Rules get a ``GraphContext``; a rule never traces or runs anything itself.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import operator
import os
import re
import sys
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from nnlint.diagnostics import Diagnostic, Location
from nnlint.passes import locate
from nnlint.rule import Finding, Rule

# ---------------------------------------------------------------------------------------
# vocabulary shared by the rules

AFFINE_MODULES = {"Linear", "LazyLinear", "Conv1d", "Conv2d", "Conv3d", "LazyConv1d", "LazyConv2d", "LazyConv3d"}
CONV_TRANSPOSE_MODULES = {
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
}
UPSAMPLE = {
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
ACTIVATION_MODULES = {
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


def short_shape(shape: Any) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


# ---------------------------------------------------------------------------------------
# the graph


@dataclass
class GNode:
    idx: int
    op: str  # placeholder | get_attr | call_module | call_function | call_method | output
    #: placeholder: argument name; get_attr/call_module: qualified path; else the op name
    target: str
    inputs: list[int] = field(default_factory=list)
    #: qualified path of the module whose forward ran this op ("" = the root model)
    scope: str | None = None
    #: class name of the called module (call_module only)
    module_type: str | None = None
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    in_shapes: list[tuple[int, ...]] = field(default_factory=list)
    #: line in the linted file (innermost frame in that file), when known
    line: int | None = None
    #: a few scalar arguments (dim=..., p=...), for rules that care
    args: dict[str, Any] = field(default_factory=dict)
    #: True for ops that matter even when their value is unused (in-place, asserts, control flow)
    sink: bool = False
    tensor_out: bool = True
    #: mul/div/add with a Python number as the only other operand
    scalar_operand: bool = False
    nbytes: int = 0
    #: called by the user's file itself (not from inside a library helper it called)
    direct: bool = True

    @property
    def name(self) -> str:
        return self.target

    def describe(self) -> str:
        if self.op == "call_module":
            return f"{self.target} ({self.module_type})"
        if self.op == "placeholder":
            return f"input '{self.target}'"
        return f"{self.target}()"


@dataclass
class Failure:
    """The example forward raised. ``kind``: shape | meta | error."""

    kind: str
    exc_type: str
    message: str
    module: str | None = None  # qualified path of the leaf module that raised, when known
    module_type: str | None = None
    in_shapes: list[tuple[int, ...]] = field(default_factory=list)
    op: str | None = None  # function/method name when no module was active
    line: int | None = None  # user's line of the failing call (forward)
    first_layer_ran: bool = True


SHAPE_WORDS = re.compile(
    r"shape|size|dimension|channel|mat1|mat2|must match|elements|reduction dim|expected input|input_size|"
    r"normalized_shape|cannot be multiplied|out of range|expected [0-9]d|[0-9]d input|kernel size|padded input|"
    r"broadcast|to have [0-9]+ channels|same number of dimensions|got input of|invalid for input",
    re.I,
)
META_WORDS = re.compile(
    r"meta|data-dependent|data dependent|cannot be converted to Scalar|FakeTensor|"
    r"cannot be called on|register_meta|unimplemented",
    re.I,
)


def classify_error(exc: BaseException) -> str:
    msg = str(exc)
    if isinstance(exc, NotImplementedError) or META_WORDS.search(msg):
        return "meta"
    if "index out of range in self" in msg:
        return "error"
    if isinstance(exc, (RuntimeError, ValueError, IndexError)) and SHAPE_WORDS.search(msg):
        return "shape"
    return "error"


# ---------------------------------------------------------------------------------------
# user lines

_FRAME_RE = re.compile(r'File "([^"]+)", line (\d+)')
_WRAPPER_FILES = (
    "/torch/overrides.py",
    "/torch/fx/",
    "/torch/nn/functional.py",
    "/torch/functional.py",
    "/torch/_tensor.py",
    "/torch/utils/_device.py",
    "/nnlint/passes/graph.py",
)


class UserFile:
    """Tells frames of the linted file from everything else."""

    def __init__(self, path: str) -> None:
        self.real = os.path.realpath(path)
        self._cache: dict[str, bool] = {}

    def owns(self, filename: str) -> bool:
        hit = self._cache.get(filename)
        if hit is None:
            hit = self._cache[filename] = os.path.realpath(filename) == self.real
        return hit

    def line_from_stack_trace(self, text: str | None) -> int | None:
        """fx ``node.stack_trace`` is outermost-first: the last frame in the file wins."""
        if not text:
            return None
        found = None
        for name, line in _FRAME_RE.findall(text):
            if self.owns(name):
                found = int(line)
        return found

    def called_directly(self, frame: Any) -> bool:
        """Is the first frame outside torch's dispatch wrappers (fx, overrides,
        torch.nn.functional) in the linted file? False for ops run inside a library
        helper such as ``pad_packed_sequence``."""
        while frame is not None:
            name = frame.f_code.co_filename.replace("\\", "/")
            if not any(w in name for w in _WRAPPER_FILES):
                return self.owns(frame.f_code.co_filename)
            frame = frame.f_back
        return False

    def line_from_frames(self, frame: Any) -> int | None:
        while frame is not None:
            if self.owns(frame.f_code.co_filename):
                return frame.f_lineno
            frame = frame.f_back
        return None

    def line_from_traceback(self, tb: Any) -> int | None:
        found = None
        while tb is not None:
            if self.owns(tb.tb_frame.f_code.co_filename):
                found = tb.tb_lineno
            tb = tb.tb_next
        return found


# ---------------------------------------------------------------------------------------
# shared helpers for both tracers


def is_leaf(mod: nn.Module) -> bool:
    """fx's default: torch.nn's own modules (not containers) are leaves."""
    m = type(mod).__module__
    return (m.startswith("torch.nn") or m.startswith("torch.ao.nn")) and not isinstance(mod, nn.Sequential)


def _tensors(obj: Any) -> list[torch.Tensor]:
    flat, _ = tree_flatten(obj)
    return [t for t in flat if isinstance(t, torch.Tensor)]


def _shape(t: Any) -> tuple[int, ...] | None:
    if isinstance(t, torch.Tensor):
        try:
            return tuple(int(s) for s in t.shape)
        except Exception:  # symbolic sizes
            return None
    return None


def _nbytes(t: torch.Tensor) -> int:
    try:
        return int(t.numel()) * t.element_size()
    except Exception:
        return 0


def op_name(func: Any) -> str:
    name = getattr(func, "__name__", None) or str(func)
    if name == "__get__":  # a tensor property such as .shape / .T
        name = getattr(getattr(func, "__self__", None), "__name__", "getattr")
    if name.startswith("__") and name.endswith("__") and name not in CONTROL_FUNCTIONS:
        core = name[2:-2]
        if core.startswith("i") and core[1:] in ("add", "sub", "mul", "truediv", "floordiv", "matmul", "and", "or"):
            return core[1:] + "_"
        if core.startswith("r") and core[1:] in ("add", "sub", "mul", "truediv", "floordiv", "matmul", "pow"):
            core = core[1:]
        return {"truediv": "div", "floordiv": "floor_divide", "setitem": "setitem"}.get(core, core)
    return name


def _scalar_args(kwargs: dict, names: Iterable[str] = ("dim", "p", "inplace", "negative_slope")) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k in names and isinstance(v, (int, float, bool, type(None)))}


def _is_inplace(name: str) -> bool:
    return name.endswith("_") and not name.endswith("__") and name not in ("type_as",)


@dataclass
class Trace:
    nodes: list[GNode]
    output: int | None
    placeholders: list[int]
    executed: set[str]
    params_read: set[str]
    failure: Failure | None = None
    fx: bool = False
    output_value_shapes: list[tuple[int, ...]] = field(default_factory=list)


def _param_names(model: nn.Module) -> dict[int, str]:
    names: dict[int, str] = {}
    for q, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), q)
    for q, b in model.named_buffers(remove_duplicate=False):
        names.setdefault(id(b), q)
    return names


def _module_names(model: nn.Module) -> dict[int, str]:
    names: dict[int, str] = {}
    for q, m in model.named_modules(remove_duplicate=False):
        names.setdefault(id(m), q)
    return names


def _bind(model: nn.Module, args: tuple, kwargs: dict) -> tuple[list[str], dict[str, Any], inspect.Signature | None]:
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


# ---------------------------------------------------------------------------------------
# fx


def trace_fx(model: nn.Module, args: tuple, kwargs: dict, user: UserFile) -> tuple[Trace | None, str | None]:
    """Symbolically trace and interpret on ``args`` (meta or real). Returns (trace, None)
    or (None, why fx could not trace). A failing interpretation is returned as a trace
    with ``failure`` set."""
    import torch.fx as fx

    given, values, sig = _bind(model, args, kwargs)
    if sig is None:
        return None, "forward's signature does not accept the example inputs"
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values()):
        return None, "forward takes *args/**kwargs"
    concrete = {n: p.default for n, p in sig.parameters.items() if n not in given and p.default is not p.empty}

    class _Tracer(fx.Tracer):
        # fx's own ``record_stack_traces`` symbolizes through torch._inductor (an import of
        # ~1.5 s per process); the live frames give the same user line for free.
        def create_node(self, *a: Any, **k: Any) -> Any:
            node = super().create_node(*a, **k)
            if self.module_stack:
                node.meta["nnlint_scope"] = next(reversed(self.module_stack))
            frame = sys._getframe(1)
            node.meta["nnlint_line"] = user.line_from_frames(frame)
            node.meta["nnlint_direct"] = user.called_directly(frame)
            return node

    tracer = _Tracer()
    was_training = model.training
    try:
        graph = tracer.trace(model, concrete_args=concrete or None)
        gm = fx.GraphModule(tracer.root, graph)
    except (Exception, SystemExit) as exc:  # fx's TraceError, or user code that rejects proxies
        head = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return None, f"{type(exc).__name__}: {head[:200]}"
    finally:
        model.train(was_training)

    order = [n for n in graph.nodes if n.op == "placeholder"]
    run_args = []
    for _ph, name in zip(order, sig.parameters):
        run_args.append(values[name] if name in values else concrete.get(name))

    shapes: dict[Any, Any] = {}
    failed: dict[str, Any] = {}

    class _Interp(fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            try:
                result = super().run_node(n)
            except (Exception, SystemExit) as exc:
                failed["node"] = n
                failed["exc"] = exc
                raise
            shapes[n] = result
            return result

    interp = _Interp(gm)
    # its error decoration symbolizes a traceback through torch._inductor (~1.5 s import)
    interp.extra_traceback = False
    try:
        with torch.no_grad():
            interp.run(*run_args)
    except (Exception, SystemExit) as exc:  # user code failed: _Interp recorded the node and exception
        if "node" not in failed:  # not a node of the graph (the inputs did not bind): use the hooks
            return None, f"{type(exc).__name__}: {str(exc).strip()[:200]}"
    modules = dict(model.named_modules())
    nodes: list[GNode] = []
    index: dict[Any, int] = {}
    executed: set[str] = set()
    params_read: set[str] = set()
    placeholders: list[int] = []
    output = None
    for n in graph.nodes:
        if "node" in failed and n is failed["node"]:
            break
        idx = len(nodes)
        index[n] = idx
        inputs = [index[i] for i in n.all_input_nodes if i in index]
        value = shapes.get(n)
        first = next(iter(_tensors(value)), None)
        g = GNode(
            idx=idx,
            op=n.op,
            target="",
            inputs=inputs,
            scope=n.meta.get("nnlint_scope"),
            line=n.meta.get("nnlint_line") or user.line_from_stack_trace(n.stack_trace),
            direct=n.meta.get("nnlint_direct", True),
        )
        if first is not None:
            g.shape, g.dtype, g.nbytes = (
                _shape(first),
                str(first.dtype).replace("torch.", ""),
                sum(_nbytes(t) for t in _tensors(value)),
            )
        else:
            g.tensor_out = False
        g.in_shapes = [s for s in (_shape(shapes.get(i)) for i in n.all_input_nodes) if s is not None]
        if n.op == "placeholder":
            g.target = str(n.target).lstrip("*")
            if g.target in given:
                placeholders.append(idx)
            else:
                g.sink = True  # a concrete (defaulted) argument, not an input
        elif n.op == "get_attr":
            g.target = str(n.target)
            params_read.add(g.target)
        elif n.op == "call_module":
            g.target = str(n.target)
            mod = modules.get(g.target)
            g.module_type = type(mod).__name__ if mod is not None else None
            executed.add(g.target)
        elif n.op in ("call_function", "call_method"):
            g.target = op_name(n.target) if n.op == "call_function" else str(n.target)
            if n.target is operator.setitem:
                g.target = "setitem"
            g.args = _scalar_args(dict(n.kwargs))
            if g.target in ("softmax", "log_softmax") and "dim" not in g.args:
                pos = n.args[1:] if n.op == "call_method" else n.args[1:]
                if pos and isinstance(pos[0], int):
                    g.args["dim"] = pos[0]
            nums = [a for a in n.args if isinstance(a, (int, float)) and not isinstance(a, bool)]
            g.scalar_operand = len(n.all_input_nodes) == 1 and bool(nums)
            if g.target in SIDE_EFFECT_FUNCTIONS or _is_inplace(g.target):
                g.sink = True
            if g.target in CONTROL_FUNCTIONS or not g.tensor_out and g.target != "getitem":
                g.sink = True
        elif n.op == "output":
            g.target = "output"
            output = idx
        nodes.append(g)

    trace = Trace(
        nodes=nodes, output=output, placeholders=placeholders, executed=executed, params_read=params_read, fx=True
    )
    if "node" in failed:
        n, error = failed["node"], failed["exc"]
        kind = classify_error(error)
        f = Failure(
            kind=kind,
            exc_type=type(error).__name__,
            message=str(error).strip(),
            line=n.meta.get("nnlint_line") or user.line_from_stack_trace(n.stack_trace),
        )
        f.in_shapes = [s for s in (_shape(shapes.get(i)) for i in n.all_input_nodes) if s is not None]
        if n.op == "call_module":
            f.module = str(n.target)
            f.module_type = type(modules.get(f.module)).__name__
        else:
            f.op = op_name(n.target) if n.op == "call_function" else str(n.target)
        f.first_layer_ran = any(x.op == "call_module" for x in nodes)
        trace.failure = f
    else:
        out_val = shapes.get(next((n for n in graph.nodes if n.op == "output"), None))
        trace.output_value_shapes = [s for s in (_shape(t) for t in _tensors(out_val)) if s is not None]
    return trace, None


# ---------------------------------------------------------------------------------------
# eager fallback: hooks over the module tree + a TorchFunctionMode recorder


class _Recorder:
    def __init__(self, model: nn.Module, user: UserFile) -> None:
        self.model = model
        self.user = user
        self.nodes: list[GNode] = []
        self.producer: dict[int, tuple[Any, int]] = {}
        self.module_names = _module_names(model)
        self.param_names = _param_names(model)
        self.param_nodes: dict[str, int] = {}
        self.executed: set[str] = set()
        self.params_read: set[str] = set()
        self.stack: list[tuple[str, bool, list[int], list[tuple[int, ...]]]] = []  # (qualname, leaf, inputs, shapes)
        self.leaf_depth = 0
        self.paused = False
        self.failure_op: tuple[str, list[tuple[int, ...]], int | None] | None = None
        self.first_layer_ran = False

    # tensors -> nodes
    def node_of(self, t: torch.Tensor) -> int | None:
        hit = self.producer.get(id(t))
        if hit is not None and hit[0]() is t:
            return hit[1]
        q = self.param_names.get(id(t))
        if q is not None:
            idx = self.param_nodes.get(q)
            if idx is None:
                idx = self.add(GNode(idx=0, op="get_attr", target=q, shape=_shape(t)))
                self.param_nodes[q] = idx
            self.params_read.add(q)
            return idx
        return None

    def bind(self, t: torch.Tensor, idx: int) -> None:
        try:
            self.producer[id(t)] = (weakref.ref(t), idx)
        except TypeError:
            pass

    def add(self, node: GNode) -> int:
        node.idx = len(self.nodes)
        self.nodes.append(node)
        return node.idx

    def scope(self) -> str | None:
        for q, leaf, _, _ in reversed(self.stack):
            if not leaf:
                return q
        return None

    # the function-mode side
    def on_op(self, func: Any, args: tuple, kwargs: dict, out: Any, frame: Any) -> None:
        name = op_name(func)
        ins = _tensors((args, kwargs))
        inputs = [i for i in (self.node_of(t) for t in ins) if i is not None]
        outs = _tensors(out)
        node = GNode(
            idx=0,
            op="call_function",
            target=name,
            inputs=list(dict.fromkeys(inputs)),
            scope=self.scope(),
            line=self.user.line_from_frames(frame),
            args=_scalar_args(kwargs),
            in_shapes=[s for s in (_shape(t) for t in ins) if s is not None],
            direct=self.user.called_directly(frame),
        )
        if name in ("softmax", "log_softmax") and "dim" not in node.args and len(args) > 1 and isinstance(args[1], int):
            node.args["dim"] = args[1]
        nums = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
        node.scalar_operand = len(ins) == 1 and bool(nums)
        if outs:
            node.shape, node.dtype = _shape(outs[0]), str(outs[0].dtype).replace("torch.", "")
            node.nbytes = sum(_nbytes(t) for t in outs)
        else:
            node.tensor_out = False
        if name in SIDE_EFFECT_FUNCTIONS or _is_inplace(name) or name in CONTROL_FUNCTIONS or not outs:
            node.sink = True
        idx = self.add(node)
        for t in outs:
            self.bind(t, idx)
        if (_is_inplace(name) or name == "setitem") and ins:
            self.bind(ins[0], idx)

    # the hook side
    def pre_hook(self, mod: nn.Module, args: tuple, kwargs: dict) -> None:
        self.paused = True
        try:
            q = self.module_names.get(id(mod), "?")
            self.executed.add(q)
            if self.leaf_depth > 0:
                return
            leaf = is_leaf(mod) and mod is not self.model
            ins = _tensors((args, kwargs))
            inputs = [i for i in (self.node_of(t) for t in ins) if i is not None]
            self.stack.append(
                (q, leaf, list(dict.fromkeys(inputs)), [s for s in (_shape(t) for t in ins) if s is not None])
            )
            if leaf:
                self.leaf_depth += 1
        finally:
            self.paused = False

    def post_hook(self, mod: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        self.paused = True
        try:
            q = self.module_names.get(id(mod), "?")
            if not self.stack or self.stack[-1][0] != q:
                return  # a call inside a leaf
            _, leaf, inputs, shapes = self.stack.pop()
            if not leaf:
                return
            self.leaf_depth -= 1
            self.first_layer_ran = True
            outs = _tensors(out)
            node = GNode(
                idx=0,
                op="call_module",
                target=q,
                inputs=inputs,
                scope=self.scope(),
                module_type=type(mod).__name__,
                in_shapes=shapes,
                line=self.user.line_from_frames(sys._getframe(1)),
            )
            if outs:
                node.shape, node.dtype = _shape(outs[0]), str(outs[0].dtype).replace("torch.", "")
                node.nbytes = sum(_nbytes(t) for t in outs)
            else:
                node.tensor_out = False
            idx = self.add(node)
            for t in outs:
                self.bind(t, idx)
        finally:
            self.paused = False


class _FunctionMode(TorchFunctionMode):
    def __init__(self, rec: _Recorder) -> None:
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        rec = self.rec
        if rec.paused or rec.leaf_depth > 0:
            return func(*args, **kwargs)
        try:
            out = func(*args, **kwargs)
        except Exception:
            if rec.failure_op is None:
                ins = _tensors((args, kwargs))
                rec.failure_op = (
                    op_name(func),
                    [s for s in (_shape(t) for t in ins) if s is not None],
                    rec.user.line_from_frames(sys._getframe(1)),
                )
            raise
        rec.on_op(func, args, kwargs, out, sys._getframe(1))
        return out


def trace_eager(model: nn.Module, args: tuple, kwargs: dict, user: UserFile) -> Trace:
    """Run ``model(*args, **kwargs)`` once, recording module calls and torch ops."""
    rec = _Recorder(model, user)
    handles = []
    for _, mod in model.named_modules():
        handles.append(mod.register_forward_pre_hook(rec.pre_hook, with_kwargs=True))
        handles.append(mod.register_forward_hook(rec.post_hook, with_kwargs=True))
    given, values, _ = _bind(model, args, kwargs)
    placeholders = []
    for name in given:
        for t in _tensors(values[name]):
            idx = rec.add(
                GNode(idx=0, op="placeholder", target=name, shape=_shape(t), dtype=str(t.dtype).replace("torch.", ""))
            )
            rec.bind(t, idx)
            placeholders.append(idx)
    failure = None
    out = None
    try:
        with torch.no_grad(), _FunctionMode(rec):
            out = model(*args, **kwargs)
    except (Exception, SystemExit) as exc:
        kind = classify_error(exc)
        failure = Failure(
            kind=kind,
            exc_type=type(exc).__name__,
            message=str(exc).strip(),
            line=user.line_from_traceback(exc.__traceback__),
            first_layer_ran=rec.first_layer_ran,
        )
        leaf = next(((q, shapes) for q, is_l, _, shapes in reversed(rec.stack) if is_l), None)
        if leaf is not None:
            failure.module, failure.in_shapes = leaf[0], leaf[1]
            mod = dict(model.named_modules()).get(leaf[0])
            failure.module_type = type(mod).__name__ if mod is not None else None
        elif rec.failure_op is not None:
            failure.op, failure.in_shapes, line = rec.failure_op
            failure.line = line or failure.line
    finally:
        for h in handles:
            h.remove()
    output = None
    shapes_out: list[tuple[int, ...]] = []
    if failure is None:
        outs = _tensors(out)
        shapes_out = [s for s in (_shape(t) for t in outs) if s is not None]
        ins = [i for i in (rec.node_of(t) for t in outs) if i is not None]
        output = rec.add(GNode(idx=0, op="output", target="output", inputs=list(dict.fromkeys(ins)), tensor_out=False))
    return Trace(
        nodes=rec.nodes,
        output=output,
        placeholders=placeholders,
        executed=rec.executed,
        params_read=rec.params_read,
        failure=failure,
        fx=False,
        output_value_shapes=shapes_out,
    )


# ---------------------------------------------------------------------------------------
# facts about the file's source that graph rules need (where attributes are referenced)


@dataclass
class Ref:
    function: str
    line: int
    conditional: bool


class SourceFacts:
    """``ast`` facts about the linted file: where ``.name`` attributes are read, and
    which assignments' values are used only under a condition."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines()
        try:
            self.tree: ast.Module | None = ast.parse(text)
        except SyntaxError:
            self.tree = None
        self.refs: dict[str, list[Ref]] = {}
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        #: names imports bind (`F`, `torch`, `np`): `F.softmax` is not a read of `self.softmax`
        self.imported: set[str] = set()
        if self.tree is not None:
            for n in ast.walk(self.tree):
                if isinstance(n, (ast.Import, ast.ImportFrom)):
                    self.imported.update((a.asname or a.name).split(".")[0] for a in n.names)
            self._index(self.tree, None, False)

    def _index(self, node: ast.AST, func: str | None, cond: bool) -> None:
        for child in ast.iter_child_nodes(node):
            c_func, c_cond = func, cond
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions.append(child)
                c_func, c_cond = child.name, False
            elif (
                isinstance(node, (ast.If, ast.IfExp, ast.While, ast.BoolOp, ast.Try, ast.Match))
                or isinstance(node, ast.For)
                and child is not node.iter
            ):
                c_cond = True
            if (
                isinstance(child, ast.Attribute)
                and isinstance(child.ctx, ast.Load)
                and not (isinstance(child.value, ast.Name) and child.value.id in self.imported)
            ):
                self.refs.setdefault(child.attr, []).append(Ref(func or "<module>", child.lineno, c_cond))
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Name)
                and child.func.id in ("getattr", "hasattr")
                and len(child.args) >= 2
                and isinstance(child.args[1], ast.Constant)
                and isinstance(child.args[1].value, str)
            ):
                self.refs.setdefault(child.args[1].value, []).append(Ref(func or "<module>", child.lineno, c_cond))
            self._index(child, c_func, c_cond)

    def function_at(self, line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        best = None
        for f in self.functions:
            if f.lineno <= line <= (f.end_lineno or f.lineno):
                if best is None or f.lineno >= best.lineno:
                    best = f
        return best

    def line_text(self, line: int | None) -> str:
        if line and 0 < line <= len(self.lines):
            return self.lines[line - 1].strip()
        return ""

    def is_side_effect_line(self, line: int | None) -> bool:
        """Statements whose purpose is a side effect: storing on self, printing, logging,
        appending to a list, assertions."""
        if self.tree is None or not line:
            return False
        func = self.function_at(line)
        scope = func if func is not None else self.tree
        for stmt in ast.walk(scope):
            if not isinstance(stmt, ast.stmt) or not (stmt.lineno <= line <= (stmt.end_lineno or stmt.lineno)):
                continue
            if isinstance(
                stmt,
                (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For, ast.While, ast.With, ast.Try),
            ):
                continue
            if isinstance(stmt, ast.Assert):
                return True
            if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                if any(isinstance(t, (ast.Attribute, ast.Subscript)) for t in targets):
                    return True
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                # a bare call: print(...), log(...), buf.append(...) -- but not a pure tensor
                # function whose result is thrown away (`F.relu(x)` as a statement)
                return not _pure_call(stmt.value)
        return False

    def used_only_conditionally(self, line: int | None) -> bool:
        """The value assigned at ``line`` (``a = ...``) is read only inside an if/else or
        conditional expression before ``a`` is assigned again: the flag-switched branch
        pattern (``aux = self.aux(f)`` ... ``if self.use_aux: return out, aux``)."""
        if self.tree is None or not line:
            return False
        func = self.function_at(line)
        if func is None:
            return False
        names: set[str] = set()
        assign_end = line
        for stmt in ast.walk(func):
            if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and stmt.lineno <= line <= (
                stmt.end_lineno or stmt.lineno
            ):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for t in targets:
                    names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
                assign_end = stmt.end_lineno or stmt.lineno
        if not names:
            return False
        later_assign = min(
            (
                n.lineno
                for n in ast.walk(func)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id in names and n.lineno > assign_end
            ),
            default=10**9,
        )
        conditional_reads = 0
        reads = 0

        def walk(node: ast.AST, cond: bool) -> None:
            nonlocal reads, conditional_reads
            for child in ast.iter_child_nodes(node):
                c = cond or isinstance(node, (ast.If, ast.IfExp, ast.While, ast.BoolOp, ast.Try))
                if (
                    isinstance(child, ast.Name)
                    and isinstance(child.ctx, ast.Load)
                    and child.id in names
                    and assign_end < child.lineno <= later_assign
                ):
                    reads += 1
                    conditional_reads += c
                walk(child, c)

        walk(func, False)
        return reads > 0 and reads == conditional_reads


#: tensor functions without side effects: called as a statement, their result is lost
PURE_FUNCTIONS = (ACTIVATION_FUNCTIONS | PASS_THROUGH_FUNCTIONS | NORM_FUNCTIONS | UPSAMPLE) - {"detach"} | {
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


def _pure_call(call: ast.Call) -> bool:
    f = call.func
    if not isinstance(f, ast.Attribute) or f.attr not in PURE_FUNCTIONS:
        return False
    base = f.value
    if isinstance(base, ast.Attribute) and base.attr == "functional":
        return True  # torch.nn.functional.relu(x)
    if isinstance(base, ast.Name):
        return True  # F.relu(x), torch.relu(x), x.relu()
    return False


# ---------------------------------------------------------------------------------------
# the context rules see


class GraphContext:
    """Everything a graph rule may ask about one model.

    ``nodes``/``g``: the traced dataflow graph (edges producer -> consumer); ``failure``:
    set when the example forward raised (then only NN201 speaks); ``fallback``: True when
    the graph came from hooks (fx could not trace)."""

    def __init__(
        self,
        *,
        path: str,
        model_name: str,
        model: nn.Module,
        trace: Trace,
        source: SourceFacts,
        user: UserFile,
        fallback: bool,
        trace_error: str | None = None,
        inputs_desc: str = "",
        input_search: dict[str, Any] | None = None,
        loss_name: str | None = None,
        classes: int | None = None,
        model_line: int | None = None,
        module_lines: dict[str, int] | None = None,
    ) -> None:
        import networkx as nx

        self.path = path
        self.model_name = model_name
        self.model = model
        self.trace = trace
        self.nodes = trace.nodes
        self.output = trace.output
        self.placeholders = trace.placeholders
        self.failure = trace.failure
        self.fallback = fallback
        self.trace_error = trace_error
        self.source = source
        self.user = user
        self.inputs_desc = inputs_desc
        self.input_search = input_search or {}
        self.loss_name = loss_name
        self.classes = classes
        self.model_line = model_line
        #: lines known from elsewhere (the items of a factory's nn.Sequential), by qualname
        self.module_lines = module_lines or {}
        #: where the example input came from (passes/guesses.py: declared, file, guessed);
        #: the worker sets it, rules word a fix only from a declared/file input
        self.input_source = "declared"
        self.modules: dict[str, nn.Module] = dict(model.named_modules())
        self.g = nx.DiGraph()
        self.g.add_nodes_from(n.idx for n in self.nodes)
        for n in self.nodes:
            for i in n.inputs:
                self.g.add_edge(i, n.idx)
        self.output_shapes = trace.output_value_shapes

    # reachability -----------------------------------------------------------------------
    @cached_property
    def live(self) -> set[int]:
        """Nodes whose value reaches the output or a side effect (in-place op, assert,
        Python control flow): one backward search from all of those at once."""
        roots = [n.idx for n in self.nodes if n.sink]
        if self.output is not None:
            roots.append(self.output)
        seen: set[int] = set(roots)
        stack = list(roots)
        pred = self.g.pred
        while stack:
            for p in pred[stack.pop()]:
                if p not in seen:
                    seen.add(p)
                    stack.append(p)
        return seen

    def reaches_output(self, idx: int) -> bool:
        return idx in self.live

    @cached_property
    def executed(self) -> set[str]:
        """Qualified paths of modules that ran: called modules, their ancestors, every
        descendant of a called torch.nn leaf, and owners of parameters read directly."""
        ran: set[str] = set()
        for q in self.trace.executed | {p.rsplit(".", 1)[0] if "." in p else "" for p in self.trace.params_read}:
            parts = q.split(".") if q else []
            for i in range(len(parts) + 1):
                ran.add(".".join(parts[:i]))
            mod = self.modules.get(q)
            if mod is not None and is_leaf(mod):
                for sub, _ in mod.named_modules(prefix=q):
                    ran.add(sub)
        from nnlint.passes.ownership import with_aliases

        return with_aliases(ran, self.aliases)

    @cached_property
    def aliases(self) -> list[set[str]]:
        """Names of one module/parameter object registered several times (tied weights)."""
        from nnlint.passes.ownership import alias_groups

        return alias_groups(self.model)

    @cached_property
    def params_read(self) -> set[str]:
        from nnlint.passes.ownership import with_aliases

        return with_aliases(set(self.trace.params_read), self.aliases)

    # walking -----------------------------------------------------------------------------
    def node(self, idx: int) -> GNode:
        return self.nodes[idx]

    def consumers(self, idx: int) -> list[GNode]:
        return [self.nodes[i] for i in self.g.successors(idx)]

    def module(self, qualname: str | None) -> nn.Module | None:
        return self.modules.get(qualname) if qualname is not None else None

    def kind(self, n: GNode) -> str:
        """affine | conv_transpose | upsample | norm | activation | pass | other | input | param"""
        if n.op == "placeholder":
            return "input"
        if n.op == "get_attr":
            return "param"
        if n.op == "call_module":
            t = n.module_type or ""
            if t in AFFINE_MODULES:
                return "affine"
            if t in CONV_TRANSPOSE_MODULES:
                return "conv_transpose"
            if t in UPSAMPLE:
                return "upsample"
            if t in NORM_MODULES:
                return "norm"
            if t in ACTIVATION_MODULES:
                return "activation"
            if t in PASS_THROUGH_MODULES:
                return "pass"
            return "other"
        name = n.target.rstrip("_") if _is_inplace(n.target) else n.target
        if name in UPSAMPLE:
            return "upsample"
        if name in NORM_FUNCTIONS:
            return "norm"
        if name in ACTIVATION_FUNCTIONS:
            return "activation"
        if name in PASS_THROUGH_FUNCTIONS:
            return "pass"
        if name in ("mul", "div") and n.scalar_operand:
            return "pass"
        return "other"

    def activation(self, n: GNode) -> str | None:
        if n.op == "call_module":
            return ACTIVATION_MODULES.get(n.module_type or "")
        name = n.target.rstrip("_") if _is_inplace(n.target) else n.target
        return name if name in ACTIVATION_FUNCTIONS else None

    def tensor_inputs(self, n: GNode) -> list[GNode]:
        return [self.nodes[i] for i in n.inputs if self.nodes[i].tensor_out]

    def producer_through_pass(self, n: GNode) -> tuple[GNode | None, list[GNode]]:
        """Walk back from ``n``'s single tensor input through pass-through ops (dropout,
        reshapes, average pooling, scaling by a constant): (the first other node, the
        pass-through nodes on the way). None when an op on the way has several tensor
        inputs."""
        path: list[GNode] = []
        ins = self.tensor_inputs(n)
        while len(ins) == 1:
            p = ins[0]
            if self.kind(p) != "pass":
                return p, path
            path.append(p)
            ins = self.tensor_inputs(p)
        return None, path

    # lines -------------------------------------------------------------------------------
    def module_line(self, qualname: str) -> int | None:
        path, line = locate.module_line(self.model, qualname, prefer_path=self.path)
        if path is not None and line is not None and self.user.owns(path):
            return line
        parts = qualname.split(".") if qualname else []
        for end in range(len(parts), -1, -1):
            hit = self.module_lines.get(".".join(parts[:end]))
            if hit is not None:
                return hit
        return None

    def forward_line(self) -> int | None:
        try:
            fn = type(self.model).forward
            path = inspect.getsourcefile(fn)
            if path and self.user.owns(path):
                return inspect.getsourcelines(fn)[1] + _decorator_lines(fn)
        except (TypeError, OSError):
            pass
        return None

    def in_container(self, qualname: str) -> bool:
        parent = qualname.rsplit(".", 1)[0] if "." in qualname else ""
        return isinstance(self.modules.get(parent), (nn.Sequential, nn.ModuleList, nn.ModuleDict))

    def best_line(self, n: GNode) -> int | None:
        """Where a finding about node ``n`` belongs: a module inside a container points at
        its item in the container's definition; else the call in forward; else the
        ``self.x = ...`` line."""
        if n.op == "call_module" and (self.in_container(n.target) or n.line is None):
            return self.module_line(n.target) or n.line
        return n.line or (self.module_line(n.scope) if n.scope else None)

    def describe_module(self, qualname: str) -> str:
        shown = f"{self.model_name}.{qualname}" if qualname[:1].isdigit() else qualname
        return describe_module(shown, self.modules.get(qualname))


def _decorator_lines(fn: Any) -> int:
    try:
        lines, _ = inspect.getsourcelines(fn)
    except (TypeError, OSError):
        return 0
    n = 0
    for line in lines:
        if line.lstrip().startswith("@"):
            n += 1
        else:
            break
    return n


def describe_module(qualname: str, mod: nn.Module | None) -> str:
    """``fc1 = Linear(9216→128)``: how messages name a layer."""
    if mod is None:
        return qualname
    t = type(mod).__name__
    if isinstance(mod, nn.Linear):
        inner = f"{mod.in_features}→{mod.out_features}"
    elif isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        k = mod.kernel_size[0] if len(set(mod.kernel_size)) == 1 else "×".join(map(str, mod.kernel_size))
        inner = f"{mod.in_channels}→{mod.out_channels}, k={k}"
        if mod.groups > 1:
            inner += f", groups={mod.groups}"
    elif isinstance(mod, nn.modules.batchnorm._NormBase):
        inner = str(mod.num_features)
    elif isinstance(mod, nn.LayerNorm):
        inner = str(tuple(mod.normalized_shape))
    elif isinstance(mod, nn.GroupNorm):
        inner = f"{mod.num_groups}, {mod.num_channels}"
    elif isinstance(mod, nn.Embedding):
        inner = f"{mod.num_embeddings}, {mod.embedding_dim}"
    elif isinstance(mod, nn.RNNBase):
        inner = f"{mod.input_size}→{mod.hidden_size}"
    elif isinstance(mod, nn.MultiheadAttention):
        inner = f"embed_dim={mod.embed_dim}, heads={mod.num_heads}"
    else:
        inner = ""
    return f"{qualname} = {t}({inner})"


def expected_input(mod: nn.Module | None) -> str | None:
    """What a layer needs of its input, in words."""
    if isinstance(mod, nn.Linear):
        return f"expects {mod.in_features} features in the last dimension"
    if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        d = (
            {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}[type(mod)]
            if type(mod) in (nn.Conv1d, nn.Conv2d, nn.Conv3d)
            else len(mod.kernel_size)
        )
        return f"expects {d + 2}-d input with {mod.in_channels} channels at dim 1 and a spatial size ≥ its kernel {tuple(mod.kernel_size)}"
    if isinstance(mod, nn.modules.batchnorm._NormBase):
        return f"expects {mod.num_features} channels at dim 1"
    if isinstance(mod, nn.LayerNorm):
        return f"expects the last dimension(s) to be {tuple(mod.normalized_shape)}"
    if isinstance(mod, nn.GroupNorm):
        return f"expects {mod.num_channels} channels at dim 1"
    if isinstance(mod, nn.RNNBase):
        return f"expects input_size {mod.input_size} in the last dimension"
    if isinstance(mod, nn.MultiheadAttention):
        return f"expects embed_dim {mod.embed_dim} in the last dimension"
    if isinstance(mod, nn.Embedding):
        return f"expects integer indices below {mod.num_embeddings}"
    return None


# ---------------------------------------------------------------------------------------
# building the context and running rules


def build_context(
    model: nn.Module,
    args: tuple,
    kwargs: dict,
    *,
    path: str,
    model_name: str,
    source_text: str | None = None,
    user: UserFile | None = None,
    inputs_desc: str = "",
    input_search: dict | None = None,
    loss_name: str | None = None,
    classes: int | None = None,
    model_line: int | None = None,
    source: SourceFacts | None = None,
    module_lines: dict[str, int] | None = None,
) -> GraphContext:
    """Trace (fx, else hooks) and propagate shapes on the given inputs (meta or real)."""
    user = user or UserFile(path)
    if source is None:
        if source_text is None:
            try:
                with open(path, encoding="utf-8") as fh:
                    source_text = fh.read()
            except OSError:
                source_text = ""
        source = SourceFacts(source_text)
    with preserved(model):
        trace, why = trace_fx(model, args, kwargs, user)
        if trace is None:
            # Python control flow fx cannot follow: torch.export runs it on fake tensors
            from nnlint.passes.capture_export import trace_export

            exported, why_export = trace_export(model, args, kwargs, user)
            if exported is not None:
                trace, why = exported, None
            else:
                why = f"{why}; torch.export: {why_export}"
        fallback = trace is None
        fx_failure = trace.failure if trace is not None else None
        if trace is None or fx_failure is not None:
            # fx could not trace, or its interpretation failed: the eager run is the authority
            eager = trace_eager(model, args, kwargs, user)
            if fx_failure is not None and eager.failure is None:
                fallback, why = True, f"the fx graph failed where eager forward works ({fx_failure.exc_type})"
            elif trace is not None:
                fallback = False  # keep fx's view but eager's failure (it names the module)
                eager.fx = True
            trace = eager
    ctx = GraphContext(
        path=path,
        model_name=model_name,
        model=model,
        trace=trace,
        source=source,
        user=user,
        fallback=fallback,
        trace_error=why,
        inputs_desc=inputs_desc,
        input_search=input_search,
        loss_name=loss_name,
        classes=classes,
        model_line=model_line,
        module_lines=module_lines,
    )
    return ctx


@contextlib.contextmanager
def preserved(model: nn.Module) -> Iterator[None]:
    """Restore what a forward on real tensors changes: train/eval flags, buffers
    (BatchNorm running statistics) and the RNG (dropout)."""
    modes = [(m, m.training) for m in model.modules()]
    real = [(b, b.detach().clone()) for b in model.buffers() if b.device.type != "meta"]
    rng = torch.get_rng_state() if real or any(p.device.type != "meta" for p in model.parameters()) else None
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
        with torch.no_grad():
            for b, saved in real:
                try:
                    b.copy_(saved)
                except RuntimeError:
                    pass
        if rng is not None:
            torch.set_rng_state(rng)


@dataclass
class RuleCrash:
    code: str
    exc: BaseException


def is_library_finding(ctx: GraphContext, code: str, module: str | None, line: int | None) -> bool:
    from nnlint.passes.ownership import is_library_finding as check

    return check(ctx, code, module, line)


def run_rules(ctx: GraphContext, rules: list[Rule]) -> tuple[list[Diagnostic], list[RuleCrash]]:
    out: list[Diagnostic] = []
    crashes: list[RuleCrash] = []
    for rule in rules:
        if rule.pass_ != "graph":
            continue
        try:
            for f in rule.check(ctx):
                if is_library_finding(ctx, rule.code, f.module, f.line):
                    continue  # inside a class the user did not write: nothing to act on
                out.append(to_diagnostic(rule, ctx, f))
        except Exception as exc:  # a rule bug must not hide the other rules' findings
            crashes.append(RuleCrash(rule.code, exc))
    return out, crashes


def to_diagnostic(rule: Rule | type[Rule], ctx: GraphContext, f: Finding) -> Diagnostic:
    line = f.line
    if line is None and f.module is not None:
        line = ctx.module_line(f.module)
    if line is None:
        line = ctx.model_line or 1
    end_col = None
    text = ctx.source.lines[line - 1] if 0 < line <= len(ctx.source.lines) else ""
    col = f.column or (len(text) - len(text.lstrip()) + 1 if text.strip() else 1)
    if f.end_column is None and text.strip():
        end_col = len(text.rstrip()) + 1
    return Diagnostic(
        code=rule.code,
        name=rule.name,
        severity=f.severity or rule.severity,
        message=f.message,
        pass_="graph",
        path=ctx.path,
        line=line,
        column=col,
        end_line=f.end_line or line,
        end_column=f.end_column or end_col,
        model=f.model or ctx.model_name,
        module=f.module,
        evidence=f.evidence,
        fix=f.fix,
    )


def model_info(ctx: GraphContext | None, model: nn.Module, batch_size: int | None = None) -> dict[str, Any]:
    """Sizes measured on the (meta) model: parameters, buffers, activations of one
    forward, and the estimate of what a forward+backward step needs."""
    seen: set[int] = set()
    n_params = p_bytes = trainable_bytes = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        n_params += p.numel()
        p_bytes += _nbytes(p)
        if p.requires_grad:
            trainable_bytes += _nbytes(p)
    b_bytes = sum(_nbytes(b) for b in model.buffers())
    act = sum(n.nbytes for n in ctx.nodes if n.op in ("call_module", "call_function", "call_method")) if ctx else 0
    # weights + gradients + optimizer-free step: activations are kept for backward
    estimated = p_bytes + b_bytes + trainable_bytes + 2 * act
    info: dict[str, Any] = {
        "parameters": int(n_params),
        "param_bytes": int(p_bytes),
        "buffer_bytes": int(b_bytes),
        "activation_bytes": int(act),
        "estimated_bytes": int(estimated),
    }
    if ctx is not None:
        info.update(
            {
                "fallback": ctx.fallback,
                "nodes": len(ctx.nodes),
                "output_shapes": [list(s) for s in ctx.output_shapes],
                "failure": None if ctx.failure is None else ctx.failure.kind,
            }
        )
    return info


def run_graph(
    example: Any, rules: list[Rule], path: str, model_name: str, settings: dict[str, Any] | None = None
) -> tuple[list[Diagnostic], dict[str, Any]]:
    """The graph pass on one ``Example`` (model + inputs, meta or real), usable in-process
    (``nnlint.check``) as well as in the worker. Restores the model's train/eval mode.

    settings (all optional): source_text, loss_name, classes, inputs_desc, input_search,
    model_line. Returns (diagnostics, info) where info carries parameter count, sizes and
    the estimate the probe uses for NN006, the output shapes and whether fx fell back."""
    settings = settings or {}
    model = example.model
    if not isinstance(model, nn.Module) and callable(model):
        model = model()
    args, kwargs = split_inputs(example.inputs)
    text = settings.get("source_text")
    if text is None:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            text = ""
    loss_name = settings.get("loss_name") or (example.meta or {}).get("loss_name")
    if loss_name is None and text:
        from nnlint.passes.loader import scan_source

        loss_name = scan_source(text).loss_name
    model_line = settings.get("model_line")
    if model_line is None:
        cls_path, cls_line = locate.class_line(type(model))
        if cls_path is not None and os.path.realpath(cls_path) == os.path.realpath(path):
            model_line = cls_line
    ctx = build_context(
        model,
        args,
        kwargs,
        path=path,
        model_name=model_name,
        source_text=text,
        inputs_desc=settings.get("inputs_desc", ""),
        input_search=settings.get("input_search"),
        loss_name=loss_name,
        classes=settings.get("classes") or example.classes,
        model_line=model_line,
    )
    if ctx.classes is None and ctx.failure is None:
        ctx.classes = infer_classes(ctx)
    diags, crashes = run_rules(ctx, rules)
    info = model_info(ctx, model)
    info["context"] = ctx
    info["unused_modules"] = unused_modules(ctx)
    info["crashes"] = [f"rule {c.code} crashed: {type(c.exc).__name__}: {c.exc}" for c in crashes]
    return diags, info


def unused_modules(ctx: Any) -> list[str]:
    """Qualified names of the modules the forward never runs or whose output it discards
    (NN202's findings): the probe need not report their missing gradients again."""
    if ctx.failure is not None:
        return []
    out = [q for q in ctx.modules if q and q not in ctx.executed]
    out += [n.target for n in ctx.nodes if n.op == "call_module" and n.tensor_out and n.idx not in ctx.live]
    return sorted(set(out))


CLASSIFICATION_LOSSES = {"CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss", "BCELoss", "MultiLabelSoftMarginLoss"}


def infer_classes(ctx: GraphContext) -> int | None:
    """k of the head, when the file's loss says it is a classifier: the class dimension of
    the first output (the last one for a (batch, time, vocab) language model)."""
    if not ctx.output_shapes or ctx.loss_name not in CLASSIFICATION_LOSSES:
        return None
    shape = ctx.output_shapes[0]
    if len(shape) < 2:
        return None
    if ctx.loss_name in ("BCEWithLogitsLoss", "BCELoss", "MultiLabelSoftMarginLoss"):
        return int(shape[-1])
    token_input = any((ctx.nodes[i].dtype or "").startswith("int") for i in ctx.placeholders)
    return int(shape[-1]) if len(shape) == 3 and token_input else int(shape[1])


def split_inputs(inputs: Any) -> tuple[tuple, dict]:
    if inputs is None:
        return (), {}
    if isinstance(inputs, dict):
        return (), dict(inputs)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    return (inputs,), {}


def related_call(ctx: GraphContext, line: int | None, message: str) -> tuple[Location, ...]:
    if line is None:
        return ()
    return (Location(path=ctx.path, line=line, message=message),)
