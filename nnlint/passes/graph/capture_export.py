"""Capture through Python control flow: ``torch.export.export(..., strict=False)``.

torch.fx's symbolic tracer cannot follow Python control flow on traced sizes or data, which
is how most real architectures (transformers, torchvision's newer models, nanoGPT) are
written. ``torch.export`` in non-strict mode runs the real Python ``forward`` on fake
tensors: sizes are concrete, so ``if``/``for``/``assert`` on shapes just run, and every
node it records carries ``nn_module_stack`` (the module path that ran it) and
``stack_trace`` (the Python frames, the user's line among them). No weights or activations
are allocated (the parameters are fakeified), so it works on meta-device models too.

The exported graph is at the level of ATen operators. This module turns it into the same
``GNode`` graph the fx tracer and the hook recorder produce: each call of a torch.nn leaf
module (``Linear``, ``Conv2d``, ``ReLU``, ``LayerNorm`` …) becomes one ``call_module``
node, the operators run between modules become ``call_function`` nodes named like the
``torch``/``F.*`` function the user wrote (``aten.relu.default`` → ``relu``), parameters
read outside a leaf become ``get_attr`` nodes. So every graph rule runs unchanged.

Models whose forward returns a cache object (``DynamicCache``) are exported with
``use_cache=False`` when their forward takes that argument; a data-dependent branch
(Wav2Vec2's layerdrop draws ``torch.rand([])`` in train mode) is retried in eval mode,
where the branch is skipped.
"""

from __future__ import annotations

import inspect
import operator
import os
import re
import tempfile
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nnlint.contexts.graph import GNode, Trace, is_inplace, is_leaf
from nnlint.passes.graph.inputs import bind_inputs
from nnlint.passes.graph.lines import FRAME, UserFile
from nnlint.passes.graph.tensors import nbytes_of, scalar_args, shape_of
from nnlint.vocab import CONTROL_FUNCTIONS, SIDE_EFFECT_FUNCTIONS

_LIB_WRAPPERS = ("/torch/", "/nnlint/passes/")


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:200]}"


def _inductor_cache_in_temp() -> None:
    """torch.export imports torch._inductor, whose import creates its cache folder
    (``/tmp/torchinductor_<user>``): inside the linting sandbox, put it in the temporary
    folder nnlint may write to instead of having the write refused."""
    if "TORCHINDUCTOR_CACHE_DIR" in os.environ:
        return
    try:
        from nnlint.passes import sandbox

        if not sandbox.active():
            return
    except Exception:
        return
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), "nnlint-torchinductor")


def _export(model: nn.Module, args: tuple, kwargs: dict) -> Any:
    _inductor_cache_in_temp()
    import torch.export

    return torch.export.export(model, tuple(args), dict(kwargs), strict=False)


def export_program(model: nn.Module, args: tuple, kwargs: dict) -> tuple[Any, dict, str | None]:
    """(exported program or None, the kwargs it was exported with, why it failed)."""
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        params = {}
    kw = dict(kwargs)
    if "use_cache" in params and "use_cache" not in kw:
        kw["use_cache"] = False  # a cache object in the output is not a tensor export can return
    was_training = model.training
    why = None
    try:
        return _export(model, args, kw), kw, None
    except (Exception, SystemExit) as exc:
        why = _short(exc)
    finally:
        model.train(was_training)
    if was_training:
        # a data-dependent branch on a random draw (layerdrop) exists only in train mode
        try:
            model.eval()
            return _export(model, args, kw), kw, None
        except (Exception, SystemExit):
            pass
        finally:
            model.train(was_training)
    return None, kw, why


def _stack(n: Any) -> list[tuple[str, str, str]]:
    """[(key, qualified path, class path)] outermost first."""
    st = n.meta.get("nn_module_stack") or {}
    out = []
    for key, val in st.items():
        try:
            path, cls = val
        except (TypeError, ValueError):
            continue
        path = str(path)
        if path.startswith("L['self']") or path.startswith("L__self__"):
            path = path.split(".", 1)[1] if "." in path else ""
        out.append((str(key), path, str(cls) if not isinstance(cls, type) else f"{cls.__module__}.{cls.__qualname__}"))
    return out


def _line_and_direct(user: UserFile, text: str | None) -> tuple[int | None, bool]:
    if not text:
        return None, True
    frames = FRAME.findall(text)
    line = None
    for name, ln in frames:
        if user.owns(name):
            line = int(ln)
    direct = True
    for name, _ in reversed(frames):
        norm = name.replace("\\", "/")
        if any(w in norm for w in _LIB_WRAPPERS):
            continue
        direct = user.owns(name)
        break
    return line, direct


