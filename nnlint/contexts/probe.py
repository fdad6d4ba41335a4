"""What probe rules read: the measured numbers of one forward + backward (``ProbeContext``).

Torch-free: the probe pass (nnlint/passes/probe/) fills these; a rule reads them and never
runs the model. Extra measurements are requested by ``Extra`` members in ``Rule.needs`` and
land in the typed field of the same name (``Extra.BATCH_JACOBIAN`` -> ``ctx.batch_jacobian``).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict


class Extra(enum.Enum):
    """An extra measurement a probe rule asks for in ``needs``; the probe runs it only
    when a selected rule needs it. The value is the ``ProbeContext`` field it fills (or,
    for the two that refine the always-run measurements, what it refines)."""

    #: re-measure zero gradients with zero-initialised weights perturbed (``ParamStat.zero_grad_explained``)
    ZERO_INIT_CHECK = "zero_init_check"
    #: after a NaN/Inf: re-run checking every op, ``detect_anomaly`` for the backward (``nonfinite``)
    NONFINITE_ORIGIN = "nonfinite_origin"
    #: eval mode: gradient of one sample's output w.r.t. the whole batch (``batch_jacobian``)
    BATCH_JACOBIAN = "batch_jacobian"
    #: eval mode: two seeded forwards compared (``second_forward``)
    SECOND_FORWARD = "second_forward"
    #: eval mode: which input positions one output position depends on (``causal_jacobian``)
    CAUSAL_JACOBIAN = "causal_jacobian"
    #: optimizer steps on one tiny batch, only with ``settings["overfit"]`` (``overfit``)
    OVERFIT = "overfit"


class NonFinite(TypedDict, total=False):
    """Where the first NaN/Inf appeared: ``phase`` forward | loss | backward."""

    phase: str
    module: str | None
    leaf: bool
    count_modules: int
    loss: float
    params: list[str]
    #: with Extra.NONFINITE_ORIGIN: the op, the user's line and the module that ran it
    op: str
    line: int | None
    op_module: str


class ViewSite(TypedDict, total=False):
    """The first view/reshape that folded the batch dimension away."""

    op: str
    module: str
    line: int | None
    from_shape: list[int]
    to_shape: list[int]


class JacobianDim(TypedDict):
    """One batch-dimension candidate of ``BatchJacobian.dims``. A gradient (``wrt`` input)
    gives ``self_grad``/``other_grad`` of output ``sample`` w.r.t. input samples; a
    perturbation (``wrt`` tokens) gives ``self_change``/``other_change`` of the output
    samples when input ``sample``'s tokens change, and ``output_scale`` (one output
    sample's summed magnitude)."""

    input_dim: int
    output_dim: int
    sample: int
    self_grad: NotRequired[float]
    other_grad: NotRequired[float]
    self_change: NotRequired[float]
    other_change: NotRequired[float]
    output_scale: NotRequired[float]
    other_sample: int
    mixed_samples: int
    output_shape: list[int]
    similarity_dims: list[int]


class LibraryCall(TypedDict):
    """The first call of a batch-first library model that received input dim 0 on another axis."""

    module: str
    type: str
    line: int | None
    axis: int
    shape: list[int]


class BatchJacobian(TypedDict, total=False):
    """Extra.BATCH_JACOBIAN: does one sample's output depend on the other samples?"""

    measured: bool
    wrt: str | None  # "input" | "embedding" | "tokens"
    reason: str
    dims: list[JacobianDim]
    view: ViewSite | None
    #: tokens only: a transformers model handed the batch on another axis (token_mixing.py)
    pivot: LibraryCall | None


class AttentionSite(TypedDict, total=False):
    op: str
    line: int | None
    function: str


class CausalJacobian(TypedDict, total=False):
    """Extra.CAUSAL_JACOBIAN: which input positions output position ``t`` depends on."""

    measured: bool
    wrt: str | None  # "input" | "embedding"
    reason: str
    axis: int
    length: int
    t: int
    per_position: list[float]
    leak: int | None
    leak_grad: float
    self_grad: float
    leaking_positions: int
    attention: AttentionSite | None


class SecondForward(TypedDict, total=False):
    """Extra.SECOND_FORWARD: two seeded eval forwards compared."""

    compared: bool
    max_abs_diff: float
    max_abs_output: float
    rel_diff: float
    first_module: str | None


class Overfit(TypedDict, total=False):
    """Extra.OVERFIT: the loss over optimizer steps on one tiny batch."""

    steps: int
    lr: float
    optimizer: str
    samples: int
    initial: float | None
    final: float
    loss_kind: str
    losses: list[float]


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
    nonfinite: NonFinite | None = None  # phase, module, leaf, line, op, count
    batch_jacobian: BatchJacobian | None = None  # Extra.BATCH_JACOBIAN
    #: NN314: which input positions one output position depends on (nnlint/passes/probe/causal.py)
    causal_jacobian: CausalJacobian | None = None  # Extra.CAUSAL_JACOBIAN
    second_forward: SecondForward | None = None  # Extra.SECOND_FORWARD
    overfit: Overfit | None = None  # Extra.OVERFIT
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
