"""Evaluates the expressions a file builds and calls its model with: literals, arithmetic, its constants, tensor factories."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from typing import Any

import torch
from torch import nn

from nnlint.passes.graph.specs import DTYPES, TensorSpec
from nnlint.passes.slicing import dotted
from nnlint.vocab import TENSOR_FACTORIES


class NotLiteral(Exception):
    pass


class LiteralEval:
    """Evaluates the expressions a file uses to build and call its model: literals,
    arithmetic, names bound in the same scope or at module level, calls to (non-module)
    classes defined in the file, and torch tensor factories (-> TensorSpec)."""

    def __init__(self, module: Any, bindings: dict[str, ast.expr], batch_size: int) -> None:
        self.module = module
        self.bindings = bindings
        self.batch = batch_size
        self.depth = 0

    def eval(self, node: ast.AST) -> Any:
        self.depth += 1
        try:
            if self.depth > 30:
                raise NotLiteral("too deep")
            return self._eval(node)
        finally:
            self.depth -= 1

    def _eval(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.Tuple, ast.List)):
            vals = [self.eval(e) for e in node.elts]
            return tuple(vals) if isinstance(node, ast.Tuple) else vals
        if isinstance(node, ast.Dict):
            return {self.eval(k): self.eval(v) for k, v in zip(node.keys, node.values) if k is not None}
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = self.eval(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            a, b = self.eval(node.left), self.eval(node.right)
            ops = {
                ast.Add: lambda: a + b,
                ast.Sub: lambda: a - b,
                ast.Mult: lambda: a * b,
                ast.FloorDiv: lambda: a // b,
                ast.Div: lambda: a / b,
                ast.Pow: lambda: a**b,
                ast.Mod: lambda: a % b,
            }
            fn = ops.get(type(node.op))
            if fn is None or not all(isinstance(x, (int, float)) for x in (a, b)):
                raise NotLiteral("operator")
            return fn()
        if isinstance(node, ast.Name):
            if node.id in self.bindings:
                return self._eval_binding(node.id)
            if node.id in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.id]
            v = getattr(self.module, node.id, NotLiteral)
            if v is NotLiteral:
                raise NotLiteral(node.id)
            if isinstance(v, (int, float, str, bool, tuple)) or v is None:
                return v
            if isinstance(v, type) or inspect.isfunction(v):
                return v  # a block class or factory passed to the constructor (ResNet(BasicBlock, ...))
            raise NotLiteral(node.id)
        if isinstance(node, ast.Attribute):
            d = dotted(node) or ""
            if d.startswith("torch.") and d.split(".")[-1] in DTYPES:
                return d.split(".")[-1]
            obj = self._module_attr(d)
            if obj is not NotLiteral:
                return obj
            base = self.eval(node.value)
            if dataclasses.is_dataclass(base) or hasattr(base, "__dict__") and not isinstance(base, type):
                v = getattr(base, node.attr, NotLiteral)
                if v is not NotLiteral and isinstance(v, (int, float, str, bool, tuple)):
                    return v
            raise NotLiteral(d)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise NotLiteral(type(node).__name__)

    def _module_attr(self, dotted: str) -> Any:
        """``nn.BatchNorm2d`` / ``torch.nn.ReLU``: a class or function reached through an
        imported module of the file."""
        import types

        parts = dotted.split(".")
        obj = getattr(self.module, parts[0], NotLiteral) if parts else NotLiteral
        if not isinstance(obj, types.ModuleType):
            return NotLiteral
        for p in parts[1:]:
            obj = getattr(obj, p, NotLiteral)
            if obj is NotLiteral:
                return NotLiteral
        return obj if isinstance(obj, type) or callable(obj) and not isinstance(obj, types.ModuleType) else NotLiteral

    def _eval_binding(self, name: str) -> Any:
        expr = self.bindings[name]
        saved = self.bindings
        self.bindings = {k: v for k, v in saved.items() if k != name}  # no self-reference loops
        try:
            return self.eval(expr)
        finally:
            self.bindings = saved

    def _call(self, node: ast.Call) -> Any:
        d = dotted(node.func) or ""
        last = d.split(".")[-1]
        if (
            d.startswith("torch.")
            and last in TENSOR_FACTORIES
            or last in ("randn", "rand", "randint")
            and d.startswith("torch")
        ):
            return self._tensor(last, node)
        if isinstance(node.func, ast.Attribute) and node.func.attr in (
            "long",
            "float",
            "int",
            "to",
            "cuda",
            "cpu",
            "unsqueeze",
        ):
            inner = self.eval(node.func.value)
            if isinstance(inner, TensorSpec):
                if node.func.attr in ("long", "int"):
                    inner.dtype = "int64"
                    inner.low, inner.high = inner.low or 0, inner.high or 2
                elif node.func.attr == "float":
                    inner.dtype = "float32"
                elif node.func.attr == "unsqueeze" and node.args:
                    dim = self.eval(node.args[0])
                    shape = list(inner.shape)
                    shape.insert(dim if dim >= 0 else len(shape) + dim + 1, 1)
                    inner.shape = tuple(shape)
                return inner
        if isinstance(node.func, ast.Name):
            obj = getattr(self.module, node.func.id, None)
            if (
                isinstance(obj, type)
                and not issubclass(obj, nn.Module)
                and getattr(obj, "__module__", None) == self.module.__name__
            ):
                args = [self.eval(a) for a in node.args if not isinstance(a, ast.Starred)]
                kwargs = {k.arg: self.eval(k.value) for k in node.keywords if k.arg}
                return obj(*args, **kwargs)
            if node.func.id in ("dict", "tuple", "list", "int", "float") and not node.keywords:
                return {"dict": dict, "tuple": tuple, "list": list, "int": int, "float": float}[node.func.id](
                    *[self.eval(a) for a in node.args]
                )
            if node.func.id == "dict":
                return {k.arg: self.eval(k.value) for k in node.keywords if k.arg}
        raise NotLiteral(d)

    def _tensor(self, name: str, node: ast.Call) -> TensorSpec:
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        dtype = self.eval(kw["dtype"]) if "dtype" in kw else None
        args = [self.eval(a) for a in node.args]
        low = high = None
        if name == "randint":
            if "size" in kw:
                args.append(self.eval(kw["size"]))
            if "high" in kw:
                args.insert(0, self.eval(kw["high"]))
            if len(args) == 2:
                low, high, size = 0, args[0], args[1]
            elif len(args) >= 3:
                low, high, size = args[0], args[1], args[2]
            else:
                raise NotLiteral("randint")
            return TensorSpec(tuple(size), str(dtype or "int64"), low, high)
        if name in ("tensor", "LongTensor", "FloatTensor"):
            import numpy as np

            arr = np.asarray(args[0]) if args else np.zeros(0)
            is_int = name == "LongTensor" or name == "tensor" and arr.dtype.kind in "iu"
            dt = str(dtype) if dtype else ("int64" if is_int else "float32")
            spec = TensorSpec(tuple(arr.shape), dt)
            if is_int and arr.size:
                spec.low, spec.high = int(arr.min()), int(arr.max()) + 1
            return spec
        if name == "arange":
            n = args[-1] if len(args) <= 2 else args[1]
            return TensorSpec((int(n) - (int(args[0]) if len(args) >= 2 else 0),), str(dtype or "int64"), 0, int(n))
        if "size" in kw:
            args = [self.eval(kw["size"])]
        if name == "full":
            args = args[:1]
        if len(args) == 1 and isinstance(args[0], (tuple, list)):
            shape = tuple(args[0])
        else:
            shape = tuple(args)
        if not all(isinstance(s, int) for s in shape):
            raise NotLiteral("shape")
        dt = str(dtype or "float32")
        spec = TensorSpec(shape, dt)
        if not DTYPES.get(dt, torch.float32).is_floating_point:
            spec.low, spec.high = 0, 2
        return spec
