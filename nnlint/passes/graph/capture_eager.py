"""Capture by running the model once: forward hooks over the module tree plus a TorchFunctionMode recorder."""

from __future__ import annotations

import sys
import weakref
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nnlint.contexts.graph import Failure, GNode, Trace, is_inplace, is_leaf
from nnlint.passes.graph.errors import classify_error
from nnlint.passes.graph.inputs import bind_inputs
from nnlint.passes.graph.lines import UserFile
from nnlint.passes.graph.tensors import module_names, nbytes_of, op_name, param_names, scalar_args, shape_of, tensors_in
from nnlint.vocab import CONTROL_FUNCTIONS, SIDE_EFFECT_FUNCTIONS


class _Recorder:
    def __init__(self, model: nn.Module, user: UserFile) -> None:
        self.model = model
        self.user = user
        self.nodes: list[GNode] = []
        self.producer: dict[int, tuple[Any, int]] = {}
        self.module_names = module_names(model)
        self.param_names = param_names(model)
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
                idx = self.add(GNode(idx=0, op="get_attr", target=q, shape=shape_of(t)))
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
        ins = tensors_in((args, kwargs))
        inputs = [i for i in (self.node_of(t) for t in ins) if i is not None]
        outs = tensors_in(out)
        node = GNode(
            idx=0,
            op="call_function",
            target=name,
            inputs=list(dict.fromkeys(inputs)),
            scope=self.scope(),
            line=self.user.line_from_frames(frame),
            args=scalar_args(kwargs),
            in_shapes=[s for s in (shape_of(t) for t in ins) if s is not None],
            direct=self.user.called_directly(frame),
        )
        if name in ("softmax", "log_softmax") and "dim" not in node.args and len(args) > 1 and isinstance(args[1], int):
            node.args["dim"] = args[1]
        nums = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
        node.scalar_operand = len(ins) == 1 and bool(nums)
        if outs:
            node.shape, node.dtype = shape_of(outs[0]), str(outs[0].dtype).replace("torch.", "")
            node.nbytes = sum(nbytes_of(t) for t in outs)
        else:
            node.tensor_out = False
        if name in SIDE_EFFECT_FUNCTIONS or is_inplace(name) or name in CONTROL_FUNCTIONS or not outs:
            node.sink = True
        idx = self.add(node)
        for t in outs:
            self.bind(t, idx)
        if (is_inplace(name) or name == "setitem") and ins:
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
            ins = tensors_in((args, kwargs))
            inputs = [i for i in (self.node_of(t) for t in ins) if i is not None]
            self.stack.append(
                (q, leaf, list(dict.fromkeys(inputs)), [s for s in (shape_of(t) for t in ins) if s is not None])
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
            outs = tensors_in(out)
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
                node.shape, node.dtype = shape_of(outs[0]), str(outs[0].dtype).replace("torch.", "")
                node.nbytes = sum(nbytes_of(t) for t in outs)
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
                ins = tensors_in((args, kwargs))
                rec.failure_op = (
                    op_name(func),
                    [s for s in (shape_of(t) for t in ins) if s is not None],
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
    given, values, _ = bind_inputs(model, args, kwargs)
    placeholders = []
    for name in given:
        for t in tensors_in(values[name]):
            idx = rec.add(
                GNode(idx=0, op="placeholder", target=name, shape=shape_of(t), dtype=str(t.dtype).replace("torch.", ""))
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
        outs = tensors_in(out)
        shapes_out = [s for s in (shape_of(t) for t in outs) if s is not None]
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
