"""Builds and feeds a model in the dtype the file's script converts it to (``seq.double()``, ``.to(torch.float64)``).

A script that calls ``model.double()`` before training runs a float64 model on float64
data; nnlint builds the class as written (float32) and guesses inputs, so a forward that
mixes the class's own ``dtype=torch.double`` states with float32 weights would fail for
nnlint only. ``apply`` reads the conversions from the file's syntax tree (no user code runs)
and makes each discovered model's build and input do the same; ``mismatch`` tells a
forward's dtype error apart, so that one on guessed inputs is never reported as a bug.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Callable
from typing import Any

#: ``model.double()``-style methods and the dtype each converts to
METHOD_DTYPES = {"double": "float64", "float": "float32", "half": "float16", "bfloat16": "bfloat16"}
#: ``torch.<name>`` dtypes a ``.to(...)`` may name, by their canonical name
TORCH_FLOAT_DTYPES = {
    "float64": "float64",
    "double": "float64",
    "float32": "float32",
    "float": "float32",
    "float16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
}
#: every file-wide default (``torch.set_default_dtype``): the key that applies to all models
ALL = "*"

_MISMATCH = re.compile(
    r"must have the same dtype|expected scalar type|same dtype|dtype mismatch|"
    r"Input type \(.*\) and (weight|bias) type|expected .* to have .* dtype|"
    r"found dtype|got (Double|Float|Half|BFloat16) and (Double|Float|Half|BFloat16)",
    re.I,
)


def mismatch(exc: BaseException | None) -> bool:
    """Is ``exc`` a forward's dtype mismatch (float64 states meeting float32 weights)?"""
    return exc is not None and isinstance(exc, (RuntimeError, TypeError)) and bool(_MISMATCH.search(str(exc)))


def converted(text: str) -> dict[str, str]:
    """Class and variable names of the file's models -> the dtype its script converts them
    to; ``ALL`` for ``torch.set_default_dtype(...)``. A name converted to two dtypes is left
    out (nnlint cannot tell which one the model is checked in)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    bound: dict[str, str] = {}  # variable -> class whose instance it holds
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            root = _root(node.value)
            if isinstance(root, ast.Call) and isinstance(root.func, ast.Name):
                bound[node.targets[0].id] = root.func.id
            elif isinstance(root, ast.Name) and root.id in bound:
                bound[node.targets[0].id] = bound[root.id]  # model = model.double()
    found: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        dtype = _conversion(node)
        if dtype is None:
            continue
        if dtype == ALL:
            found.setdefault(ALL, set()).add(_dtype_arg(node.args[0]) or "?")
            continue
        assert isinstance(node.func, ast.Attribute)
        root = _root(node.func.value)
        names: list[str] = []
        if isinstance(root, ast.Call) and isinstance(root.func, ast.Name):
            names = [root.func.id]  # Net().double()
        elif isinstance(root, ast.Name):
            names = [root.id] + ([bound[root.id]] if root.id in bound else [])  # seq.double()
        for n in names:
            found.setdefault(n, set()).add(dtype)
    return {n: next(iter(d)) for n, d in found.items() if len(d) == 1 and "?" not in d}


def _root(node: ast.expr) -> ast.expr:
    """``Net(3).to(device).double()`` -> ``Net(3)``; ``seq.cuda()`` -> ``seq``."""
    while (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and not (isinstance(node.func.value, ast.Name) and node.func.value.id in ("torch", "nn"))
    ):
        node = node.func.value
    return node


def _dtype_arg(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "torch":
        return TORCH_FLOAT_DTYPES.get(node.attr)
    return None


def _conversion(call: ast.Call) -> str | None:
    func = call.func
    if not isinstance(func, ast.Attribute):
        return None
    if func.attr == "set_default_dtype" and isinstance(func.value, ast.Name) and func.value.id == "torch":
        return ALL if call.args else None
    if func.attr in METHOD_DTYPES and not call.args and not call.keywords:
        return METHOD_DTYPES[func.attr]
    if func.attr == "to":
        for arg in [*call.args, *(k.value for k in call.keywords if k.arg == "dtype")]:
            dt = _dtype_arg(arg)
            if dt is not None:
                return dt
    return None


def with_float_dtype(spec: Any, dtype: str) -> Any:
    """``spec`` with its floating-point tensors in ``dtype`` (integer inputs are kept)."""
    from nnlint.passes.graph.specs import TensorSpec

    def conv(v: Any) -> Any:
        if isinstance(v, TensorSpec) and v.dtype in TORCH_FLOAT_DTYPES:
            return dataclasses.replace(v, dtype=dtype)
        if isinstance(v, (list, tuple)):
            return type(v)(conv(x) for x in v)
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        import torch

        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return v.to(getattr(torch, dtype))
        return v

    if spec is None:
        return None
    return dataclasses.replace(spec, args=[conv(a) for a in spec.args], kwargs=conv(dict(spec.kwargs)))


def _build_in(fn: Callable[[], Any], dtype: str) -> Callable[[], Any]:
    def build() -> Any:
        import torch

        model = fn()
        return model.to(getattr(torch, dtype)) if isinstance(model, torch.nn.Module) else model

    return build


def apply(cands: list, text: str) -> None:
    """Each automatically discovered model that the file converts (``seq.double()``) is
    built in that dtype and its file or guessed input made the same; declared models
    (pyproject, ``nnlint_examples()``) are built as declared."""
    conv = converted(text)
    if not conv:
        return
    everywhere = conv.get(ALL)
    for c in cands:
        if getattr(c, "declared", True):
            continue
        cls_name = c.cls.__name__ if getattr(c, "cls", None) is not None else None
        dtype = conv.get(c.name) or (conv.get(cls_name) if cls_name else None) or everywhere
        if dtype is None or dtype == "float32":
            continue
        c.meta["dtype"] = dtype
        if c.build is not None:
            c.build = _build_in(c.build, dtype)
        if c.meta.get("attempts"):
            c.meta["attempts"] = [
                (desc, _build_in(fn, dtype), with_float_dtype(s, dtype)) for desc, fn, s in c.meta["attempts"]
            ]
        c.inputs = with_float_dtype(c.inputs, dtype)
