"""What graph rules see: the traced graph of one model and the questions a rule may ask of it."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from nnlint.vocab import (
    ACTIVATION_FUNCTIONS,
    ACTIVATION_KIND,
    AFFINE_MODULES,
    CONV_TRANSPOSE_MODULES,
    NORM_FUNCTIONS,
    NORM_MODULES,
    PASS_THROUGH_FUNCTIONS,
    PASS_THROUGH_MODULES,
    UPSAMPLE_OPS,
)

if TYPE_CHECKING:  # the context is importable without torch; the pass hands it live objects
    from torch import nn

    from nnlint.passes.graph.lines import UserFile
    from nnlint.passes.graph.source_facts import SourceFacts


def short_shape(shape: Any) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


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


def is_leaf(mod: nn.Module) -> bool:
    """fx's default: torch.nn's own modules (not containers) are leaves."""
    from torch import nn

    m = type(mod).__module__
    return (m.startswith("torch.nn") or m.startswith("torch.ao.nn")) and not isinstance(mod, nn.Sequential)


def is_inplace(name: str) -> bool:
    """``relu_``, ``add_``: an op name that writes into its input."""
    return name.endswith("_") and not name.endswith("__") and name not in ("type_as",)


def alias_groups(model: nn.Module) -> list[set[str]]:
    """Names that are one object: [{'shared', 'encoder.embed_tokens', 'decoder.embed_tokens'}, ...]."""
    by_id: dict[int, set[str]] = {}
    for q, m in model.named_modules(remove_duplicate=False):
        by_id.setdefault(id(m), set()).add(q)
    for q, p in model.named_parameters(remove_duplicate=False):
        by_id.setdefault(id(p), set()).add(q)
    return [names for names in by_id.values() if len(names) > 1]


def with_aliases(names: set[str], groups: list[set[str]]) -> set[str]:
    out = set(names)
    for g in groups:
        if g & names:
            out |= g
    return out


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
        return with_aliases(ran, self.aliases)

    @cached_property
    def aliases(self) -> list[set[str]]:
        """Names of one module/parameter object registered several times (tied weights)."""
        return alias_groups(self.model)

    @cached_property
    def params_read(self) -> set[str]:
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
            if t in UPSAMPLE_OPS:
                return "upsample"
            if t in NORM_MODULES:
                return "norm"
            if t in ACTIVATION_KIND:
                return "activation"
            if t in PASS_THROUGH_MODULES:
                return "pass"
            return "other"
        name = n.target.rstrip("_") if is_inplace(n.target) else n.target
        if name in UPSAMPLE_OPS:
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
            return ACTIVATION_KIND.get(n.module_type or "")
        name = n.target.rstrip("_") if is_inplace(n.target) else n.target
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
        from nnlint.passes import locate  # shared with the loader and the probe

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
                return inspect.getsourcelines(fn)[1] + decorator_lines(fn)
        except (TypeError, OSError):
            pass
        return None

    def in_container(self, qualname: str) -> bool:
        from torch import nn

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


def decorator_lines(fn: Any) -> int:
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
    from torch import nn

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
    from torch import nn

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
