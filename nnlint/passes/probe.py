"""The probe pass: one short, seeded forward + backward of a built model on a small batch,
measured with forward hooks and tensor hooks, turned into numbers rules can judge.

The graph pass (in its child process) and the Python API call ``run_probe`` for each model
built for real. The pass never knows rule codes: rules declare ``needs`` (extra
measurements) and read a ``ProbeContext`` (or a ``DataContext`` for NN5 data rules); the
pass turns their ``Finding`` objects into ``Diagnostic`` values at the user's lines.

What is measured (always):
- per module, in execution order: output mean/std and whether it was non-finite; the std
  of the first input of weight layers; the norm of the gradient w.r.t. the output (a
  tensor hook, so in-place ops such as ``ReLU(inplace=True)`` are fine; module backward
  hooks are never used: they break on in-place ops);
- per activation call (nn.ReLU & co. *and* functional ``F.relu``/``torch.sigmoid``/
  ``x.tanh()``, seen through a ``TorchFunctionMode``): which layer produced its input, the
  fraction of units negative for every sample (ReLU family), the fraction of outputs
  within 1% of the bounds (sigmoid/tanh), padding-mask values excluded;
- per parameter after backward: gradient None / zero / norm, weight norm and RMS, whether
  its module ran and whether the forward used it;
- the loss: the declared one, else CrossEntropy on random targets for a k-class head,
  else the mean of the squared outputs (``evidence`` says which).

Extra measurements, only when a selected rule needs them: ``batch_jacobian`` (eval mode:
gradient of one sample's output w.r.t. the whole input batch; for token inputs, which output
samples move when one sample's tokens change: passes/batch_mixing.py), ``second_forward`` (two
seeded eval forwards compared), ``overfit`` (optimizer steps on one tiny batch; only with
``settings["overfit"]``), ``zero_init_check`` (re-measure zero gradients with the
zero-initialised weights perturbed, so zero-init-residual is not reported),
``nonfinite_origin`` (after a NaN/Inf is seen: re-run checking every op, and
``detect_anomaly`` for the backward).

Everything touched is restored in ``finally``: train/eval mode of every submodule, hooks,
``.grad``, ``requires_grad``, buffers (BatchNorm running stats), parameters (after the
overfit probe), the device, and the torch (CPU and CUDA), Python and NumPy RNG states.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import sys
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, cast

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nnlint.diagnostics import Diagnostic, json_safe
from nnlint.example import Example
from nnlint.passes import locate
from nnlint.rule import Finding, Rule

SEED = 0
MIN_BATCH = 4
#: pre-activation values this large (or non-finite) are mask constants (-1e9, -inf,
#: finfo.min), not learned values: they are left out of dead/saturated fractions
MASK_ABS = 1e4
#: |x| beyond which sigmoid / tanh outputs lie within 1% of their bounds
SAT_INPUT = {"sigmoid": math.log(0.99 / 0.01), "tanh": math.atanh(0.99)}
MAX_DATA_BATCHES = 8
EVAL_BATCH = 3
OVERFIT_LR = 1e-2

WEIGHT_LAYERS = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.RNNBase, nn.Embedding, nn.EmbeddingBag)
EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)
ACTIVATION_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.PReLU,
    nn.Softplus,
)
VIEW_NAMES = {"view", "reshape", "flatten", "unflatten", "view_as", "reshape_as"}


def _activation_table() -> dict[Any, str]:
    F = torch.nn.functional
    T = torch.Tensor
    table: dict[Any, str] = {}
    spec: dict[str, list[tuple[Any, str]]] = {
        "relu": [(F, "relu"), (F, "relu_"), (torch, "relu"), (torch, "relu_"), (T, "relu"), (T, "relu_")],
        "leaky_relu": [(F, "leaky_relu"), (F, "leaky_relu_"), (F, "rrelu")],
        "elu": [(F, "elu"), (F, "elu_"), (F, "celu")],
        "selu": [(F, "selu"), (torch, "selu"), (torch, "selu_")],
        "gelu": [(F, "gelu")],
        "silu": [(F, "silu"), (F, "mish")],
        "sigmoid": [(F, "sigmoid"), (torch, "sigmoid"), (torch, "sigmoid_"), (T, "sigmoid"), (T, "sigmoid_")],
        "tanh": [(F, "tanh"), (torch, "tanh"), (torch, "tanh_"), (T, "tanh"), (T, "tanh_")],
        "hardtanh": [(F, "hardtanh"), (F, "hardtanh_")],
    }
    for kind, places in spec.items():
        for owner, name in places:
            fn = getattr(owner, name, None)
            if fn is not None:
                try:
                    table[fn] = kind
                except TypeError:  # unhashable builtin: never seen so far
                    pass
    return table


ACTIVATIONS = _activation_table()


class ProbeError(RuntimeError):
    """User code failed while the probe ran it. ``phase`` is one of ``forward``,
    ``loss``, ``backward``, ``data``; the original exception is ``__cause__``. The
    model's state has been restored when this is raised."""

    def __init__(self, phase: str, exc: BaseException) -> None:
        super().__init__(f"{phase} failed: {type(exc).__name__}: {exc}")
        self.phase = phase
        self.exc = exc


class ProbeResult(list):
    """The diagnostics (a list), plus ``errors``: rules that crashed (the others ran), and
    ``notes``: one-line remarks for the user (an extra measurement that could not run, a
    CUDA request served on the CPU)."""

    def __init__(
        self, items: Iterable[Diagnostic] = (), errors: list[str] | None = None, notes: list[str] | None = None
    ) -> None:
        super().__init__(items)
        self.errors: list[str] = errors or []
        self.notes: list[str] = notes or []
        #: the per-layer measurements (nnlint/passes/probe_stats.py), for --report
        self.stats: dict[str, Any] | None = None


# ---------------------------------------------------------------------------------------
# what rules read


@dataclass
class ModuleStat:
    name: str  # qualified name; "" is the model itself
    type: str
    order: int  # first call, in execution (pre-hook) order
    leaf: bool
    calls: int = 0
    out_shape: tuple[int, ...] | None = None
    out_mean: float | None = None
    out_std: float | None = None
    nonfinite: bool = False  # some call's output had NaN/Inf
    in_std: float | None = None  # first floating input (weight layers only)
    grad_norm: float | None = None  # norm of d loss / d output (first call)
    grad_order: int | None = None  # position in backward order
    grad_nonfinite: bool = False


@dataclass
class ParamStat:
    name: str
    module: str
    shape: tuple[int, ...]
    requires_grad: bool
    ran: bool  # its module's forward ran
    used: bool  # the forward passed it (or its .data, or a tensor sharing its storage) to an op
    grad: str  # "none" | "zero" | "ok" | "nonfinite" | "frozen"
    grad_norm: float | None
    weight_norm: float
    weight_rms: float
    zero_weight: bool  # all elements exactly zero (deliberate zero-init)
    zero_grad_explained: bool = False  # zero only because of a zero-initialised weight
    #: every element equal and non-zero (a constant fill): measured only when some
    #: gradient is exactly zero, since symmetric weights are a cause of that
    constant: bool = False


@dataclass
class Layer:
    """A weight-bearing module (Linear, Conv, RNN, Embedding ...) that ran."""

    module: str
    type: str
    order: int
    embedding: bool
    fan_in: int | None
    fan_out: int | None
    weight_rms: float
    weight_norm: float
    grad_norm: float | None  # over its weight tensors (ndim >= 2); None: no grad at all
    rel: float | None  # grad_norm / weight_norm
    zero_init: bool  # some weight tensor is all zeros
    zero_grad: bool  # every weight tensor got None/zero gradient
    in_std: float | None
    out_std: float | None
    feeds: str | None = None  # the activation kind its output goes into directly
    #: its output goes straight into a BatchNorm: the layer is scale-invariant, so its relative
    #: gradient grows as its weights shrink (1/‖W‖²) and says nothing about an explosion
    batch_normed: bool = False


@dataclass
class ActivationStat:
    kind: str  # relu | relu6 | leaky_relu | elu | selu | gelu | silu | sigmoid | tanh
    module: str  # the nn activation module, or the module whose forward called it
    is_module: bool  # an nn.ReLU/... module (else a functional call)
    producer: str | None  # the module whose output is this activation's input
    line: int | None  # user's line of the functional call (None for modules)
    order: int
    call: int  # n-th call of this module/line
    units: int = 0
    dead_frac: float | None = None  # ReLU family: units negative for every sample
    saturated_frac: float | None = None  # sigmoid/tanh: outputs within 1% of the bounds
    masked_frac: float = 0.0  # inputs that were mask constants (left out)


@dataclass
class LossInfo:
    value: float
    kind: str  # cross_entropy | nll | bce_logits | bce | mse | declared | mean_square | sum | none
    source: str  # "declared" | "file" | "inferred from the output shape (8, 10)" | "fallback"
    classes: int | None = None
    note: str = ""
    #: with guessed (random) class targets: the loss averaged over every possible target,
    #: which does not depend on the draw (a batch of random targets is a noisy estimate)
    expected: float | None = None

    @property
    def chance(self) -> float | None:
        return math.log(self.classes) if self.classes and self.classes > 1 else None


@dataclass
class OutputStat:
    shape: tuple[int, ...]
    producer: str | None  # the module that returned the output tensor
    abs_max: float
    mean_abs: float
    batch_std_max: float | None  # max over units of the std across the batch
    batch_dim: int | None
    nonfinite: bool