def _op_name(target: Any) -> str:
    if target is operator.getitem:
        return "getitem"
    name = getattr(target, "_opname", None) or getattr(target, "__name__", None) or str(target)
    if name.startswith("sym_"):
        return "size"
    if name in ("_assert_scalar", "_assert_tensor_metadata", "sym_constrain_range_for_size", "_assert_async"):
        return "_assert"
    return {
        "_unsafe_view": "view",
        "_to_copy": "to",
        "lift_fresh_copy": "clone",
        "alias": "identity",
        "_softmax": "softmax",
        "_log_softmax": "log_softmax",
    }.get(name, name)


def _val_tensors(val: Any) -> list[Any]:
    if isinstance(val, torch.Tensor):
        return [val]
    if isinstance(val, (list, tuple)):
        return [v for v in val if isinstance(v, torch.Tensor)]
    return []


def trace_export(model: nn.Module, args: tuple, kwargs: dict, user: UserFile) -> tuple[Trace | None, str | None]:
    """Export ``model`` and convert its graph; (None, why) when export fails."""
    ep, kw, why = export_program(model, args, kwargs)
    if ep is None:
        return None, why
    try:
        return convert(ep, model, args, kw, user), None
    except Exception as exc:  # a graph shape this converter does not know: the recorder takes over
        return None, f"converting the exported graph failed ({_short(exc)})"


