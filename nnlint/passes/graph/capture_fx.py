"""Capture with torch.fx: trace ``forward`` symbolically, then run the graph on the example inputs for shapes."""

from __future__ import annotations

import operator
import sys
from typing import Any

import torch
from torch import nn

from nnlint.contexts.graph import Failure, GNode, Trace, is_inplace
from nnlint.passes.graph.errors import classify_error
from nnlint.passes.graph.inputs import bind_inputs
from nnlint.passes.graph.lines import UserFile
from nnlint.passes.graph.tensors import nbytes_of, op_name, scalar_args, shape_of, tensors_in
from nnlint.vocab import CONTROL_FUNCTIONS, SIDE_EFFECT_FUNCTIONS


def trace_fx(model: nn.Module, args: tuple, kwargs: dict, user: UserFile) -> tuple[Trace | None, str | None]:
    """Symbolically trace and interpret on ``args`` (meta or real). Returns (trace, None)
    or (None, why fx could not trace). A failing interpretation is returned as a trace
    with ``failure`` set."""
    import torch.fx as fx

    given, values, sig = bind_inputs(model, args, kwargs)
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
        first = next(iter(tensors_in(value)), None)
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
                shape_of(first),
                str(first.dtype).replace("torch.", ""),
                sum(nbytes_of(t) for t in tensors_in(value)),
            )
        else:
            g.tensor_out = False
        g.in_shapes = [s for s in (shape_of(shapes.get(i)) for i in n.all_input_nodes) if s is not None]
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
            g.args = scalar_args(dict(n.kwargs))
            if g.target in ("softmax", "log_softmax") and "dim" not in g.args:
                pos = n.args[1:] if n.op == "call_method" else n.args[1:]
                if pos and isinstance(pos[0], int):
                    g.args["dim"] = pos[0]
            nums = [a for a in n.args if isinstance(a, (int, float)) and not isinstance(a, bool)]
            g.scalar_operand = len(n.all_input_nodes) == 1 and bool(nums)
            if g.target in SIDE_EFFECT_FUNCTIONS or is_inplace(g.target):
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
        f.in_shapes = [s for s in (shape_of(shapes.get(i)) for i in n.all_input_nodes) if s is not None]
        if n.op == "call_module":
            f.module = str(n.target)
            f.module_type = type(modules.get(f.module)).__name__
        else:
            f.op = op_name(n.target) if n.op == "call_function" else str(n.target)
        f.first_layer_ran = any(x.op == "call_module" for x in nodes)
        trace.failure = f
    else:
        out_val = shapes.get(next((n for n in graph.nodes if n.op == "output"), None))
        trace.output_value_shapes = [s for s in (shape_of(t) for t in tensors_in(out_val)) if s is not None]
    return trace, None