@dataclass
class ProbeContext:
    model: Any  # the live model (rules read types only; never run it)
    model_name: str
    path: str
    device: str
    batch_size: int
    modules: dict[str, ModuleStat]
    params: dict[str, ParamStat]
    layers: list[Layer]
    activations: list[ActivationStat]
    loss: LossInfo | None
    output: OutputStat | None
    final_layer: str | None
    input_std: float | None
    grads_available: bool
    input_varies: bool | None = None  # do the probe batch's samples differ?
    #: normalization layers that use batch statistics even in eval mode
    #: (BatchNorm with track_running_stats=False): they mix the batch by design
    batch_stat_layers: list[str] = field(default_factory=list)
    nonfinite: dict[str, Any] | None = None  # phase, module, leaf, line, op, count
    batch_jacobian: dict[str, Any] | None = None
    #: NN314: which input positions one output position depends on (nnlint/passes/causal.py)
    causal_jacobian: dict[str, Any] | None = None
    second_forward: dict[str, Any] | None = None
    overfit: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    #: modules the graph pass found never run or with their output discarded (NN202's
    #: findings): their parameters get no gradient by construction
    discarded_modules: frozenset[str] = frozenset()
    #: shapes and dtypes of the example's input tensors, as given (before re-batching)
    input_shapes: list[tuple[tuple[int, ...], str]] = field(default_factory=list)

    def layer_norms(self, limit: int = 24) -> dict[str, float | None]:
        """Per-layer weight-gradient norms in execution order (for evidence)."""
        out: dict[str, float | None] = {}
        for layer in self.layers[:limit]:
            out[layer.module] = layer.grad_norm
        return out


@dataclass
class TensorSummary:
    position: str  # "inputs", "inputs[1]", "inputs['mask']"
    dtype: str
    shape: tuple[int, ...]
    count: int
    nonfinite: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    feature_std: list[float] | None = None  # per feature (dim 1) for float inputs


@dataclass
class DataContext:
    model_name: str
    path: str
    batches: int
    samples: int
    inputs: list[TensorSummary]
    target: TensorSummary | None
    target_integer: bool
    class_counts: dict[int, int]  # labels >= 0
    negative_labels: dict[int, int]  # labels < 0 (e.g. ignore_index -100) and their counts
    classes: int | None  # the head's class count, when known
    classes_source: str
    line: int | None  # where the data is declared (nnlint_examples), for findings


# ---------------------------------------------------------------------------------------
# small helpers


def _out_tensor(out: Any) -> torch.Tensor:
    """The output's first tensor, for a loss chosen from it (so it has one; if a later
    forward returns none, the loss fails on None as before)."""
    return cast(torch.Tensor, _first_tensor(out))


def _first_tensor(obj: Any, floating: bool = True, _depth: int = 0) -> torch.Tensor | None:
    if isinstance(obj, torch.Tensor):
        return obj if (obj.is_floating_point() or obj.is_complex() or not floating) else None
    if _depth > 4:
        return None
    if isinstance(obj, dict) or hasattr(obj, "keys") and hasattr(obj, "__getitem__"):
        try:
            keys = list(obj.keys())
        except Exception:
            return None
        for key in ["logits", *[k for k in keys if k != "logits"]]:
            if key in keys:
                t = _first_tensor(obj[key], floating, _depth + 1)
                if t is not None:
                    return t
        return None
    if isinstance(obj, (list, tuple)):
        for item in obj:
            t = _first_tensor(item, floating, _depth + 1)
            if t is not None:
                return t
    return None


def _all_tensors(obj: Any, _depth: int = 0) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif _depth <= 4 and isinstance(obj, dict):
        for v in obj.values():
            yield from _all_tensors(v, _depth + 1)
    elif _depth <= 4 and isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _all_tensors(v, _depth + 1)


def _map_tensors(obj: Any, fn: Callable[[torch.Tensor], Any]) -> Any:
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(_map_tensors(v, fn) for v in obj)
    if isinstance(obj, list):
        return [_map_tensors(v, fn) for v in obj]
    return obj