def convert(ep: Any, model: nn.Module, args: tuple, kwargs: dict, user: UserFile) -> Trace:
    sig = ep.graph_signature
    p_of = {
        **dict(sig.inputs_to_parameters),
        **dict(sig.inputs_to_buffers),
        **dict(getattr(sig, "inputs_to_lifted_tensor_constants", {}) or {}),
    }
    user_inputs = list(sig.user_inputs)
    given, _, _ = bind_inputs(model, args, kwargs)
    # export names user placeholders after the flattened (args, kwargs) leaves
    modules = dict(model.named_modules())
    leaf_cache: dict[str, bool] = {}

    def leaf_at(path: str) -> bool:
        hit = leaf_cache.get(path)
        if hit is None:
            mod = modules.get(path)
            hit = leaf_cache[path] = mod is not None and mod is not model and is_leaf(mod)
        return hit

    nodes: list[GNode] = []
    of: dict[Any, int] = {}  # fx node -> GNode index
    param_nodes: dict[str, int] = {}
    executed: set[str] = set()
    params_read: set[str] = set()
    placeholders: list[int] = []
    group_key: str | None = None
    group_idx: int | None = None
    group_members: set[Any] = set()
    output = None
    out_shapes: list[tuple[int, ...]] = []
    flat_names = _flat_input_names(given, args, kwargs, len(user_inputs))

    def value_shape(n: Any) -> tuple[Any, str | None, int]:
        ts = _val_tensors(n.meta.get("val"))
        if not ts:
            return None, None, 0
        return shape_of(ts[0]), str(ts[0].dtype).replace("torch.", ""), sum(nbytes_of(t) for t in ts)

    def input_index(a: Any, leaf_path: str | None) -> int | None:
        if a in of:
            return of[a]
        q = p_of.get(a.name) if hasattr(a, "name") else None
        if q is None:
            return None
        if leaf_path is not None and (q.startswith(leaf_path + ".") or leaf_path == ""):
            return None  # the leaf's own weight
        idx = param_nodes.get(q)
        if idx is None:
            idx = len(nodes)
            nodes.append(GNode(idx=idx, op="get_attr", target=q, shape=value_shape(a)[0]))
            param_nodes[q] = idx
        params_read.add(q)
        return idx

    def gather(
        ins_fx: list[Any], leaf_path: str | None, inputs: list[int], in_shapes: list[Any], skip: Any = ()
    ) -> None:
        """Add the nodes ``ins_fx`` read (not yet in ``inputs``) and their shapes."""
        for a in ins_fx:
            if a in skip:
                continue
            i = input_index(a, leaf_path)
            if i is not None and i not in inputs:
                inputs.append(i)
                s = value_shape(a)[0]
                if s is not None:
                    in_shapes.append(s)

    ph_i = 0
    for n in ep.graph.nodes:
        if n.op == "placeholder":
            if n.name in p_of:
                continue
            name = n.name
            if name not in given:
                base = re.sub(r"_[0-9]+$", "", name)
                name = base if base in given else (flat_names[ph_i] if ph_i < len(flat_names) else name)
            ph_i += 1
            shape, dtype, _ = value_shape(n)
            idx = len(nodes)
            nodes.append(GNode(idx=idx, op="placeholder", target=name, shape=shape, dtype=dtype))
            of[n] = idx
            if name in given and shape is not None:
                placeholders.append(idx)
            else:
                nodes[idx].sink = True
            continue
        if n.op == "output":
            outs = n.args[0] if n.args else ()
            flat = list(outs) if isinstance(outs, (list, tuple)) else [outs]
            ins = [of[a] for a in flat if a in of]
            idx = len(nodes)
            nodes.append(
                GNode(idx=idx, op="output", target="output", inputs=list(dict.fromkeys(ins)), tensor_out=False)
            )
            output = idx
            for a in flat:
                if hasattr(a, "meta"):
                    s = value_shape(a)[0]
                    if s is not None:
                        out_shapes.append(s)
            continue
        if n.op != "call_function":
            continue
        stack = _stack(n)
        for _, path, _ in stack:
            executed.add(path)
        leaf = next(((k, p) for k, p, _ in stack if leaf_at(p)), None)
        line, direct = _line_and_direct(user, n.meta.get("stack_trace"))
        shape, dtype, nbytes = value_shape(n)
        ins_fx = list(n.all_input_nodes)
        if leaf is not None:
            key, path = leaf
            if key == group_key and group_idx is not None:
                # another op of the same leaf call: the module's output is its last op
                g = nodes[group_idx]
                gather(ins_fx, path, g.inputs, g.in_shapes, skip=group_members)
                if shape is not None:
                    g.shape, g.dtype = shape, dtype
                g.nbytes += nbytes
                g.tensor_out = g.tensor_out or shape is not None
                group_members.add(n)
                of[n] = group_idx
                continue
            mod = modules.get(path)
            inputs: list[int] = []
            in_shapes: list[Any] = []
            gather(ins_fx, path, inputs, in_shapes)
            parent = next((p for _, p, _ in reversed(stack) if not leaf_at(p)), "")
            idx = len(nodes)
            nodes.append(
                GNode(
                    idx=idx,
                    op="call_module",
                    target=path,
                    inputs=inputs,
                    scope=parent,
                    module_type=type(mod).__name__ if mod is not None else None,
                    shape=shape,
                    dtype=dtype,
                    in_shapes=in_shapes,
                    line=line,
                    nbytes=nbytes,
                    tensor_out=shape is not None,
                    direct=direct,
                )
            )
            executed.add(path)
            of[n] = idx
            group_key, group_idx, group_members = key, idx, {n}
            continue
        group_key, group_idx, group_members = None, None, set()
        name = _op_name(n.target)
        inputs = []
        in_shapes = []
        gather(ins_fx, None, inputs, in_shapes)
        scope = stack[-1][1] if stack else ""
        g = GNode(
            idx=len(nodes),
            op="call_function",
            target=name,
            inputs=inputs,
            scope=scope,
            shape=shape,
            dtype=dtype,
            in_shapes=in_shapes,
            line=line,
            nbytes=nbytes,
            tensor_out=shape is not None,
            direct=direct,
        )
        g.args = scalar_args(dict(n.kwargs))
        if (
            name in ("softmax", "log_softmax")
            and "dim" not in g.args
            and len(n.args) > 1
            and isinstance(n.args[1], int)
        ):
            g.args["dim"] = n.args[1]
        nums = [a for a in n.args if isinstance(a, (int, float)) and not isinstance(a, bool)]
        g.scalar_operand = len(n.all_input_nodes) == 1 and bool(nums)
        if name in SIDE_EFFECT_FUNCTIONS or is_inplace(name) or name in CONTROL_FUNCTIONS:
            g.sink = True
        if shape is None and name != "getitem":
            g.sink = True
        nodes.append(g)
        of[n] = g.idx
    executed.discard("")
    return Trace(
        nodes=nodes,
        output=output,
        placeholders=placeholders,
        executed=executed,
        params_read=params_read,
        failure=None,
        fx=True,
        output_value_shapes=out_shapes,
    )


def _flat_input_names(given: list[str], args: tuple, kwargs: dict, count: int) -> list[str]:
    """The forward argument each flattened user input of the export belongs to."""
    from torch.utils._pytree import tree_flatten

    names: list[str] = []
    for i, a in enumerate(args):
        leaves, _ = tree_flatten(a)
        names += [given[i] if i < len(given) else f"arg{i}"] * len(leaves)
    for k, v in kwargs.items():
        leaves, _ = tree_flatten(v)
        names += [k] * len(leaves)
    return names if len(names) >= count else names + [f"input{i}" for i in range(len(names), count)]