def _call(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def _moments(t: torch.Tensor) -> torch.Tensor:
    """[sum, L2 norm] of a tensor as a 2-element tensor on its device (no sync). Two
    reductions that cost ~1 ms on a 12 MB activation where torch.std_mean costs ~20 ms
    on the CPU; mean and std follow from them (``_mean_std``)."""
    d = t.detach()
    if d.dtype not in (torch.float32, torch.float64):
        d = d.float()
    return torch.stack([d.sum(), torch.linalg.vector_norm(d)])


def _mean_std(total: float, norm: float, n: int) -> tuple[float, float]:
    if n <= 0:
        return 0.0, 0.0
    mean = total / n
    if not math.isfinite(norm):
        return mean, norm
    return mean, math.sqrt(max(norm * norm / n - mean * mean, 0.0))


def _tolist(ts: list[torch.Tensor]) -> list[Any]:
    if not ts:
        return []
    return torch.stack([t.detach().to("cpu", torch.float64) for t in ts]).tolist()


def _bad(t: torch.Tensor) -> bool:
    """NaN or +inf anywhere (-inf alone is how masks are written: not a fault)."""
    if not t.numel():
        return False
    return bool(torch.isnan(t).any() or torch.isposinf(t).any())


def _dense(g: torch.Tensor) -> torch.Tensor:
    """Sparse gradients (nn.Embedding(sparse=True)) by their stored values."""
    if g.is_sparse:
        return g.coalesce().values()
    return g


def _batch_dim(t: torch.Tensor, n: int) -> int | None:
    if t.ndim == 0:
        return None
    if t.shape[0] == n:
        return 0
    for d, s in enumerate(t.shape):
        if s == n:
            return d
    return None


def _fans(w: torch.Tensor) -> tuple[int | None, int | None]:
    if w.ndim < 2:
        return None, None
    try:
        fi, fo = nn.init._calculate_fan_in_and_fan_out(w)
        return int(fi), int(fo)
    except Exception:
        return None, None


def resolve_device(requested: str | None, model: nn.Module | None = None) -> tuple[torch.device, str]:
    """``auto``: CUDA when available (the model's own CUDA device when it already lives
    there), else CPU. ``cuda`` without CUDA falls back to CPU with a note."""
    requested = (requested or "auto").lower()
    note = ""
    if model is not None:
        try:
            p = next(model.parameters())
        except (StopIteration, AttributeError, TypeError):
            p = None
        if p is not None and p.device.type == "cuda" and requested in ("auto", "cuda"):
            return p.device, note
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda"), note
    if requested == "cuda":
        note = "CUDA was requested but is not available; the probe ran on the CPU"
    return torch.device("cpu"), note


# ---------------------------------------------------------------------------------------
# state save / restore


class _Saved:
    """Everything the probe may change on the user's model, restored by ``restore``."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.modes = [(m, m.training) for m in model.modules()]
        self.params = [p for _, p in model.named_parameters()]
        self.grads = [p.grad for p in self.params]
        self.requires_grad = [p.requires_grad for p in self.params]
        self.buffers: list[tuple[nn.Module, str, torch.Tensor, torch.Tensor]] = []
        for mod in model.modules():
            for name, buf in mod._buffers.items():
                if buf is not None:
                    self.buffers.append((mod, name, buf, buf.detach().clone()))
        self.param_data: list[torch.Tensor] | None = None
        self.device: torch.device | None = None
        self.py_random = random.getstate()
        np = sys.modules.get("numpy")
        self.np_random = np.random.get_state() if np is not None else None
        for p in self.params:
            p.grad = None

    def snapshot_params(self) -> None:
        if self.param_data is None:
            self.param_data = [p.detach().clone() for p in self.params]

    def restore(self) -> None:
        for p in self.params:
            p.grad = None
        if self.device is not None:
            self.model.to(self.device)
        with torch.no_grad():
            if self.param_data is not None:
                for p, data in zip(self.params, self.param_data):
                    p.copy_(data.to(p.device))
            for mod, name, original, clone in self.buffers:
                if mod._buffers.get(name) is not original:
                    mod._buffers[name] = original
                if original.shape == clone.shape:
                    original.copy_(clone.to(original.device))
                else:
                    original.data = clone.to(original.device)
        for p, g, rg in zip(self.params, self.grads, self.requires_grad):
            p.grad = g
            p.requires_grad_(rg)
        for m, mode in self.modes:
            m.training = mode
        random.setstate(self.py_random)
        np = sys.modules.get("numpy")
        if np is not None and self.np_random is not None:
            np.random.set_state(self.np_random)


_SEED_DEVICE: list[torch.device] = [torch.device("cpu")]


@contextlib.contextmanager
def _rng(device: torch.device) -> Iterator[None]:
    """Fork the torch RNG (CPU, and the CUDA device in use) and seed it; the caller's
    states come back on exit."""
    devices = (
        [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    )
    with torch.random.fork_rng(devices=devices):
        _SEED_DEVICE[0] = device
        _reseed()
        yield


def _reseed() -> None:
    # torch.manual_seed would also queue lazy seeding of every accelerator backend
    # (formatting a stack trace each time: ~2 ms per call); seed only what the probe uses
    torch.default_generator.manual_seed(SEED)
    device = _SEED_DEVICE[0]
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(SEED)


# ---------------------------------------------------------------------------------------
# the recorder: hooks + a TorchFunctionMode for functional activations and op checks


class _Mode(TorchFunctionMode):
    def __init__(self, rec: _Recorder) -> None:
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        rec = self.rec
        if rec.busy:
            return func(*args, **kwargs)
        rec.busy = True
        try:
            # reading an attribute (`p.device`, `p.dtype`: a property's __get__) is not
            # using the parameter: `self.dummy = nn.Parameter(torch.empty(0))` read for
            # its device gets no gradient by design
            if rec.track_params and getattr(func, "__name__", "") != "__get__":
                rec.note_params(args, kwargs)
            kind = ACTIVATIONS.get(func) if rec.track_activations else None
            if kind is not None and args and isinstance(args[0], torch.Tensor):
                rec.activation(kind, func, args, kwargs)
            if rec.check_ops or rec.watch_views:
                before = [a for a in _all_tensors(args) if a.is_floating_point()] if rec.check_ops else None
        finally:
            rec.busy = False
        out = func(*args, **kwargs)
        if rec.check_ops or rec.watch_views:
            rec.busy = True
            try:
                if rec.check_ops:
                    rec.check_op(func, before or [], out)
                if rec.watch_views:
                    rec.check_view(func, args, out)
            finally:
                rec.busy = False
        return out


class _Recorder:
    """Registers hooks on every submodule and (optionally) a TorchFunctionMode; removes
    them on exit. What it records depends on its flags."""

    def __init__(
        self,
        model: nn.Module,
        user_path: str | None,
        batch: int,
        *,
        stats: bool = True,
        activations: bool = True,
        grad_hooks: bool = True,
        track_params: bool = True,
        check_ops: bool = False,
        view_dim: int | None = None,
        output_sums: bool = False,
    ) -> None:
        self.model = model
        self.user_real = os.path.realpath(user_path) if user_path else None
        self.batch = batch
        self.stats = stats
        self.track_activations = activations
        self.grad_hooks = grad_hooks
        self.track_params = track_params
        self.check_ops = check_ops
        self.view_dim = view_dim
        self.watch_views = view_dim is not None
        self.output_sums = output_sums
        self.busy = False
        # a module registered under two names (tied or aliased) is named by its first name,
        # as the layer table (named_modules()) names it
        self.names: dict[nn.Module, str] = {}
        for n, m in model.named_modules(remove_duplicate=False):
            self.names.setdefault(m, n)
        self.mods: dict[str, ModuleStat] = {}
        self.leaf_names = {n for n, m in model.named_modules() if next(iter(m.children()), None) is None}
        self.weight_names = {n for n, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)}
        self.act_module_names = {n for n, m in model.named_modules() if isinstance(m, ACTIVATION_MODULES)}
        self.stack: list[str] = []
        self.order = 0
        self.calls: list[tuple[str, torch.Tensor, int]] = []  # (module, [sum, norm], numel) per call, hook order
        self.in_stats: dict[str, tuple[torch.Tensor, int]] = {}
        self.out_shapes: dict[str, tuple[int, ...]] = {}
        self.grad_norms: dict[str, torch.Tensor] = {}
        self.grad_order: dict[str, int] = {}
        self.grad_counter = 0
        self.produced: dict[int, tuple[weakref.ref, str]] = {}
        self.batch_normed: set[str] = set()  # layers whose output goes straight into a BatchNorm
        self.acts: list[tuple[ActivationStat, torch.Tensor | None]] = []
        self.act_calls: dict[tuple[str, int | None], int] = {}
        self.param_ids = {id(p): n for n, p in model.named_parameters()}
        self.param_ptrs: dict[int, str] = {}
        for n, p in model.named_parameters():
            try:
                if p.numel():
                    self.param_ptrs.setdefault(p.data_ptr(), n)
            except Exception:
                pass
        self.used_params: set[str] = set()
        self.hooked: set[str] = set()
        self._last_summed: torch.Tensor | None = None
        self._last_t: torch.Tensor | None = None
        self._last_version = -1
        self._last_stats: torch.Tensor | None = None
        self._in_finite: dict[str, bool] = {}
        self.first_bad_op: dict[str, Any] | None = None
        self.first_bad_module: dict[str, Any] | None = None
        self.first_view: dict[str, Any] | None = None
        self.sums: list[tuple[str, torch.Tensor]] = []
        self.handles: list[Any] = []
        self.mode: _Mode | None = None
        self._line_cache: dict[str, bool] = {}

    # -- lifecycle
    def __enter__(self) -> _Recorder:
        for mod, name in self.names.items():
            try:
                self.handles.append(mod.register_forward_pre_hook(self._pre(name)))
                self.handles.append(mod.register_forward_hook(self._post(name)))
            except Exception:  # scripted modules cannot be hooked
                continue
        if self.track_activations or self.track_params or self.check_ops or self.watch_views:
            self.mode = _Mode(self)
            self.mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.mode is not None:
            mode, self.mode = self.mode, None
            mode.__exit__(None, None, None)
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def stop_mode(self) -> None:
        if self.mode is not None:
            mode, self.mode = self.mode, None
            mode.__exit__(None, None, None)

    # -- source lines
    def _is_user(self, filename: str) -> bool:
        hit = self._line_cache.get(filename)
        if hit is None:
            hit = self.user_real is not None and os.path.realpath(filename) == self.user_real
            self._line_cache[filename] = hit
        return hit

    def user_line(self) -> int | None:
        f: FrameType | None = sys._getframe(2)
        while f is not None:
            if self._is_user(f.f_code.co_filename):
                return f.f_lineno
            f = f.f_back
        return None

    # -- hooks
    def _pre(self, name: str):
        def hook(mod: nn.Module, args: Any) -> None:
            if self.busy:
                return
            self.stack.append(name)
            st = self.mods.get(name)
            if st is None:
                st = self.mods[name] = ModuleStat(
                    name=name, type=type(mod).__name__, order=self.order, leaf=name in self.leaf_names
                )
                self.order += 1
            st.calls += 1
            if isinstance(mod, _BATCH_NORMS):
                x = _first_tensor(args)
                ref = self.produced.get(id(x)) if x is not None else None
                if ref is not None and ref[0]() is x:
                    self.batch_normed.add(ref[1])
            if self.stats and name in self.weight_names and name not in self.in_stats:
                x = _first_tensor(args)
                if x is not None and x.numel():
                    if (
                        x is self._last_t and x._version == self._last_version and self._last_stats is not None
                    ):  # measured already
                        self.in_stats[name] = (self._last_stats, x.numel())
                    else:
                        self.busy = True
                        try:
                            self.in_stats[name] = (_moments(x), x.numel())
                        finally:
                            self.busy = False
            if self.check_ops and self.first_bad_module is None:
                self._in_finite[name] = not any(_bad(t) for t in _all_tensors(args) if t.is_floating_point())

        return hook

    def _post(self, name: str):
        def hook(mod: nn.Module, args: Any, out: Any) -> None:
            if self.busy:
                return
            if self.stack and self.stack[-1] == name:
                self.stack.pop()
            first = _first_tensor(out)
            if first is None:
                return
            t: torch.Tensor = first  # not Optional: `weakref() is t` below must not widen it
            self.busy = True
            try:
                if name not in self.out_shapes:
                    self.out_shapes[name] = tuple(t.shape)
                if self.stats and t.numel():
                    # a container returning its last child's output is measured once; an
                    # in-place op (ReLU(inplace=True)) bumps the version: measured again
                    if t is not self._last_t or t._version != self._last_version:
                        self._last_t, self._last_version, self._last_stats = t, t._version, _moments(t)
                    if self._last_stats is not None:  # set with _last_t
                        self.calls.append((name, self._last_stats, t.numel()))
                if self.output_sums and (name in self.leaf_names or name == "") and t is not self._last_summed:
                    self._last_summed = t  # a container returning its last child's output: summed once
                    self.sums.append((name, t.detach().sum() if t.numel() else t.new_zeros(())))
                if name in self.leaf_names or name in self.weight_names:
                    key = id(t)
                    old = self.produced.get(key)
                    if old is None or old[0]() is not t:
                        self.produced[key] = (weakref.ref(t), name)
                if self.grad_hooks and t.requires_grad and name not in self.hooked:
                    self.hooked.add(name)
                    t.register_hook(self._grad_hook(name))
                if self.check_ops and self.first_bad_module is None and self._in_finite.get(name, True):
                    if _bad(t):
                        self.first_bad_module = {"module": name, "leaf": name in self.leaf_names}
            finally:
                self.busy = False

        return hook

    def _grad_hook(self, name: str):
        def hook(g: torch.Tensor) -> None:
            if name not in self.grad_norms:
                self.grad_norms[name] = torch.linalg.vector_norm(g.detach().float())
                self.grad_order[name] = self.grad_counter
                self.grad_counter += 1
            return None

        return hook

    # -- function mode callbacks (run with self.busy set)
    def note_params(self, args: Any, kwargs: dict | None = None) -> None:
        for a in (*args, *(kwargs or {}).values()):
            if isinstance(a, torch.Tensor):
                self._note(a)
            elif isinstance(a, (list, tuple)):
                for b in a:
                    if isinstance(b, torch.Tensor):
                        self._note(b)

    def _note(self, t: torch.Tensor) -> None:
        n = self.param_ids.get(id(t))
        if n is None and not t.requires_grad and self.param_ptrs:
            try:
                n = self.param_ptrs.get(t.data_ptr())
            except Exception:
                n = None
        if n is not None:
            self.used_params.add(n)

    def activation(self, kind: str, func: Any, args: tuple, kwargs: dict) -> None:
        x = args[0]
        if kind == "hardtanh":
            lo = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
            kind = "relu6" if lo == 0 else "tanh_like"
        owner = self.stack[-1] if self.stack else ""
        is_module = owner in self.act_module_names
        line = None if is_module else self.user_line()
        ref = self.produced.get(id(x))
        producer = ref[1] if ref is not None and ref[0]() is x else None
        key = (owner, line)
        call = self.act_calls.get(key, 0)
        self.act_calls[key] = call + 1
        st = ActivationStat(
            kind=kind, module=owner, is_module=is_module, producer=producer, line=line, order=len(self.acts), call=call
        )
        measured = None
        if self.stats and x.is_floating_point() and x.numel() and kind in ("relu", "relu6", "sigmoid", "tanh"):
            d = x.detach()
            if d.dtype not in (torch.float32, torch.float64):
                d = d.float()
            b = _batch_dim(d, self.batch)
            if b is None and d.ndim > 1 and self.batch and d.shape[0] % self.batch == 0:
                b = 0  # batch and sequence flattened into one dimension (OPT's FFN: (B*T, ffn))
            if kind in ("relu", "relu6"):
                m = d.amax(dim=b) if b is not None and d.ndim > 1 else d
                valid = m > -MASK_ABS  # units whose inputs are not all mask constants (NaN: False)
                dead = (m < 0) & valid
                measured = torch.stack(
                    [
                        dead.sum().double(),
                        valid.sum().double(),
                        torch.tensor(float(m.numel()), dtype=torch.float64, device=d.device),
                    ]
                )
            else:
                a = d.abs()
                valid = a < MASK_ABS
                sat = (a > SAT_INPUT[kind]) & valid
                measured = torch.stack(
                    [
                        sat.sum().double(),
                        valid.sum().double(),
                        torch.tensor(float(a.numel()), dtype=torch.float64, device=d.device),
                    ]
                )
            st.units = int(d.numel() // (d.shape[b] if b is not None and d.ndim > 1 else 1))
        self.acts.append((st, measured))

    def check_op(self, func: Any, before: list[torch.Tensor], out: Any) -> None:
        if self.first_bad_op is not None:
            return
        outs = [t for t in _all_tensors(out) if t.is_floating_point()]
        if not outs or not any(_bad(t) for t in outs):
            return
        if any(_bad(t) for t in before):
            return
        self.first_bad_op = {
            "op": getattr(func, "__name__", repr(func)),
            "module": self.stack[-1] if self.stack else "",
            "line": self.user_line(),
        }

    def check_view(self, func: Any, args: tuple, out: Any) -> None:
        if self.first_view is not None or getattr(func, "__name__", "") not in VIEW_NAMES:
            return
        if not args or not isinstance(args[0], torch.Tensor) or not isinstance(out, torch.Tensor):
            return
        x, d = args[0], self.view_dim or 0
        if x.ndim > d and x.shape[d] == self.batch and (out.ndim <= d or out.shape[d] != self.batch):
            self.first_view = {
                "op": getattr(func, "__name__", ""),
                "module": self.stack[-1] if self.stack else "",
                "line": self.user_line(),
                "from_shape": list(x.shape),
                "to_shape": list(out.shape),
            }


# ---------------------------------------------------------------------------------------
# inputs and losses


def _prepare_inputs(inputs: Any, n_wanted: int, gen: torch.Generator) -> tuple[Any, int | None, int | None]:
    """Re-batch every tensor whose dim 0 is the batch to ``n_wanted`` samples (extra
    samples drawn like the given ones). Returns (inputs, new batch, old batch)."""
    first = _first_tensor(inputs, floating=False)
    if first is None or first.ndim == 0:
        return inputs, None, None
    b0 = first.shape[0]
    if b0 == n_wanted:
        return inputs, b0, b0

    def fix(t: torch.Tensor) -> torch.Tensor:
        if t.ndim == 0 or t.shape[0] != b0:
            return t
        if n_wanted <= b0:
            return t[:n_wanted]
        extra = n_wanted - b0
        shape = (extra, *t.shape[1:])
        if t.dtype == torch.bool:
            p = t.float().mean().item() if t.numel() else 0.5
            new = torch.rand(shape, generator=gen) < p
        elif t.is_floating_point():
            mean = t.detach().float().mean().item() if t.numel() else 0.0
            std = t.detach().float().std().item() if t.numel() > 1 else 1.0
            if not math.isfinite(std) or std == 0:
                std = 1.0 if t.numel() <= 1 else 0.0
            new = (torch.randn(shape, generator=gen) * std + mean).to(t.dtype)
        elif t.is_complex():
            new = torch.randn(shape, generator=gen, dtype=t.dtype)
        else:
            lo = int(t.min().item()) if t.numel() else 0
            hi = int(t.max().item()) if t.numel() else 1
            new = torch.randint(lo, hi + 1, shape, generator=gen).to(t.dtype)
        return torch.cat([t.detach(), new.to(t.device)], dim=0)

    return _map_tensors(inputs, fix), n_wanted, b0


def _loss_kind(name: str) -> str:
    n = name.lower().replace("_", "").replace("loss", "")
    if "crossentropy" in n and "binary" not in n:
        return "cross_entropy"
    if n in ("nll", "nllloss", "nll2d") or n.startswith("nll"):
        return "nll"
    if "bcewithlogits" in n or "binarycrossentropywithlogits" in n:
        return "bce_logits"
    if n in ("bce", "binarycrossentropy"):
        return "bce"
    if n in ("mse", "l1", "smoothl1", "huber", "meansquarederror"):
        return "mse"
    return "declared"


def _class_dim(out: torch.Tensor, k: int | None) -> int | None:
    if out.ndim < 2:
        return None
    if k is None:
        return out.ndim - 1
    if out.shape[-1] == k:
        return out.ndim - 1
    if out.shape[1] == k:
        return 1
    return None


def _over_targets(kind: str, cdim: int) -> Callable[[Any], torch.Tensor]:
    """The cross-entropy (or NLL) averaged over every possible class target: what a batch
    of uniformly random targets estimates, exactly (label smoothing averages out too)."""

    def over_targets(o: Any) -> torch.Tensor:
        p = _out_tensor(o).detach().double()
        if kind == "nll":
            per = -p.mean(cdim)
        else:  # shifted by the max first: huge equal logits would round logsumexp - mean to 0
            z = p - p.amax(cdim, keepdim=True)
            per = torch.logsumexp(z, cdim) - z.mean(cdim)
        return per.mean()

    return over_targets


_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class _Loss:
    """A loss closure with a fixed target, built once from the first output. ``fn`` is the
    loss whose value is reported; ``total`` adds, when nnlint chose the loss, the mean
    square of the model's other outputs (a detection model's box head, a VAE's mu/logvar)
    so that every output's parameters get a gradient, as in the user's real training."""

    def __init__(self, example: Example, out: Any, gen: torch.Generator, integer_inputs: bool) -> None:
        self.example = example
        self.gen = gen
        self.fn: Callable[[Any], torch.Tensor]
        self.info: LossInfo
        self.expected_fn: Callable[[Any], torch.Tensor] | None = None
        self._build(out, integer_inputs)

    def total(self, out: Any) -> torch.Tensor:
        loss = self.fn(out)
        if not isinstance(loss, torch.Tensor):
            loss = torch.as_tensor(loss)
        if loss.numel() != 1:
            loss = loss.float().mean()
        if self.example.loss is not None or self.info.kind == "sum":
            return loss
        prim = _first_tensor(out)
        extra = [
            t for t in _all_tensors(out) if t is not prim and t.requires_grad and t.is_floating_point() and t.numel()
        ]
        for t in extra:
            loss = loss + t.float().pow(2).mean()
        return loss

    def _target(self, kind: str, prim: torch.Tensor, k: int | None, cdim: int | None) -> torch.Tensor:
        dev = prim.device
        if kind in ("cross_entropy", "nll"):
            assert k is not None and cdim is not None
            shape = tuple(s for i, s in enumerate(prim.shape) if i != cdim)
            return torch.randint(0, k, shape, generator=self.gen).to(dev)
        if kind in ("bce", "bce_logits"):
            return (torch.rand(tuple(prim.shape), generator=self.gen) < 0.5).to(dev, prim.dtype)
        return torch.randn(tuple(prim.shape), generator=self.gen).to(dev, prim.dtype)

    def _build(self, out: Any, integer_inputs: bool) -> None:
        ex = self.example
        F = torch.nn.functional
        prim = _first_tensor(out)
        declared = ex.loss
        classes = ex.classes
        if declared is not None:
            name = (
                type(declared).__name__
                if isinstance(declared, nn.Module)
                else getattr(declared, "__name__", type(declared).__name__)
            )
            kind = _loss_kind(name)
            k = classes
            cdim = None
            if kind in ("cross_entropy", "nll") and prim is not None:
                cdim = _class_dim(prim, k) if k else (1 if prim.ndim >= 2 else None)
                if cdim is not None and k is None:
                    k = int(prim.shape[cdim])
            target = ex.target
            if target is None and prim is not None:
                if kind in ("cross_entropy", "nll") and cdim is None:
                    kind = "declared"
                if kind in ("cross_entropy", "nll") and cdim is not None and getattr(declared, "weight", None) is None:
                    self.expected_fn = _over_targets(kind, cdim)  # (cdim is None made the kind "declared")
                target = self._target(kind if kind != "declared" else "mse", prim, k, cdim)
            elif isinstance(target, torch.Tensor) and prim is not None:
                target = target.to(prim.device)
            self.info = LossInfo(
                value=float("nan"),
                kind=kind,
                source="declared",
                classes=k if kind in ("cross_entropy", "nll") else None,
            )
            tgt = target
            self.fn = lambda o: declared(o, tgt)
            return
        loss_name = ex.meta.get("loss_name") if isinstance(ex.meta, dict) else None
        if prim is None:
            self.info = LossInfo(
                value=float("nan"),
                kind="sum",
                source="fallback",
                note="the model returned no floating tensor; loss = sum of all outputs",
            )
            self.fn = lambda o: sum((t.float().sum() for t in _all_tensors(o) if t.requires_grad), torch.zeros(()))
            return
        neutral = isinstance(ex.meta, dict) and ex.meta.get("objective") == "neutral"
        if neutral and not loss_name:
            # not a classifier (Q-values, a generator, an autoencoder): no cross-entropy assumption
            kind, source = (
                "mean_square",
                f"not a classifier ({ex.meta.get('objective_why') or 'no loss applied to it'})",
            )
            classes = None
        elif loss_name:
            kind = _loss_kind(str(loss_name))
            source = "file"
        elif classes:
            kind, source = "cross_entropy", "declared classes"
        elif prim.is_floating_point() and prim.ndim == 2 and prim.shape[1] >= 2:
            kind, source = "cross_entropy", f"inferred from the output shape {tuple(prim.shape)}"
        elif prim.is_floating_point() and prim.ndim == 3 and prim.shape[2] >= 2 and integer_inputs:
            kind, source = "cross_entropy", f"inferred from the output shape {tuple(prim.shape)} (token ids in)"
        else:
            kind, source = "mean_square", "no classification head found"
        target = ex.target
        if kind in ("cross_entropy", "nll"):
            cdim = _class_dim(prim, classes)
            if cdim is None:
                kind, source = "mean_square", f"the output {tuple(prim.shape)} has no dimension of {classes} classes"
            else:
                k = int(prim.shape[cdim])
                tgt = target.to(prim.device) if isinstance(target, torch.Tensor) else self._target(kind, prim, k, cdim)
                fn = F.cross_entropy if kind == "cross_entropy" else F.nll_loss

                def ce(o: Any, fn=fn, cdim=cdim, tgt=tgt) -> torch.Tensor:
                    p = _out_tensor(o)
                    if cdim == p.ndim - 1 and p.ndim > 2:
                        return fn(p.reshape(-1, p.shape[-1]), tgt.reshape(-1))
                    return fn(p, tgt)

                self.fn = ce
                if not isinstance(target, torch.Tensor):
                    self.expected_fn = _over_targets(kind, cdim)
                self.info = LossInfo(value=float("nan"), kind=kind, source=source, classes=k)
                return
        if kind in ("bce", "bce_logits", "mse"):
            tgt = target.to(prim.device) if isinstance(target, torch.Tensor) else self._target(kind, prim, None, None)
            pointwise = {
                "bce": F.binary_cross_entropy,
                "bce_logits": F.binary_cross_entropy_with_logits,
                "mse": F.mse_loss,
            }[kind]

            def against_target(o: Any, fn=pointwise, tgt=tgt) -> torch.Tensor:
                return fn(_out_tensor(o), tgt)

            self.fn = against_target
            self.info = LossInfo(value=float("nan"), kind=kind, source=source)
            return
        self.fn = lambda o: _out_tensor(o).float().pow(2).mean()
        self.info = LossInfo(
            value=float("nan"), kind="mean_square", source=source, note="loss = mean of the squared outputs"
        )


# ---------------------------------------------------------------------------------------
# the probe


class Probe:
    def __init__(
        self, example: Example, rules: list[Rule], settings: dict[str, Any], path: str, model_name: str
    ) -> None:
        self.example = example
        self.rules = rules
        self.settings = settings
        self.path = path
        self.model_name = model_name
        self.needs: set[str] = set()
        for r in rules:
            self.needs |= set(getattr(r, "needs", ()) or ())
        self.model: nn.Module = example.model
        self.gen = torch.Generator().manual_seed(SEED)

    def _step(self, name: str) -> None:
        """Tell the caller (the worker's progress events) which step runs, so that a crash
        or a hang in user code can be named."""
        progress = self.settings.get("progress")
        if callable(progress):
            progress(name)

    # -- the whole run
    def run(self) -> tuple[ProbeContext | None, DataContext | None]:
        model = self.model
        device, note = resolve_device(self.settings.get("device"), model)
        probe_rules = [r for r in self.rules if r.pass_ == "probe"]
        data_rules = [r for r in self.rules if r.pass_ == "data"]
        saved = _Saved(model)
        ctx: ProbeContext | None = None
        data_ctx: DataContext | None = None
        rng = _rng(device)
        rng.__enter__()
        try:
            orig_device = self._model_device()
            if orig_device is not None and orig_device != device and not (orig_device.type == device.type == "cuda"):
                saved.device = orig_device
                model.to(device)
            elif orig_device is not None:
                device = orig_device
            self.device = device
            inputs = _map_tensors(self.example.inputs, lambda t: t.to(device))
            n_wanted = max(MIN_BATCH, int(self.settings.get("batch_size") or 0) or MIN_BATCH)
            batched, n, b0 = _prepare_inputs(inputs, n_wanted, self.gen)
            self.inputs, self.batch = batched, n or 1
            self.orig_inputs, self.orig_batch = inputs, b0 or 1
            if probe_rules or (data_rules and self.example.data is not None):
                ctx = self._main(saved)
                if note:
                    ctx.notes.append(note)
            if data_rules and self.example.data is not None:
                self._step("data probe")
                data_ctx = self._data(ctx)
        finally:
            try:
                saved.restore()
            finally:
                rng.__exit__(None, None, None)
        return ctx, data_ctx

    def _model_device(self) -> torch.device | None:
        for t in self.model.parameters():
            return t.device
        for b in self.model.buffers():
            return b.device
        return None

    def _forward(self, inputs: Any) -> Any:
        return _call(self.model, inputs)

    def _set_mode(self, training: bool) -> None:
        for m in self.model.modules():
            m.training = training

    def _main(self, saved: _Saved) -> ProbeContext:
        integer_inputs = _first_tensor(self.inputs) is None and _first_tensor(self.inputs, floating=False) is not None
        self._set_mode(True)
        rec, out = self._recorded_forward()
        try:
            try:
                self.loss = _Loss(self.example, out, self.gen, integer_inputs)
                main = self.loss.fn(out)
                if not isinstance(main, torch.Tensor):
                    main = torch.as_tensor(main)
                if main.numel() != 1:
                    main = main.float().mean()
                loss = self.loss.total(out)
            except Exception as exc:
                raise ProbeError("loss", exc) from exc
            loss_value = float(main.detach().float().item())
            del main
            grads_available = bool(loss.requires_grad)
            if grads_available:
                self._step("probe backward")
                try:
                    loss.backward()
                except Exception as exc:
                    raise ProbeError("backward", exc) from exc
        finally:
            rec.close()
        info = self.loss.info
        info.value = loss_value
        if self.loss.expected_fn is not None:
            try:
                info.expected = float(self.loss.expected_fn(out).item())
            except Exception:
                info.expected = None
        ctx = self._collect(rec, out, info, grads_available)
        del out, loss
        # zero grads now read: free them before the extra runs
        for p in saved.params:
            p.grad = None
        if "zero_init_check" in self.needs and grads_available:
            self._step("probe zero-init check")
            self._zero_init_check(ctx, saved)
        if "nonfinite_origin" in self.needs and ctx.nonfinite is not None:
            self._step("probe non-finite search")
            self._locate_nonfinite(ctx)
        if "batch_jacobian" in self.needs or "second_forward" in self.needs or "causal_jacobian" in self.needs:
            self._step("probe eval-mode checks")
            self._eval_checks(ctx, saved)
        if "overfit" in self.needs and self.settings.get("overfit"):
            self._step("probe overfit")
            self._overfit(ctx, saved, integer_inputs)
        return ctx

    def _recorded_forward(self) -> tuple[_Recorder, Any]:
        """The main forward (train mode), falling back to the caller's own batch when the
        re-batched one does not fit the model."""
        attempts = [(self.inputs, self.batch)]
        if self.orig_batch != self.batch:
            attempts.append((self.orig_inputs, self.orig_batch))
        last: BaseException | None = None
        self._step("probe forward")
        for inputs, n in attempts:
            rec = _Recorder(self.model, self.path, n)
            try:
                with torch.enable_grad(), torch.inference_mode(False):
                    _reseed()
                    with rec:
                        out = self._forward(inputs)
                    rec.close()
                self.inputs, self.batch = inputs, n
                return rec, out
            except Exception as exc:
                rec.close()
                last = exc
                for p in self.model.parameters():
                    p.grad = None
        assert last is not None
        raise ProbeError("forward", last) from last

    # -- turn recordings into numbers
    def _collect(self, rec: _Recorder, out: Any, info: LossInfo, grads_available: bool) -> ProbeContext:
        model = self.model
        names = [n for n, _, _ in rec.calls]
        values = [_mean_std(a, b, n) for (a, b), (_, _, n) in zip(_tolist([s for _, s, _ in rec.calls]), rec.calls)]
        mods = rec.mods
        for name, (mean, std) in zip(names, values):
            st = mods[name]
            if st.out_mean is None:
                st.out_mean, st.out_std = mean, std
            # NaN or +inf; a mean of -inf means only -inf values: a mask, not a fault
            if math.isnan(mean) or mean == math.inf:
                st.nonfinite = True
        for name, shape in rec.out_shapes.items():
            if name in mods:
                mods[name].out_shape = shape
        in_names = list(rec.in_stats)
        for name, (a, b) in zip(in_names, _tolist([rec.in_stats[n][0] for n in in_names])):
            mods[name].in_std = _mean_std(a, b, rec.in_stats[name][1])[1]
        g_names = list(rec.grad_norms)
        for name, g in zip(g_names, _tolist([rec.grad_norms[n] for n in g_names])):
            mod_st = mods.get(name)
            if mod_st is not None:
                mod_st.grad_norm = g
                mod_st.grad_order = rec.grad_order.get(name)
                mod_st.grad_nonfinite = not math.isfinite(g)

        # parameters
        ran = set(mods)
        params: dict[str, ParamStat] = {}
        plist = list(model.named_parameters())
        owner: dict[str, str] = {}
        for mname, m in model.named_modules():
            for pname, _ in m.named_parameters(recurse=False):
                owner.setdefault(f"{mname}.{pname}" if mname else pname, mname)
        w_norms = _tolist(
            [
                torch.linalg.vector_norm(p.detach().float()) if p.numel() else p.new_zeros((), dtype=torch.float32)
                for _, p in plist
            ]
        )
        g_list = [(n, p.grad) for n, p in plist if p.grad is not None]
        g_norms = dict(
            zip(
                [n for n, _ in g_list],
                _tolist([torch.linalg.vector_norm(_dense(g.detach()).float()) for _, g in g_list]),
            )
        )
        for (name, p), wn in zip(plist, w_norms):
            mname = owner.get(name, name.rsplit(".", 1)[0] if "." in name else "")
            gn = g_norms.get(name)
            if not p.requires_grad:
                state = "frozen"
            elif gn is None:
                state = "none"
            elif not math.isfinite(gn):
                state = "nonfinite"
            elif gn == 0:
                state = "zero"
            else:
                state = "ok"
            numel = max(p.numel(), 1)
            params[name] = ParamStat(
                name=name,
                module=mname,
                shape=tuple(p.shape),
                requires_grad=p.requires_grad,
                ran=mname in ran,
                used=name in rec.used_params if rec.track_params else mname in ran,
                grad=state,
                grad_norm=gn,
                weight_norm=wn,
                weight_rms=wn / math.sqrt(numel),
                zero_weight=wn == 0 and p.numel() > 0,
            )
        if any(s.grad == "zero" for s in params.values()):
            named_p = dict(plist)
            for s in params.values():
                p = named_p[s.name]
                if p.ndim >= 2 and p.numel() > 1 and not s.zero_weight:
                    flat = p.detach().reshape(-1)
                    s.constant = bool((flat == flat[0]).all())

        # activations
        acts: list[ActivationStat] = []
        measured = [(st, m) for st, m in rec.acts if m is not None]
        vals = _tolist([m for _, m in measured])
        for (act, _), (hit, valid, total) in zip(measured, vals):
            if valid > 0:
                frac = hit / valid
                if act.kind in ("relu", "relu6"):
                    act.dead_frac = frac
                else:
                    act.saturated_frac = frac
            act.masked_frac = 1 - valid / total if total else 0.0
        acts = [st for st, _ in rec.acts]

        # weight layers
        layers: list[Layer] = []
        named = dict(model.named_modules())
        feeds: dict[str, str] = {}
        for act in acts:
            if act.producer is not None:
                feeds.setdefault(act.producer, act.kind)
        for name, st in sorted(mods.items(), key=lambda kv: kv[1].order):
            m = named.get(name)
            if m is None or not isinstance(m, WEIGHT_LAYERS):
                continue
            ws = [(pn, p) for pn, p in m.named_parameters(recurse=False) if p.ndim >= 2]
            if not ws:
                continue
            found = [params.get(f"{name}.{pn}" if name else pn) for pn, _ in ws]
            stats = [s for s in found if s is not None]
            wn = math.sqrt(sum(s.weight_norm**2 for s in stats))
            numel = sum(max(math.prod(s.shape), 1) for s in stats)
            gs = [s.grad_norm for s in stats if s.grad_norm is not None]
            gn = math.sqrt(sum(g * g for g in gs)) if gs else None
            fi, fo = _fans(ws[0][1])
            layers.append(
                Layer(
                    module=name,
                    type=st.type,
                    order=st.order,
                    embedding=isinstance(m, EMBEDDINGS),
                    fan_in=fi,
                    fan_out=fo,
                    weight_rms=wn / math.sqrt(max(numel, 1)),
                    weight_norm=wn,
                    grad_norm=gn,
                    rel=(gn / wn if gn is not None and wn > 0 else None),
                    zero_init=any(s.zero_weight for s in stats),
                    zero_grad=all(s.grad in ("none", "zero", "frozen") for s in stats),
                    in_std=st.in_std,
                    out_std=st.out_std,
                    feeds=feeds.get(name),
                    batch_normed=name in rec.batch_normed,
                )
            )

        # output
        prim = _first_tensor(out)
        output = None
        final_layer = None
        if prim is not None:
            ref = rec.produced.get(id(prim))
            producer = ref[1] if ref is not None and ref[0]() is prim else None
            d = prim.detach()
            d = d if d.dtype in (torch.float32, torch.float64) else d.float()
            b = 0 if prim.ndim >= 1 and prim.shape[0] == self.batch else None
            finite = not _bad(d)
            dd = (
                d
                if finite and not bool(torch.isneginf(d).any())
                else torch.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0)
            )
            batch_std = (
                float(dd.std(dim=0, correction=0).max())
                if b == 0 and d.shape[0] > 1 and d.numel() > d.shape[0] - 1
                else None
            )
            output = OutputStat(
                shape=tuple(prim.shape),
                producer=producer,
                abs_max=float(dd.abs().max()) if dd.numel() else 0.0,
                mean_abs=float(dd.abs().mean()) if dd.numel() else 0.0,
                batch_std_max=batch_std,
                batch_dim=b,
                nonfinite=not finite,
            )
            if producer is not None and producer in {l.module for l in layers}:
                final_layer = producer
        if final_layer is None:
            non_emb = [l for l in layers if not l.embedding]
            if non_emb:
                final_layer = max(non_emb, key=lambda l: l.order).module
                # the layer that *finished* last is the head: use hook order of outputs
                finished = [n for n in names if n in {l.module for l in non_emb}]
                if finished:
                    final_layer = finished[-1]

        first_in = _first_tensor(self.inputs)
        input_std = None
        if first_in is not None and first_in.numel() > 1:
            input_std = float(first_in.detach().float().std())
        any_in = _first_tensor(self.inputs, floating=False)
        input_varies = None
        if any_in is not None and any_in.ndim and any_in.shape[0] == self.batch and self.batch > 1:
            input_varies = bool((any_in.detach() != any_in.detach()[:1]).any())

        ctx = ProbeContext(
            model=model,
            model_name=self.model_name,
            path=self.path,
            device=str(self.device),
            batch_size=self.batch,
            modules=mods,
            params=params,
            layers=layers,
            activations=acts,
            loss=info,
            output=output,
            final_layer=final_layer,
            input_std=input_std,
            grads_available=grads_available,
            input_varies=input_varies,
            discarded_modules=frozenset((self.example.meta or {}).get("unused_modules") or ()),
            input_shapes=[(tuple(t.shape), str(t.dtype).replace("torch.", "")) for t in _all_tensors(self.orig_inputs)],
            batch_stat_layers=[
                n
                for n, m in model.named_modules()
                if isinstance(m, nn.modules.batchnorm._NormBase)
                and not isinstance(m, nn.modules.instancenorm._InstanceNorm)
                and getattr(m, "running_mean", None) is None
                and n in mods
            ],
        )
        # non-finite anywhere?
        bad_fwd = next((n for n in names if mods[n].nonfinite), None)
        bad_grad = [s for s in params.values() if s.grad == "nonfinite"]
        if bad_fwd is not None or not math.isfinite(info.value) or bad_grad or (output and output.nonfinite):
            if bad_fwd is not None:
                first = bad_fwd
                ctx.nonfinite = {
                    "phase": "forward",
                    "module": first,
                    "leaf": mods[first].leaf,
                    "count_modules": sum(1 for s in mods.values() if s.nonfinite),
                }
            elif not math.isfinite(info.value):
                ctx.nonfinite = {"phase": "loss", "module": final_layer, "leaf": True, "loss": info.value}
            else:
                # backward: the module whose output gradient went non-finite first
                cands = [s for s in mods.values() if s.grad_nonfinite and s.grad_order is not None]
                first_mod = min(cands, key=lambda s: s.grad_order or 0).name if cands else None  # never None here
                first_param = (
                    max(bad_grad, key=lambda s: mods[s.module].order if s.module in mods else -1) if bad_grad else None
                )
                ctx.nonfinite = {
                    "phase": "backward",
                    "module": first_mod if first_mod is not None else (first_param.module if first_param else None),
                    "leaf": False,
                    "params": [s.name for s in bad_grad][:10],
                }
        return ctx

    # -- NN309 helper: zero gradients caused by a deliberate zero-init
    def _zero_init_check(self, ctx: ProbeContext, saved: _Saved) -> None:
        zero_grads = [s for s in ctx.params.values() if s.grad in ("none", "zero") and s.used and s.requires_grad]
        zero_weights = [s for s in ctx.params.values() if s.zero_weight and not s.name.endswith("bias")]
        if not zero_grads or not zero_weights:
            return
        named = dict(self.model.named_parameters())
        named_mods = dict(self.model.named_modules())
        saved.snapshot_params()
        try:
            with torch.no_grad():
                for s in zero_weights:
                    p = named[s.name]
                    mod = named_mods.get(s.module)
                    if p.ndim <= 1 and mod is not None and "norm" in type(mod).__name__.lower():
                        p.fill_(1.0)
                    else:
                        p.normal_(0.0, 0.02, generator=None)
            with torch.enable_grad(), torch.inference_mode(False):
                _reseed()
                self._set_mode(True)
                out = self._forward(self.inputs)
                self.loss.total(out).backward()
            for s in zero_grads:
                g = named[s.name].grad
                if g is not None and bool(torch.count_nonzero(_dense(g)) > 0):
                    s.zero_grad_explained = True
        except Exception as exc:
            ctx.notes.append(f"zero-init re-check failed: {type(exc).__name__}: {exc}")
        finally:
            with torch.no_grad():
                for p, data in zip(saved.params, saved.param_data or []):
                    p.copy_(data)
            for p in saved.params:
                p.grad = None

    # -- NN302 helper: which op and line made the first NaN/Inf
    def _locate_nonfinite(self, ctx: ProbeContext) -> None:
        nf = ctx.nonfinite
        assert nf is not None
        if nf["phase"] in ("forward", "loss"):
            rec = _Recorder(
                self.model,
                self.path,
                self.batch,
                stats=False,
                activations=False,
                grad_hooks=False,
                track_params=False,
                check_ops=True,
            )
            try:
                with torch.no_grad():
                    _reseed()
                    self._set_mode(True)
                    with rec:
                        self._forward(self.inputs)
            except Exception as exc:
                ctx.notes.append(f"non-finite re-run failed: {type(exc).__name__}: {exc}")
            finally:
                rec.close()
            if rec.first_bad_module is not None:
                nf["module"] = rec.first_bad_module["module"]
                nf["leaf"] = rec.first_bad_module["leaf"]
            if rec.first_bad_op is not None:
                nf.update(
                    op=rec.first_bad_op["op"], line=rec.first_bad_op["line"], op_module=rec.first_bad_op["module"]
                )
            elif nf["phase"] == "forward" and rec.first_bad_module is None:
                # the statistic overflowed, the values did not: not a NaN/Inf after all
                ctx.nonfinite = None
                for st in ctx.modules.values():
                    st.nonfinite = False
            return
        # backward: detect_anomaly names the op and its forward traceback
        caught: list[str] = []
        try:
            with warnings.catch_warnings(record=True) as ws, torch.autograd.detect_anomaly(check_nan=True):
                warnings.simplefilter("always")
                with torch.enable_grad():
                    _reseed()
                    self._set_mode(True)
                    out = self._forward(self.inputs)
                    loss = self.loss.total(out)
                    try:
                        loss.backward()
                    except RuntimeError as exc:
                        caught.append(str(exc))
                caught.extend(str(w.message) for w in ws)
        except Exception as exc:
            ctx.notes.append(f"anomaly re-run failed: {type(exc).__name__}: {exc}")
        finally:
            for p in self.model.parameters():
                p.grad = None
        text = "\n".join(caught)
        op = re.search(r"Function '(\w+)' returned nan", text)
        if op:
            nf["op"] = op.group(1)
        real = os.path.realpath(self.path)
        for fname, line in re.findall(r'File "([^"]+)", line (\d+)', text):
            if os.path.realpath(fname) == real:
                nf["line"] = int(line)

    # -- NN310 / NN313
    def _eval_checks(self, ctx: ProbeContext, saved: _Saved) -> None:
        self._set_mode(False)
        for p in saved.params:
            p.requires_grad_(False)
        want_jac = "batch_jacobian" in self.needs
        want_twice = "second_forward" in self.needs
        want_causal = "causal_jacobian" in self.needs
        # eval-mode checks need only a few samples: 3 (an odd size, so it rarely collides
        # with other dimensions) costs well under the main step; the full batch if the
        # model insists on its own batch size
        inputs = self.inputs
        if self.batch > EVAL_BATCH:
            inputs = _map_tensors(self.inputs, lambda t: t[:EVAL_BATCH] if t.ndim and t.shape[0] == self.batch else t)
        try:
            try:
                run1 = self._eval_forward(want_jac or want_causal, inputs)
            except Exception:
                if inputs is self.inputs:
                    raise
                inputs = self.inputs
                run1 = self._eval_forward(want_jac or want_causal, inputs)
            if want_causal:
                ctx.causal_jacobian = self._causal(run1)
            if want_jac:
                ctx.batch_jacobian = (
                    self._jacobian(run1) if run1["leaf_kind"] == "input" else self._token_mixing(inputs)
                )
            # drop run 1's autograd graph before run 2 builds its own: peak memory stays
            # that of one forward
            run1["out"] = _map_tensors(run1["out"], lambda t: t.detach())
            run1["leaf"] = None
            if want_twice:
                run2 = self._eval_forward(want_jac, inputs)
                run2["out"] = _map_tensors(run2["out"], lambda t: t.detach())
                run2["leaf"] = None
                ctx.second_forward = self._compare(run1, run2)
        except Exception as exc:
            ctx.notes.append(f"eval-mode checks failed: {type(exc).__name__}: {exc}")
        finally:
            for p, rg in zip(saved.params, saved.requires_grad):
                p.requires_grad_(rg)

    def _eval_forward(self, grad: bool, inputs: Any) -> dict[str, Any]:
        """One seeded eval-mode forward. With ``grad``, the first floating input (or the
        first embedding's output, for token inputs) is a leaf that requires grad."""
        leaf: dict[str, Any] = {}  # "x": the leaf tensor, "kind": "input" or "embedding"
        handles = []
        if grad:
            x = _first_tensor(inputs)
            if x is not None:

                def swap(t: torch.Tensor) -> torch.Tensor:
                    if t is x:
                        y = t.detach().clone().requires_grad_(True)
                        leaf.setdefault("x", y)
                        return y
                    return t

                inputs = _map_tensors(inputs, swap)
                leaf["kind"] = "input"
            else:
                emb = next((m for m in self.model.modules() if isinstance(m, EMBEDDINGS)), None)
                if emb is not None:

                    def hook(mod, args, out):
                        if "x" in leaf:
                            return None
                        y = out.detach().requires_grad_(True)
                        leaf["x"] = y
                        return y

                    handles.append(emb.register_forward_hook(hook))
                    leaf["kind"] = "embedding"
        rec = _Recorder(
            self.model,
            self.path,
            self.batch,
            stats=False,
            activations=False,
            grad_hooks=False,
            track_params=False,
            output_sums=True,
        )
        try:
            ctx_grad = torch.enable_grad() if grad else torch.no_grad()
            with ctx_grad, torch.inference_mode(False):
                _reseed()
                with rec:
                    out = self._forward(inputs)
        finally:
            rec.close()
            for h in handles:
                h.remove()
        sums = [(n, v) for (n, _), v in zip(rec.sums, _tolist([s for _, s in rec.sums]))]
        return {"out": out, "leaf": leaf.get("x"), "leaf_kind": leaf.get("kind"), "sums": sums, "inputs": inputs}

    def _jacobian(self, run: dict[str, Any]) -> dict[str, Any]:
        out = _first_tensor(run["out"])
        x = run["leaf"]
        res: dict[str, Any] = {"measured": False, "wrt": run["leaf_kind"]}
        if out is None or x is None or not out.requires_grad:
            res["reason"] = "no differentiable path from a floating input to the output"
            return res
        if x.ndim == 0:
            res["reason"] = "scalar input"
            return res
        dims = list(range(max(1, min(x.ndim - 1, 3))))
        records: list[dict[str, Any]] = []
        for d in dims:
            size = x.shape[d]
            if size < 2:
                continue
            cands = [e for e in range(out.ndim) if out.shape[e] == size]
            if not cands:
                continue
            e = d if d in cands else (0 if 0 in cands else cands[0])
            i = 1
            try:
                (g,) = torch.autograd.grad(out.select(e, i).float().sum(), x, retain_graph=True, allow_unused=True)
            except RuntimeError as exc:
                res["reason"] = f"{type(exc).__name__}: {exc}"
                break
            if g is None:
                per = torch.zeros(size)
            else:
                per = g.detach().float().movedim(d, 0).reshape(size, -1).abs().sum(1).cpu()
            self_v = float(per[i])
            others = per.clone()
            others[i] = 0
            j = int(others.argmax())
            off = float(others[j])
            similar = [k for k in range(out.ndim) if k != e and out.shape[k] == size]
            rec = {
                "input_dim": d,
                "output_dim": e,
                "sample": i,
                "self_grad": self_v,
                "other_grad": off,
                "other_sample": j,
                "mixed_samples": int((others > 0).sum()),
                "output_shape": list(out.shape),
                "similarity_dims": similar,
            }
            records.append(rec)
            if off == 0:
                break
        res["dims"] = records
        res["measured"] = bool(records)
        if not records and "reason" not in res:
            res["reason"] = "the output has no batch dimension"
        if records and all(r["other_grad"] > 0 for r in records):
            d = records[0]["input_dim"]
            res["view"] = self._find_view(run["inputs"], x.shape[d], d)
        return res

    def _token_mixing(self, inputs: Any) -> dict[str, Any]:
        """NN310's measurement for token inputs (nnlint/passes/batch_mixing.py): along the
        user's own input axes, by perturbing one sample's tokens."""
        from nnlint.passes import batch_mixing

        x = _first_tensor(inputs, floating=False)
        if x is None:
            return {"measured": False, "wrt": "tokens", "reason": "no input tensor"}

        def forward(t: torch.Tensor) -> torch.Tensor | None:
            _reseed()
            return _first_tensor(self._forward(_map_tensors(inputs, lambda u: t if u is x else u.detach())))

        return batch_mixing.measure(
            x.detach(), forward, self.model, self.path, lambda n, d: self._find_view(inputs, n, d)
        )

    def _causal(self, run: dict[str, Any]) -> dict[str, Any]:
        """NN314's measurement (nnlint/passes/causal.py), and where the attention is."""
        from nnlint.passes import causal

        res = causal.measure(run["out"], run["leaf"], run["leaf_kind"])
        if res.get("leak") is not None:
            detached = _map_tensors(run["inputs"], lambda t: t.detach())

            def forward() -> Any:
                _reseed()
                return self._forward(detached)

            res["attention"] = causal.attention_line(forward, self.path)
        return res

    def _find_view(self, inputs: Any, n: int, d: int) -> dict[str, Any] | None:
        rec = _Recorder(
            self.model, self.path, n, stats=False, activations=False, grad_hooks=False, track_params=False, view_dim=d
        )
        try:
            with torch.no_grad():
                _reseed()
                with rec:
                    self._forward(_map_tensors(inputs, lambda t: t.detach()))
        except Exception:
            return None
        finally:
            rec.close()
        return rec.first_view

    def _compare(self, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        ta = [t for t in _all_tensors(a["out"]) if t.is_floating_point()]
        tb = [t for t in _all_tensors(b["out"]) if t.is_floating_point()]
        res: dict[str, Any] = {"compared": bool(ta) and len(ta) == len(tb)}
        if not res["compared"]:
            return res
        diff = 0.0
        scale = 0.0
        for x, y in zip(ta, tb):
            if x.shape != y.shape:
                diff = float("inf")
                continue
            if not x.numel():
                continue
            x, y = x.detach(), y.detach()
            scale = max(scale, float(torch.nan_to_num(x.abs().amax().double())))
            if torch.equal(x, y):  # the common case, without allocating a difference
                continue
            dx = (x - y).abs()
            dx = dx.masked_fill(torch.isnan(x) & torch.isnan(y), 0.0)
            diff = max(diff, float(torch.nan_to_num(dx.amax().double(), nan=float("inf"))))
        res.update(max_abs_diff=diff, max_abs_output=scale, rel_diff=diff / scale if scale > 0 else diff)
        first = None
        for (na, va), (nb, vb) in zip(a["sums"], b["sums"]):
            if na != nb:
                break
            if va != vb and not (math.isnan(va) and math.isnan(vb)):
                first = na
                break
        res["first_module"] = first
        return res

    # -- NN312
    def _overfit(self, ctx: ProbeContext, saved: _Saved, integer_inputs: bool) -> None:
        steps = int(self.settings.get("overfit_steps") or 30)
        k = min(MIN_BATCH, self.batch)
        inputs = _map_tensors(self.inputs, lambda t: t[:k].detach() if t.ndim and t.shape[0] == self.batch else t)
        saved.snapshot_params()
        params = [p for p, rg in zip(saved.params, saved.requires_grad) if rg]
        if not params:
            return
        for p in params:
            p.requires_grad_(True)
        ex = self.example
        if isinstance(ex.target, torch.Tensor) and ex.target.ndim and ex.target.shape[0] == self.batch:
            ex = Example(**{**ex.__dict__, "target": ex.target[:k]})
        losses: list[float] = []
        try:
            with torch.enable_grad(), torch.inference_mode(False):
                _reseed()
                self._set_mode(True)
                out = self._forward(inputs)
                lossf = _Loss(ex, out, torch.Generator().manual_seed(SEED + 1), integer_inputs)
                opt = torch.optim.Adam(params, lr=OVERFIT_LR)
                for step in range(steps):
                    if step:
                        out = self._forward(inputs)
                    loss = lossf.fn(out)
                    if loss.numel() != 1:
                        loss = loss.float().mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    losses.append(float(loss.detach()))
                self._set_mode(False)
                with torch.no_grad():
                    final_eval = float(lossf.fn(self._forward(inputs)).float().mean())
                # BatchNorm's running stats lag after a few steps: eval mode alone can
                # look worse than the fit really is, so take the better of the two
                final = min(final_eval, losses[-1]) if losses else final_eval
            ctx.overfit = {
                "steps": steps,
                "lr": OVERFIT_LR,
                "optimizer": "Adam",
                "samples": k,
                "initial": losses[0] if losses else None,
                "final": final,
                "loss_kind": lossf.info.kind,
                "losses": losses[:: max(1, steps // 10)],
            }
        except Exception as exc:
            ctx.notes.append(f"overfit probe failed: {type(exc).__name__}: {exc}")
        finally:
            with torch.no_grad():
                for p, data in zip(saved.params, saved.param_data or []):
                    p.copy_(data)
            for p in saved.params:
                p.grad = None
            for p, rg in zip(saved.params, saved.requires_grad):
                p.requires_grad_(rg)

    # -- NN5
    def _data(self, ctx: ProbeContext | None) -> DataContext:
        data = self.example.data
        if callable(data) and not hasattr(data, "__iter__"):
            data = data()
        batches = 0
        samples = 0
        xs: dict[str, list[torch.Tensor]] = {}
        ys: list[torch.Tensor] = []
        try:
            for item in data:
                if isinstance(item, dict):
                    x, y = item.get("inputs", item.get("input")), item.get("target", item.get("label"))
                elif isinstance(item, (tuple, list)) and len(item) >= 2:
                    x, y = item[0], item[1]
                else:
                    x, y = item, None
                for pos, t in _positions(x):
                    xs.setdefault(pos, []).append(_as_tensor(t))
                if y is not None:
                    ys.append(_as_tensor(y))
                first = _first_tensor(x, floating=False)
                samples += int(first.shape[0]) if isinstance(first, torch.Tensor) and first.ndim else 1
                batches += 1
                if batches >= MAX_DATA_BATCHES:
                    break
        except Exception as exc:
            raise ProbeError("data", exc) from exc
        inputs = [_summarise(pos, ts) for pos, ts in xs.items() if ts]
        target = _summarise("target", ys) if ys else None
        integer = bool(ys) and all(not (t.is_floating_point() or t.is_complex()) and t.dtype != torch.bool for t in ys)
        counts: dict[int, int] = {}
        negative: dict[int, int] = {}
        if integer:
            flat = torch.cat([t.reshape(-1).long().cpu() for t in ys])
            neg = flat[flat < 0]
            if neg.numel():
                vals, cnt = torch.unique(neg, return_counts=True)
                negative = {int(v): int(c) for v, c in zip(vals.tolist(), cnt.tolist())}
            flat = flat[flat >= 0]
            if flat.numel():
                bc = torch.bincount(flat)
                counts = {int(i): int(c) for i, c in enumerate(bc.tolist()) if c}
        classes = None
        source = "unknown"
        if ctx is not None and ctx.loss is not None and ctx.loss.classes:
            classes, source = ctx.loss.classes, f"the model's {ctx.loss.classes}-class head"
        elif self.example.classes:
            classes, source = self.example.classes, "declared classes"
        return DataContext(
            model_name=self.model_name,
            path=self.path,
            batches=batches,
            samples=samples,
            inputs=inputs,
            target=target,
            target_integer=integer,
            class_counts=counts,
            negative_labels=negative,
            classes=classes,
            classes_source=source,
            line=_examples_line(self.path),
        )


def _positions(x: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(x, dict):
        for k, v in x.items():
            yield f"inputs[{k!r}]", v
    elif isinstance(x, (tuple, list)):
        for i, v in enumerate(x):
            yield f"inputs[{i}]", v
    elif x is not None:
        yield "inputs", x


def _as_tensor(t: Any) -> torch.Tensor:
    if isinstance(t, torch.Tensor):
        return t.detach()
    return torch.as_tensor(t)


def _summarise(pos: str, ts: list[torch.Tensor]) -> TensorSummary:
    ts = [t.cpu() for t in ts]
    flat = torch.cat([t.reshape(-1) for t in ts]) if ts else torch.zeros(0)
    s = TensorSummary(
        position=pos,
        dtype=str(ts[0].dtype).replace("torch.", ""),
        shape=tuple(ts[0].shape),
        count=int(flat.numel()),
        nonfinite=0,
    )
    if flat.is_floating_point() or flat.is_complex():
        fin = torch.isfinite(flat)
        s.nonfinite = int((~fin).sum())
        good = flat[fin].double()
        if good.numel():
            s.mean, s.std = float(good.mean()), float(good.std(correction=0))
            s.min, s.max = float(good.min()), float(good.max())
        if ts[0].ndim >= 2 and all(t.ndim == ts[0].ndim and t.shape[1:] == ts[0].shape[1:] for t in ts):
            x = torch.cat(ts).double()
            x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
            per = x.movedim(1, 0).reshape(x.shape[1], -1).std(dim=1, correction=0)
            if per.numel() <= 4096:
                s.feature_std = per.tolist()
    elif flat.numel() and flat.dtype != torch.bool:
        s.min, s.max = float(flat.min()), float(flat.max())
        f = flat.double()
        s.mean, s.std = float(f.mean()), float(f.std(correction=0))
    return s


def _examples_line(path: str) -> int | None:
    try:
        with open(path, encoding="utf-8") as fh:
            for i, text in enumerate(fh, 1):
                if re.match(r"\s*def\s+nnlint_examples\s*\(", text):
                    return i
    except OSError:
        return None
    return None


# ---------------------------------------------------------------------------------------
# entry point


def _locate(model: Any, path: str, module: str | None) -> int | None:
    real = os.path.realpath(path)
    if module:
        p, line = locate.module_line(model, module, prefer_path=path)
        if p is not None and line is not None and os.path.realpath(p) == real:
            return line
    p, line = locate.class_line(type(model))
    if p is not None and line is not None and os.path.realpath(p) == real:
        return line
    return None


def _source_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def to_diagnostic(
    rule: Rule,
    f: Finding,
    model: Any,
    path: str,
    model_name: str,
    extra: dict[str, Any] | None = None,
    lines: list[str] | None = None,
    default_line: int | None = None,
) -> Diagnostic:
    line = f.line if f.line is not None else _locate(model, path, f.module)
    line = line or default_line or 1  # a library model: the user's line that builds it
    evidence = dict(f.evidence)
    if extra:
        evidence.setdefault("probe", extra)
    column, end_column = f.column, f.end_column
    text = lines[line - 1] if lines and 0 < line <= len(lines) else ""
    if column is None and text.strip():  # span the statement, like the graph pass does
        column = len(text) - len(text.lstrip()) + 1
        end_column = end_column or len(text.rstrip()) + 1
    return Diagnostic(
        code=rule.code,
        name=rule.name,
        severity=f.severity or rule.severity,
        message=f.message,
        pass_=rule.pass_,
        path=path,
        line=line,
        column=column or 1,
        end_line=f.end_line,
        end_column=end_column,
        model=f.model or model_name,
        module=f.module,
        evidence=json_safe(evidence),
        fix=f.fix,
    )


def _skipped(settings: dict[str, Any], example: Example, path: str, model_name: str) -> Diagnostic | None:
    budget = settings.get("memory_budget_bytes")
    est = settings.get("estimated_bytes")
    if not budget or not est or est <= budget:
        return None
    from nnlint.registry import all_rules

    rule = all_rules().get("NN006")
    if rule is None:
        return None
    model = example.model if isinstance(example.model, nn.Module) else None
    line = _locate(model, path, None) if model is not None else None
    return Diagnostic(
        code=rule.code,
        name=rule.name,
        severity=rule.severity,
        pass_="tool",
        path=path,
        line=line or 1,
        model=model_name,
        message=(
            f"{model_name} needs about {est / 2**30:.2f} GiB to probe, over the budget of "
            f"{budget / 2**30:.2f} GiB; probe rules (NN3) did not run for it. Raise "
            "probe-memory-fraction in [tool.nnlint] or probe a smaller configuration"
        ),
        evidence={"estimated_bytes": est, "memory_budget_bytes": budget},
    )


def run_probe(example: Example, rules: list[Rule], settings: dict[str, Any], path: str, model_name: str) -> ProbeResult:
    """Probe one built model; return its diagnostics (a list, with ``.errors`` naming any
    rule that crashed). Raises ``ProbeError`` when the user's code fails during the run
    (after restoring the model)."""
    if not isinstance(example.model, nn.Module) and callable(example.model):
        example.model = example.model()
    skipped = _skipped(settings or {}, example, path, model_name)
    if skipped is not None:
        return ProbeResult([skipped])
    if example.inputs is None:
        return ProbeResult([], [f"{path}: {model_name}: no example inputs, the probe did not run"])
    probe = Probe(example, rules, settings or {}, path, model_name)
    ctx, data_ctx = probe.run()
    out = ProbeResult()
    lines = _source_lines(path)
    extra = None
    if ctx is not None:
        extra = {"device": ctx.device, "batch": ctx.batch_size}
        try:
            from nnlint.passes.probe_stats import summarize

            out.stats = summarize(ctx)
        except Exception as exc:  # the report is extra; the findings must not depend on it
            out.notes.append(f"{path}: {model_name}: per-layer statistics unavailable ({type(exc).__name__}: {exc})")
        out.notes.extend(f"{path}: {model_name}: {n}" for n in ctx.notes)
    for rule in rules:
        target = ctx if rule.pass_ == "probe" else data_ctx if rule.pass_ == "data" else None
        if target is None:
            continue
        try:
            for f in rule.check(target):
                out.append(
                    to_diagnostic(
                        rule,
                        f,
                        example.model,
                        path,
                        model_name,
                        extra,
                        lines,
                        default_line=(example.meta or {}).get("line"),
                    )
                )
        except Exception as exc:  # a rule bug must not hide the others' findings
            out.errors.append(
                f"{path}: {model_name}: internal error: rule {rule.code} crashed "
                f"({type(exc).__name__}: {exc}); other rules ran. Please report this."
            )
    return out
