"""Find the models in a user's file, build them, and find an input for each.

Runs in the child process (``worker``), where importing user code is safe. Precedence,
first that applies to the file wins:

1. CLI: ``--model Name`` (+ ``--kwargs``, ``--input-shape``, ``--input-dtype``);
2. ``[[tool.nnlint.models]]`` entries whose ``target`` is this file;
3. the file's ``nnlint_examples()`` (dicts with ``nnlint.example.EXAMPLE_KEYS``, or Examples);
4. automatic: every top-level ``nn.Module`` subclass defined in the file that is not only a
   building block of another class there, nor a base class; built from its defaults, from
   the literal arguments of a call to it found in the file (``__main__`` block, test
   functions), or with a config dataclass whose fields all default (nanoGPT's
   ``GPT(GPTConfig())``). Its input comes from that call's tensor when there is one, from
   Lightning's ``example_input_array``, else from the first layer the forward uses.

Models are built on the meta device: building GPT-2-XL there costs ~0.3 GB instead of
6.4 GB (docs/MEASUREMENTS.md). ``Candidate.build`` can build them for real later (the
probe), once their measured size fits the budget.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import torch
from torch import nn

from nnlint.example import EXAMPLE_KEYS, Example

#: the guessed sequence length: odd and prime, so that it neither divides nor is divided by
#: the usual batch, head and channel sizes (powers of two) and NN209's shape algebra on
#: view/reshape stays sharp
SEQ_LEN = 13
SIZES_2D = (28, 32, 64, 224, 96, 128, 256, 227, 299)
SIZES_1D = (16, 32, 64, 128, 256, 512, 1000, 1024, 4096, 16000)
SIZES_3D = (16, 32, 64, 112)
DTYPES = {
    "float": torch.float32,
    "float32": torch.float32,
    "float16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
    "double": torch.float64,
    "long": torch.int64,
    "int64": torch.int64,
    "int": torch.int64,
    "int32": torch.int32,
    "bool": torch.bool,
    "uint8": torch.uint8,
}
LOSSES = {
    # name in source -> canonical torch.nn class name, in order of preference
    "CrossEntropyLoss": "CrossEntropyLoss",
    "cross_entropy": "CrossEntropyLoss",
    "NLLLoss": "NLLLoss",
    "nll_loss": "NLLLoss",
    "BCEWithLogitsLoss": "BCEWithLogitsLoss",
    "binary_cross_entropy_with_logits": "BCEWithLogitsLoss",
    "BCELoss": "BCELoss",
    "binary_cross_entropy": "BCELoss",
    "MultiLabelSoftMarginLoss": "MultiLabelSoftMarginLoss",
    "multilabel_soft_margin_loss": "MultiLabelSoftMarginLoss",
    "MSELoss": "MSELoss",
    "mse_loss": "MSELoss",
    "L1Loss": "L1Loss",
    "l1_loss": "L1Loss",
    "SmoothL1Loss": "SmoothL1Loss",
    "smooth_l1_loss": "SmoothL1Loss",
    "HuberLoss": "HuberLoss",
    "huber_loss": "HuberLoss",
    "KLDivLoss": "KLDivLoss",
    "kl_div": "KLDivLoss",
    "CTCLoss": "CTCLoss",
    "ctc_loss": "CTCLoss",
}
CONFIG_NAME = re.compile(r"config|conf|cfg|args|params|hparams|options|settings|spec", re.I)
BASE_NAME = re.compile(r"^(Base|Abstract)|(Base|Mixin|Interface|ABC)$")


# ---------------------------------------------------------------------------------------
# inputs


@dataclass
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str = "float32"
    low: float | None = None
    high: float | None = None

    def make(self, device: str | torch.device = "cpu") -> torch.Tensor:
        dt = DTYPES.get(self.dtype, torch.float32)
        if dt == torch.bool:
            return torch.randint(0, 2, self.shape, device=device).bool()
        if not dt.is_floating_point:
            lo = int(self.low if self.low is not None else 0)
            hi = int(self.high if self.high is not None else 2)
            return torch.randint(lo, max(hi, lo + 1), self.shape, dtype=dt, device=device)
        t = torch.randn(self.shape, dtype=dt, device=device)
        if self.low is not None and self.high is not None:
            t = torch.rand(self.shape, dtype=dt, device=device) * (self.high - self.low) + self.low
        return t

    def code(self) -> str:
        dims = ", ".join(map(str, self.shape))
        if self.dtype in ("long", "int64", "int", "int32"):
            return (
                f"torch.randint(0, {int(self.high or 2)}, ({dims},))"
                if len(self.shape) == 1
                else f"torch.randint(0, {int(self.high or 2)}, ({dims}))"
            )
        return f"torch.randn({dims})"

    def describe(self) -> str:
        s = "(" + ", ".join(map(str, self.shape)) + ")"
        return s if self.dtype in ("float32", "float") else f"{s} {self.dtype}"


@dataclass
class InputSpec:
    """Positional and keyword example inputs; values are TensorSpec or plain Python values."""

    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    origin: str = ""
    #: the size search, when there was one: {"layer": ..., "tried": [...], "fits": [...]}
    search: dict[str, Any] | None = None

    def make(self, device: str | torch.device = "cpu") -> tuple[tuple, dict]:
        def mk(v: Any) -> Any:
            if isinstance(v, TensorSpec):
                return v.make(device)
            if isinstance(v, torch.Tensor):
                return (
                    v.to(device)
                    if v.device.type != "meta" or str(device) == "meta"
                    else TensorSpec(tuple(v.shape), str(v.dtype).replace("torch.", ""), 0, 2).make(device)
                )
            if isinstance(v, (list, tuple)):
                return type(v)(mk(x) for x in v)
            if isinstance(v, dict):
                return {k: mk(x) for k, x in v.items()}
            return v

        return tuple(mk(a) for a in self.args), {k: mk(v) for k, v in self.kwargs.items()}

    def as_example_inputs(self, device: str | torch.device = "cpu") -> Any:
        args, kwargs = self.make(device)
        if kwargs and not args:
            return kwargs
        if len(args) == 1 and not kwargs:
            return args[0]
        return args

    def describe(self) -> str:
        parts = [a.describe() if isinstance(a, TensorSpec) else _short(a) for a in self.args]
        parts += [f"{k}={v.describe() if isinstance(v, TensorSpec) else _short(v)}" for k, v in self.kwargs.items()]
        return ", ".join(parts)

    def code(self) -> str:
        if len(self.args) == 1 and not self.kwargs and isinstance(self.args[0], TensorSpec):
            return self.args[0].code()
        parts = [a.code() if isinstance(a, TensorSpec) else repr(a) for a in self.args]
        if self.kwargs:
            return (
                "{"
                + ", ".join(
                    f"{k!r}: {v.code() if isinstance(v, TensorSpec) else repr(v)}" for k, v in self.kwargs.items()
                )
                + "}"
            )
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _short(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return (
            "("
            + ", ".join(map(str, v.shape))
            + ")"
            + ("" if v.dtype == torch.float32 else f" {str(v.dtype).replace('torch.', '')}")
        )
    r = repr(v)
    return r if len(r) < 40 else r[:37] + "..."


def spec_from_value(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        dt = str(v.dtype).replace("torch.", "")
        spec = TensorSpec(tuple(int(s) for s in v.shape), dt)
        if not v.dtype.is_floating_point and v.device.type != "meta" and v.numel():
            spec.low, spec.high = int(v.min()), int(v.max()) + 1
        return spec
    if isinstance(v, (list, tuple)):
        return type(v)(spec_from_value(x) for x in v)
    if isinstance(v, dict):
        return {k: spec_from_value(x) for k, x in v.items()}
    return v


def spec_from_inputs(inputs: Any, origin: str) -> InputSpec:
    if isinstance(inputs, dict):
        return InputSpec(kwargs={k: spec_from_value(v) for k, v in inputs.items()}, origin=origin)
    if isinstance(inputs, (tuple, list)):
        return InputSpec(args=[spec_from_value(v) for v in inputs], origin=origin)
    return InputSpec(args=[spec_from_value(inputs)], origin=origin)


def spec_from_declared(entries: list[dict[str, Any]], origin: str, default_high: int | None = None) -> InputSpec:
    """pyproject ``inputs = [{shape = [8, 3, 32, 32], dtype = "float", low = 0, high = 10, name = "x"}]``."""
    spec = InputSpec(origin=origin)
    for e in entries:
        if not isinstance(e, dict) or "shape" not in e:
            raise ValueError(f"each input needs a shape, got {e!r}")
        dtype = str(e.get("dtype", "float32"))
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")
        t = TensorSpec(tuple(int(s) for s in e["shape"]), dtype, e.get("low"), e.get("high"))
        if not DTYPES[dtype].is_floating_point and t.high is None and DTYPES[dtype] != torch.bool:
            t.low, t.high = 0, default_high or 2
        if e.get("name"):
            spec.kwargs[str(e["name"])] = t
        else:
            spec.args.append(t)
    return spec


# ---------------------------------------------------------------------------------------
# importing the file


class ImportFailure(Exception):
    def __init__(self, exc: BaseException, line: int | None, where: str | None) -> None:
        super().__init__(str(exc))
        self.exc = exc
        self.line = line
        self.where = where


#: the slice each imported user module was run from (module name -> slicing.Slice)
SLICES: dict[str, Any] = {}


def import_file(path: str) -> Any:
    """Import ``path`` like Python would as part of its package (relative imports work),
    running only the slice of its module level that its models need (``slicing``): imports,
    definitions and the values they read, never the script's work (loops, data sets,
    downloads, checkpoints, ``__main__``). The file is never imported whole: a model that
    needs a value only the script computes is reported (NN002), not built."""
    real = os.path.realpath(path)
    folder = os.path.dirname(real)
    stem = os.path.splitext(os.path.basename(real))[0]
    parts = [stem]
    top = folder
    while os.path.isfile(os.path.join(top, "__init__.py")) and stem.isidentifier():
        parts.insert(0, os.path.basename(top))
        top = os.path.dirname(top)
    in_package = len(parts) > 1 and all(p.isidentifier() for p in parts)
    if in_package:
        sys.path.insert(0, top)
        if folder not in sys.path:
            sys.path.insert(1, folder)
        name = ".".join(parts)
    else:
        sys.path.insert(0, folder)
        name = (
            stem
            if stem.isidentifier()
            and stem not in sys.modules
            and stem not in sys.builtin_module_names
            and stem not in getattr(sys, "stdlib_module_names", ())
            else f"_nnlint_user_{abs(hash(real))}"
        )
    from nnlint.passes import slicing

    try:
        with open(real, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ImportFailure(exc, None, None) from None
    try:
        tree = ast.parse(data, real)
    except (SyntaxError, ValueError) as exc:
        raise _import_failure(exc, real) from None
    sl = slicing.slice_body(tree.body)
    SLICES[name] = sl
    return _exec_file(name, real, slicing.compile_slice(sl, real), in_package)


def _exec_file(name: str, real: str, code: Any, in_package: bool) -> Any:
    """Run ``code`` (default: the file itself) as the module ``name``."""
    if in_package:
        parent = name.rpartition(".")[0]
        try:
            importlib.import_module(parent)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise _import_failure(exc, real) from None
    spec = importlib.util.spec_from_file_location(name, real)
    if spec is None or spec.loader is None:
        raise ImportFailure(ImportError(f"cannot import {real}"), None, None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        if code is None:
            spec.loader.exec_module(module)
        else:
            exec(code, module.__dict__)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        sys.modules.pop(name, None)
        raise _import_failure(exc, real) from None
    return module


def _import_failure(exc: BaseException, real: str) -> ImportFailure:
    line = None
    where = None
    tb = exc.__traceback__
    while tb is not None:
        fn = tb.tb_frame.f_code.co_filename
        if os.path.realpath(fn) == real:
            line = tb.tb_lineno
        where = f"{fn}:{tb.tb_lineno}"
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and exc.filename and os.path.realpath(exc.filename) == real:
        line = exc.lineno
    return ImportFailure(exc, line, where)


# ---------------------------------------------------------------------------------------
# what the file's source says


@dataclass
class ClassFacts:
    name: str
    line: int
    bases: list[str]
    used_in: set[str] = field(default_factory=set)  # other classes whose bodies mention it
    #: (scope bindings, call node, input expression or None) for each call found outside classes
    calls: list[tuple[dict[str, ast.expr], ast.Call, Any]] = field(default_factory=list)


@dataclass
class FileFacts:
    classes: dict[str, ClassFacts]
    loss_name: str | None
    examples_line: int | None
    subclassed: set[str]


def scan_source(text: str) -> FileFacts:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return FileFacts({}, None, None, set())
    classes: dict[str, ClassFacts] = {}
    subclassed: set[str] = set()
    examples_line = None
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases = [_dotted(b) or "" for b in node.bases]
            classes[node.name] = ClassFacts(node.name, node.lineno, bases)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "nnlint_examples":
            examples_line = node.lineno
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for b in classes[node.name].bases:
                if b.split(".")[-1] in classes:
                    subclassed.add(b.split(".")[-1])
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and sub.id in classes and sub.id != node.name:
                    classes[sub.id].used_in.add(node.name)
    # calls outside class bodies: module level (incl. __main__) and functions
    scopes: list[list[ast.stmt]] = [
        [n for n in tree.body if not isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    ]
    for node in _functions_outside_models(tree, set(classes)):
        if node.name != "nnlint_examples":
            scopes.append(node.body)
    module_bindings = _bindings(scopes[0])
    for i, body in enumerate(scopes):
        bindings = dict(module_bindings)
        if i:
            bindings.update(_bindings(body))
        model_vars: dict[str, str] = {}
        for stmt in body:
            for sub in _walk_no_defs(stmt):
                if (
                    isinstance(sub, ast.Assign)
                    and len(sub.targets) == 1
                    and isinstance(sub.targets[0], ast.Name)
                    and isinstance(sub.value, ast.Call)
                    and isinstance(sub.value.func, ast.Name)
                    and sub.value.func.id in classes
                ):
                    model_vars[sub.targets[0].id] = sub.value.func.id
        for stmt in body:
            for sub in _walk_no_defs(stmt):
                if not isinstance(sub, ast.Call):
                    continue
                fn = sub.func
                if isinstance(fn, ast.Name) and fn.id in classes:
                    classes[fn.id].calls.append((bindings, sub, _input_for(fn.id, sub, body, model_vars)))
                    for arg in [*sub.args, *(k.value for k in sub.keywords)]:
                        if isinstance(arg, ast.Name) and arg.id in classes and arg.id != fn.id:
                            classes[arg.id].used_in.add(fn.id)  # ResNet(BasicBlock, ...): a building block
                elif isinstance(fn, ast.Call) and isinstance(fn.func, ast.Name) and fn.func.id in classes:
                    pass  # Model(...)(x): handled through _input_for on the inner call
    loss_name = None
    found = []
    for sub in ast.walk(tree):
        name = sub.attr if isinstance(sub, ast.Attribute) else sub.id if isinstance(sub, ast.Name) else None
        if name in LOSSES:
            found.append(LOSSES[name])
    if found:
        order = list(dict.fromkeys(LOSSES.values()))
        loss_name = min(found, key=order.index)
    return FileFacts(classes, loss_name, examples_line, subclassed)


def _functions_outside_models(tree: ast.Module, class_names: set[str]) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Module-level functions (and their nested ones) and methods of test classes: where a
    file shows how its models are built. Methods of the file's other classes build
    submodules, not models."""
    out = []
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append(node)
            stack.extend(node.body)
        elif isinstance(node, ast.ClassDef):
            if node.name.startswith("Test"):
                stack.extend(node.body)
        elif isinstance(node, (ast.If, ast.With, ast.Try)):
            stack.extend(ast.iter_child_nodes(node))
    return out


def _walk_no_defs(node: ast.AST):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        for c in ast.iter_child_nodes(n):
            if not isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                stack.append(c)


def _bindings(body: list[ast.stmt]) -> dict[str, ast.expr]:
    out: dict[str, ast.expr] = {}
    for stmt in body:
        for sub in _walk_no_defs(stmt):
            if isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name):
                out.setdefault(sub.targets[0].id, sub.value)
            elif isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name) and sub.value is not None:
                out.setdefault(sub.target.id, sub.value)
    return out


def _input_for(cls: str, call: ast.Call, body: list[ast.stmt], model_vars: dict[str, str]) -> Any:
    """The argument(s) the model built by ``call`` is called with in the same scope:
    ``model = Net(); model(x)`` or ``Net()(x)``."""
    var = next((v for v, c in model_vars.items() if c == cls), None)
    for stmt in body:
        for sub in _walk_no_defs(stmt):
            if not isinstance(sub, ast.Call):
                continue
            fn = sub.func
            if fn is call:
                return sub
            if var and isinstance(fn, ast.Name) and fn.id == var:
                return sub
            if (
                var
                and isinstance(fn, ast.Attribute)
                and fn.attr == "forward"
                and isinstance(fn.value, ast.Name)
                and fn.value.id == var
            ):
                return sub
    return None


def _dotted(node: ast.AST) -> str | None:
    from nnlint.passes.slicing import dotted

    return dotted(node)


class _Unknown(Exception):
    pass


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
                raise _Unknown("too deep")
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
                raise _Unknown("operator")
            return fn()
        if isinstance(node, ast.Name):
            if node.id in self.bindings:
                return self._eval_binding(node.id)
            if node.id in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.id]
            v = getattr(self.module, node.id, _Unknown)
            if v is _Unknown:
                raise _Unknown(node.id)
            if isinstance(v, (int, float, str, bool, tuple)) or v is None:
                return v
            if isinstance(v, type) or inspect.isfunction(v):
                return v  # a block class or factory passed to the constructor (ResNet(BasicBlock, ...))
            raise _Unknown(node.id)
        if isinstance(node, ast.Attribute):
            d = _dotted(node) or ""
            if d.startswith("torch.") and d.split(".")[-1] in DTYPES:
                return d.split(".")[-1]
            obj = self._module_attr(d)
            if obj is not _Unknown:
                return obj
            base = self.eval(node.value)
            if dataclasses.is_dataclass(base) or hasattr(base, "__dict__") and not isinstance(base, type):
                v = getattr(base, node.attr, _Unknown)
                if v is not _Unknown and isinstance(v, (int, float, str, bool, tuple)):
                    return v
            raise _Unknown(d)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise _Unknown(type(node).__name__)

    def _module_attr(self, dotted: str) -> Any:
        """``nn.BatchNorm2d`` / ``torch.nn.ReLU``: a class or function reached through an
        imported module of the file."""
        import types

        parts = dotted.split(".")
        obj = getattr(self.module, parts[0], _Unknown) if parts else _Unknown
        if not isinstance(obj, types.ModuleType):
            return _Unknown
        for p in parts[1:]:
            obj = getattr(obj, p, _Unknown)
            if obj is _Unknown:
                return _Unknown
        return obj if isinstance(obj, type) or callable(obj) and not isinstance(obj, types.ModuleType) else _Unknown

    def _eval_binding(self, name: str) -> Any:
        expr = self.bindings[name]
        saved = self.bindings
        self.bindings = {k: v for k, v in saved.items() if k != name}  # no self-reference loops
        try:
            return self.eval(expr)
        finally:
            self.bindings = saved

    def _call(self, node: ast.Call) -> Any:
        d = _dotted(node.func) or ""
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
        raise _Unknown(d)

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
                raise _Unknown("randint")
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
            raise _Unknown("shape")
        dt = str(dtype or "float32")
        spec = TensorSpec(shape, dt)
        if not DTYPES.get(dt, torch.float32).is_floating_point:
            spec.low, spec.high = 0, 2
        return spec


# ---------------------------------------------------------------------------------------
# candidates


@dataclass
class Candidate:
    name: str
    line: int | None
    origin: str  # cli | pyproject | examples | auto
    build: Callable[[], Any] | None = None
    inputs: InputSpec | None = None
    cls: type | None = None
    example: Example | None = None  # from nnlint_examples(): model/inputs already built (meta)
    example_index: int | None = None
    loss: Any = None
    loss_name: str | None = None
    target: Any = None
    classes: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: why it cannot be checked (-> NN002), with the snippet that would fix it
    problem: str | None = None
    kwargs_hint: str = ""

    @property
    def declared(self) -> bool:
        return self.origin != "auto"


def _is_module_class(obj: Any) -> TypeGuard[type[nn.Module]]:
    return isinstance(obj, type) and issubclass(obj, nn.Module)


def _has_forward(cls: type) -> bool:
    fwd = getattr(cls, "forward", None)
    base_fwd = nn.Module.forward
    if fwd is None or fwd is base_fwd:
        return False
    try:
        src = inspect.getsource(fwd)
        body = ast.parse(inspect.cleandoc("\n" + src) if src.startswith((" ", "\t")) else src).body[0]
        if not isinstance(body, (ast.FunctionDef, ast.AsyncFunctionDef)):  # `forward = a_lambda`, ...
            return True
        stmts = [s for s in body.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        if len(stmts) == 1 and isinstance(stmts[0], ast.Raise):
            return False
        if not stmts or len(stmts) == 1 and isinstance(stmts[0], ast.Pass):
            return False
    except (OSError, TypeError, SyntaxError, IndexError):
        pass
    return True


def class_line(cls: Any) -> int | None:
    try:
        return inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return None


def loss_from_name(name: str | None) -> Any:
    if not name:
        return None
    if ":" in name:
        mod, fn = name.split(":", 1)
        return getattr(importlib.import_module(mod), fn)
    short = name.split(".")[-1]
    if hasattr(nn, short):
        return getattr(nn, short)()
    import torch.nn.functional as F

    if hasattr(F, short):
        return getattr(F, short)
    raise ValueError(f"unknown loss {name!r}: use a torch.nn loss class name (CrossEntropyLoss) or 'module:function'")


def auto_classes(module: Any, facts: FileFacts) -> list[type]:
    """Top-level nn.Module subclasses of this file that look like models."""
    out = []
    called_outside = {n for n, c in facts.classes.items() if c.calls}
    for name, cf in facts.classes.items():
        obj = getattr(module, name, None)
        if not _is_module_class(obj) or getattr(obj, "__module__", None) != module.__name__:
            continue
        if name in called_outside:
            out.append(obj)
            continue
        if cf.used_in & set(facts.classes) - {name}:
            continue  # a building block of another class
        if name in facts.subclassed or BASE_NAME.search(name) or inspect.isabstract(obj):
            continue
        if not _has_forward(obj):
            continue
        out.append(obj)
    return out


def find_candidates(module: Any, path: str, text: str, req: dict[str, Any]) -> list[Candidate]:
    facts = scan_source(text)
    batch = int(req.get("batch_size") or 8)
    loss_name = facts.loss_name
    cands: list[Candidate] = []
    if req.get("model"):
        name = req["model"]
        obj = getattr(module, name, None)
        if obj is None:
            return []
        c = _declared(module, path, name, obj, req.get("kwargs") or {}, origin="cli", batch=batch)
        if req.get("input_shape"):
            dtype = req.get("input_dtype") or "float32"
            c.inputs = spec_from_declared([{"shape": req["input_shape"], "dtype": dtype}], "--input-shape")
            c.meta["fix_high"] = True
        c.loss_name = loss_name
        return [c]
    declared = req.get("declared") or []
    if declared:
        for entry in declared:
            target = str(entry.get("target", ""))
            name = target.rsplit(":", 1)[-1] if ":" in target else ""
            obj = getattr(module, name, None)
            if obj is None:
                cands.append(
                    Candidate(
                        name=name or target,
                        line=1,
                        origin="pyproject",
                        problem=f"[[tool.nnlint.models]] target {target!r}: {os.path.basename(path)} "
                        f"defines no {name!r}",
                    )
                )
                continue
            c = _declared(module, path, name, obj, entry.get("kwargs") or {}, origin="pyproject", batch=batch)
            if entry.get("name"):
                c.name = str(entry["name"])
            if entry.get("inputs"):
                try:
                    c.inputs = spec_from_declared(list(entry["inputs"]), f"pyproject {target}")
                    c.meta["fix_high"] = True
                except (ValueError, TypeError) as exc:
                    c.problem = f"[[tool.nnlint.models]] target {target!r}: inputs: {exc}"
            if entry.get("loss"):
                try:
                    c.loss = loss_from_name(str(entry["loss"]))
                    c.loss_name = str(entry["loss"]).split(".")[-1].split(":")[-1]
                except Exception as exc:
                    c.problem = f"[[tool.nnlint.models]] target {target!r}: loss: {exc}"
            c.loss_name = c.loss_name or loss_name
            if entry.get("classes"):
                c.classes = int(entry["classes"])
            if entry.get("target-shape"):
                c.meta["target_shape"] = list(entry["target-shape"])
            cands.append(c)
        return cands
    fn = getattr(module, "nnlint_examples", None)
    if callable(fn) and getattr(fn, "__module__", None) == module.__name__:
        return [
            Candidate(
                name="nnlint_examples",
                line=facts.examples_line or class_line(fn),
                origin="examples",
                build=fn,
                loss_name=loss_name,
            )
        ]
    for cls in auto_classes(module, facts):
        cands.append(_auto(module, cls, facts, req, batch, loss_name))
    return _more_candidates(module, path, text, facts, req, batch, loss_name, cands)


#: what discovery left out and why, for ``--verbose`` (filled by find_candidates)
DISCOVERY_NOTES: list[str] = []


def _more_candidates(
    module: Any,
    path: str,
    text: str,
    facts: FileFacts,
    req: dict[str, Any],
    batch: int,
    loss_name: str | None,
    cands: list[Candidate],
) -> list[Candidate]:
    """Module-level instances and factories, and the models that need a value the script
    computes (see ``discovery``); notes for ``--verbose`` on every class left out."""
    from nnlint.passes import discovery

    DISCOVERY_NOTES.clear()
    sl = SLICES.get(module.__name__)
    try:
        body = ast.parse(text).body
    except SyntaxError:
        return cands
    class_nodes = {n.name: n for n in body if isinstance(n, ast.ClassDef)}
    found = {c.name for c in cands}
    # classes of the file that the slice could not define (a decorator or base it needs is not computed)
    for name, cf in facts.classes.items():
        if (
            getattr(module, name, None) is None
            and sl is not None
            and name in sl.unavailable
            and re.search(r"Module|Sequential|Lightning", " ".join(cf.bases))
        ):
            line, why = sl.unavailable[name]
            cands.append(
                Candidate(
                    name=name,
                    line=cf.line,
                    origin="auto",
                    loss_name=loss_name,
                    problem=f"its definition needs a value the script computes ({why})",
                )
            )
            found.add(name)
    # models that read a value only the script computes
    for c in cands:
        node = class_nodes.get(c.name)
        if c.origin != "auto" or node is None or c.problem and c.name not in facts.classes:
            continue
        missing = discovery.needed_unavailable(body, discovery.methods_that_build(node), sl)
        via = None
        if not missing and c.problem and sl is not None:
            for _, call, _ in facts.classes[c.name].calls:
                args = [*call.args, *(k.value for k in call.keywords)]
                missing = sl.missing_for({n for a in args for n in _names_in(a)})
                if missing:
                    via = f"the call at line {call.lineno}"
                    break
        if missing:
            c.problem = discovery.missing_text(missing, via)
            c.meta.pop("attempts", None)
        fetch = discovery.downloads(body, discovery.methods_that_build(node))
        if fetch is not None and not c.problem:
            c.problem = (
                f"building it downloads weights (line {fetch[0]}: {fetch[1]}), and nnlint never downloads; "
                "pass pretrained=False/weights=None in a declaration"
            )
            c.meta.pop("attempts", None)
    # skipped classes, never silently
    for name, cf in facts.classes.items():
        obj = getattr(module, name, None)
        if name in found or not _is_module_class(obj) or getattr(obj, "__module__", None) != module.__name__:
            continue
        why = discovery.why_skipped(name, obj, facts, BASE_NAME)
        if why:
            DISCOVERY_NOTES.append(f"{name} (line {cf.line}) not checked on its own: {why}")
    # loss modules of the file (class ContrastiveLoss(nn.Module)) are not models
    for c in list(cands):
        if c.origin == "auto" and discovery.LOSS_NAME.search(c.name) and c.name in facts.classes:
            cands.remove(c)
            DISCOVERY_NOTES.append(f"{c.name} (line {c.line}) not checked: a loss module, not a model")
    # module-level instances of other types: nn.Sequential, transformers and torchvision models
    for name, obj, line in discovery.instances(module, text, set(facts.classes)):
        c = _declared(module, path, name, obj, {}, origin="auto", batch=batch)
        c.line = c.line or line
        c.loss_name = loss_name
        hf = discovery.config_inputs(obj, batch)
        if hf is not None:
            c.inputs = InputSpec(
                kwargs={k: TensorSpec(**v) for k, v in hf.items()}, origin=f"{type(obj).__name__}'s config"
            )
        c.meta["how"] = f"the module-level instance `{name}` (line {line})"
        cands.append(c)
        found.add(name)
    # module-level models the slice could not build (weights to download, a size read from data)
    unavailable = sl.unavailable if sl is not None else {}
    for name, (line, callee) in sl.instances.items() if sl is not None else []:
        if (
            name in found
            or name not in unavailable
            or callee.split(".")[0] in facts.classes
            or getattr(module, name, None) is not None
        ):
            continue
        why = unavailable[name][1]
        cands.append(
            Candidate(
                name=name,
                line=line,
                origin="auto",
                loss_name=loss_name,
                problem=f"the module-level model `{name}` (line {line}) is {why[0].lower() + why[1:]}",
            )
        )
        found.add(name)
    # factories: def resnet50(pretrained=False): return ResNet(...)
    covered = {c.name for c in cands if c.meta.get("attempts")}
    per_class: dict[str, str] = {}
    for name, fn, line in discovery.factories(module, text)[:16]:
        if name in found:
            continue
        cls_name = discovery.returned_class(body, name)
        if cls_name in covered:
            DISCOVERY_NOTES.append(f"{name}() (line {line}) builds {cls_name}, which is checked as a class")
            continue
        if cls_name and cls_name in per_class:
            DISCOVERY_NOTES.append(
                f"{name}() (line {line}) builds {cls_name} like {per_class[cls_name]}(), "
                "which is checked; not built again"
            )
            continue
        if cls_name:
            per_class[cls_name] = name
            cands = [c for c in cands if not (c.name == cls_name and c.origin == "auto" and not c.meta.get("attempts"))]
        c = _declared(module, path, name, fn, {}, origin="auto", batch=batch)
        c.line = line
        c.loss_name = loss_name
        c.meta["how"] = f"the factory {name}() (line {line})"
        fn_node = next((n for n in body if isinstance(n, ast.FunctionDef) and n.name == name), None)
        missing = discovery.needed_unavailable(body, [fn_node], sl) if fn_node is not None else []
        if missing:
            c.problem = discovery.missing_text(missing)
        cands.append(c)
        found.add(name)
    return _drop_parts(cands, body, facts)


def _drop_parts(cands: list[Candidate], body: list[ast.stmt], facts: FileFacts) -> list[Candidate]:
    """A helper class of the file (``Block(in_ch, out_ch)``) that is only built inside a
    module-level model or a factory that is checked is a part of it, not a model of its
    own: it is checked through that model, never reported alone."""
    where: dict[tuple[int, int], str] = {}
    for c in cands:
        how = str(c.meta.get("how", ""))
        if c.origin != "auto" or c.problem or not how.startswith(("the factory", "the module-level instance")):
            continue
        for node in body:
            if (
                isinstance(node, ast.FunctionDef)
                and node.name == c.name
                or isinstance(node, (ast.Assign, ast.AnnAssign))
                and c.name
                in {
                    t.id
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(t, ast.Name)
                }
            ):
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Call):
                        where[(sub.lineno, sub.col_offset)] = c.name
    out = []
    for c in cands:
        cf = facts.classes.get(c.name)
        if (
            c.origin == "auto"
            and cf is not None
            and cf.calls
            and not c.meta.get("how", "").startswith(("the factory", "the module-level"))
        ):
            owners = {where.get((call.lineno, call.col_offset)) for _, call, _ in cf.calls}
            named = {o for o in owners if o is not None}
            if len(named) == len(owners):  # every call is inside another candidate
                DISCOVERY_NOTES.append(
                    f"{c.name} (line {cf.line}) not checked on its own: a part of "
                    f"{', '.join(sorted(named))}, checked through it"
                )
                continue
        out.append(c)
    return out


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _declared(module: Any, path: str, name: str, obj: Any, kwargs: dict, origin: str, batch: int) -> Candidate:
    line = class_line(obj) if getattr(obj, "__module__", None) == module.__name__ else None
    c = Candidate(name=name, line=line, origin=origin, cls=obj if isinstance(obj, type) else None)
    if isinstance(obj, nn.Module):
        c.build = lambda: obj
        c.meta["instance"] = True  # already built (a module-level instance): used as it is
        from nnlint.passes import locate

        try:
            with open(path, encoding="utf-8") as fh:
                lines = locate.assignment_lines(fh.read(), name)
        except (OSError, UnicodeDecodeError):
            lines = {}
        if lines:
            c.meta["module_lines"] = lines
            c.line = lines[""]
    elif callable(obj):
        c.build = lambda: obj(**kwargs)
        if not isinstance(obj, type) and getattr(obj, "__module__", None) == module.__name__:
            from nnlint.passes import locate

            c.meta["module_lines"] = locate.factory_lines(obj)
    else:
        c.problem = f"{name} is neither an nn.Module class nor a factory function"
    c.kwargs_hint = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return c


def _auto(
    module: Any, cls: type, facts: FileFacts, req: dict[str, Any], batch: int, loss_name: str | None
) -> Candidate:
    cf = facts.classes[cls.__name__]
    c = Candidate(name=cls.__name__, line=cf.line, origin="auto", cls=cls, loss_name=loss_name)
    # each builder is called with no argument; the lambdas' defaults bind the loop's values
    attempts: list[tuple[str, Callable[..., Any], InputSpec | None]] = []
    if req.get("kwargs"):
        kw = dict(req["kwargs"])
        attempts.append((f"{cls.__name__}(**--kwargs)", lambda kw=kw: cls(**kw), None))
    for bindings, call, use in cf.calls:
        ev = LiteralEval(module, bindings, batch)
        try:
            # `*args`/`**kwargs` forwarded by a factory (`def resnet18(**kwargs): return
            # ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)`) are taken as empty
            args = [ev.eval(a) for a in call.args if not isinstance(a, ast.Starred)]
            kwargs = {k.arg: ev.eval(k.value) for k in call.keywords if k.arg}
            if any(isinstance(a, ast.Starred) and not isinstance(a.value, ast.Name) for a in call.args) or any(
                k.arg is None and not isinstance(k.value, ast.Name) for k in call.keywords
            ):
                raise _Unknown("starred")
        except Exception:
            continue
        spec = None
        if isinstance(use, ast.Call) and (use.args or use.keywords):
            try:
                ev2 = LiteralEval(module, bindings, batch)
                spec = InputSpec(
                    args=[_batchify(ev2.eval(a), batch) for a in use.args],
                    kwargs={k.arg: _batchify(ev2.eval(k.value), batch) for k in use.keywords if k.arg},
                    origin=f"the call at line {use.lineno}",
                )
            except Exception:
                spec = None
        attempts.append((f"the call at line {call.lineno}", lambda a=args, k=kwargs: cls(*a, **k), spec))
    sig = _init_signature(cls)
    required = (
        [
            p
            for p in sig.parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        if sig
        else []
    )
    if sig is not None and not required:
        attempts.append((f"{cls.__name__}()", lambda: cls(), None))
    elif sig is not None:
        options = [_config_options(module, facts, p) for p in required]
        if all(options):
            combos = _combinations(options, limit=8)
            for combo in combos:
                kwargs = {p.name: factory for p, factory in zip(required, combo)}
                desc = ", ".join(f"{p.name}={f.__name__}()" for p, f in zip(required, combo))
                attempts.append(
                    (f"{cls.__name__}({desc})", lambda kw=kwargs: cls(**{k: f() for k, f in kw.items()}), None)
                )
        c.kwargs_hint = ", ".join(f"{p.name}=..." for p in required)
    if not attempts:
        missing = ", ".join(repr(p.name) for p in required)
        c.problem = (
            f"its constructor needs {missing} and the file shows no call to {cls.__name__} with literal arguments"
        )
        return c
    c.meta["attempts"] = attempts
    return c


def _batchify(v: Any, batch: int) -> Any:
    """A file's example call often uses batch 1; the probe needs >= 2 samples."""
    if isinstance(v, TensorSpec) and len(v.shape) >= 2 and v.shape[0] == 1:
        v.shape = (batch, *v.shape[1:])
    return v


def _init_signature(cls: type[Any]) -> inspect.Signature | None:  # any user class
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())[1:]
    params = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return sig.replace(parameters=params)


def _config_options(module: Any, facts: FileFacts, param: inspect.Parameter) -> list[type]:
    """Classes of this file a required constructor parameter could be built from with no
    arguments: its annotation, else config-looking classes (dataclasses first)."""
    out: list[type] = []
    ann = param.annotation
    if ann is not inspect.Parameter.empty:
        if isinstance(ann, str):
            ann = getattr(module, ann.split(".")[-1].strip("'\""), None)
        if (
            isinstance(ann, type)
            and not issubclass(ann, nn.Module)
            and ann.__module__ == module.__name__
            and _default_constructible(ann)
        ):
            return [ann]
        if isinstance(ann, type) and ann not in (dict, object):
            return []
    for name in facts.classes:
        obj = getattr(module, name, None)
        if not isinstance(obj, type) or issubclass(obj, nn.Module) or obj.__module__ != module.__name__:
            continue
        if not (dataclasses.is_dataclass(obj) or CONFIG_NAME.search(name)):
            continue
        if not CONFIG_NAME.search(param.name) and param.name.lower() not in name.lower():
            continue
        if _default_constructible(obj):
            out.append(obj)
    out.sort(key=lambda o: (not dataclasses.is_dataclass(o), name_distance(param.name, o.__name__)))
    return out


def name_distance(a: str, b: str) -> int:
    return 0 if a.lower() in b.lower() else 1


def _default_constructible(cls: type) -> bool:
    if dataclasses.is_dataclass(cls):
        return all(
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            for f in dataclasses.fields(cls)
            if f.init
        )
    sig = _init_signature(cls)
    return sig is not None and all(p.default is not p.empty for p in sig.parameters.values())


def _combinations(options: list[list[type]], limit: int) -> list[tuple[type, ...]]:
    import itertools

    return list(itertools.islice(itertools.product(*options), limit))


# ---------------------------------------------------------------------------------------
# building on the meta device


def build_meta(build: Callable[[], Any]) -> Any:
    """Build under the meta device: parameters get shapes, no memory."""
    with torch.device("meta"):
        model = build()
    if isinstance(model, nn.Module):
        to_meta(model)
    return model


def to_meta(model: nn.Module) -> None:
    if any(p.device.type != "meta" for p in model.parameters()) or any(
        b.device.type != "meta" for b in model.buffers()
    ):
        model.to("meta")


def build_real(build: Callable[[], Any]) -> Any:
    return build()


# ---------------------------------------------------------------------------------------
# inferring an input from the first layer


def forward_params(model: nn.Module) -> list[inspect.Parameter]:
    try:
        sig = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return []
    return [
        p
        for p in sig.parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def first_layers(model: nn.Module) -> dict[str, tuple[str, nn.Module]]:
    """For each forward argument, the first torch.nn layer that consumes it (through fx,
    without running anything); with no fx graph, the first registered layer for the first
    argument."""
    import torch.fx as fx

    from nnlint.passes.graph import PASS_THROUGH_FUNCTIONS, PASS_THROUGH_MODULES, is_leaf

    params = forward_params(model)
    interesting = (
        nn.Linear,
        nn.modules.conv._ConvNd,
        nn.Embedding,
        nn.EmbeddingBag,
        nn.RNNBase,
        nn.MultiheadAttention,
        nn.TransformerEncoder,
        nn.TransformerEncoderLayer,
        nn.Transformer,
        nn.modules.batchnorm._NormBase,
        nn.LayerNorm,
        nn.GroupNorm,
    )
    out: dict[str, tuple[str, nn.Module]] = {}
    try:
        sig = inspect.signature(model.forward)
        concrete = {n: p.default for n, p in sig.parameters.items() if p.default is not p.empty}
        graph = fx.Tracer().trace(model, concrete_args=concrete or None)
        mods = dict(model.named_modules())
        for ph in (n for n in graph.nodes if n.op == "placeholder"):
            frontier = list(ph.users)
            seen = set()
            while frontier:
                n = frontier.pop(0)
                if n in seen:
                    continue
                seen.add(n)
                if n.op == "call_module":
                    m = mods.get(str(n.target))
                    if isinstance(m, interesting):
                        out[str(ph.target)] = (str(n.target), m)
                        break
                    if type(m).__name__ in PASS_THROUGH_MODULES or m is None or not is_leaf(m):
                        frontier.extend(n.users)
                elif n.op in ("call_function", "call_method"):
                    name = n.target if isinstance(n.target, str) else getattr(n.target, "__name__", "")
                    if name in PASS_THROUGH_FUNCTIONS or name in ("add", "mul", "sub", "cat", "stack"):
                        frontier.extend(n.users)
        return out
    except (Exception, SystemExit):  # fx cannot trace this forward: registration order below
        out.clear()
    if params:
        for q, m in model.named_modules():
            if isinstance(m, interesting):
                out[params[0].name] = (q, m)
                break
    return out


def _candidates_for_layer(mod: nn.Module, batch: int) -> tuple[list[TensorSpec], str, list[int] | None]:
    """Input candidates (in order), a description, and the spatial sizes being searched."""
    B, T = batch, SEQ_LEN
    if isinstance(mod, (nn.Embedding, nn.EmbeddingBag)):
        n = mod.num_embeddings
        return [TensorSpec((B, t), "int64", 0, n) for t in (T, 16, 8, 4, 1)], "indices below num_embeddings", None
    if isinstance(mod, nn.Linear):
        f = mod.in_features
        return [TensorSpec((B, f)), TensorSpec((B, T, f))], f"in_features={f}", None
    if isinstance(mod, nn.modules.conv._ConvNd):
        c = mod.in_channels
        d = len(mod.kernel_size)
        if d == 1:
            return [TensorSpec((B, c, s)) for s in SIZES_1D], f"in_channels={c}", list(SIZES_1D)
        if d == 2:
            return [TensorSpec((B, c, s, s)) for s in SIZES_2D], f"in_channels={c}", list(SIZES_2D)
        return (
            [TensorSpec((B, c, s, s, s)) for s in SIZES_3D] + [TensorSpec((B, c, 16, s, s)) for s in (112, 64)],
            f"in_channels={c}",
            list(SIZES_3D),
        )
    if isinstance(mod, nn.RNNBase):
        f = mod.input_size
        shape = (B, T, f) if mod.batch_first else (T, B, f)
        return [TensorSpec(shape)], f"input_size={f}, batch_first={mod.batch_first}", None
    if isinstance(mod, nn.MultiheadAttention):
        e = mod.embed_dim
        return [TensorSpec((B, T, e) if mod.batch_first else (T, B, e))], f"embed_dim={e}", None
    if isinstance(mod, (nn.TransformerEncoder, nn.TransformerEncoderLayer, nn.Transformer)):
        layer = (
            mod
            if isinstance(mod, nn.TransformerEncoderLayer)
            else next((m for m in mod.modules() if isinstance(m, nn.MultiheadAttention)), None)
        )
        attn = layer.self_attn if isinstance(layer, nn.TransformerEncoderLayer) else layer
        if attn is None:
            return [], "", None
        e = attn.embed_dim
        bf = getattr(attn, "batch_first", False)
        return [TensorSpec((B, T, e) if bf else (T, B, e))], f"d_model={e}", None
    if isinstance(mod, nn.modules.batchnorm._NormBase):
        c = mod.num_features
        if isinstance(mod, (nn.BatchNorm2d, nn.InstanceNorm2d)):
            return [TensorSpec((B, c, s, s)) for s in SIZES_2D], f"num_features={c}", list(SIZES_2D)
        return [TensorSpec((B, c)), TensorSpec((B, c, T))], f"num_features={c}", None
    if isinstance(mod, nn.LayerNorm):
        shp = tuple(mod.normalized_shape)
        return [TensorSpec((B, T, *shp)), TensorSpec((B, *shp))], f"normalized_shape={shp}", None
    if isinstance(mod, nn.GroupNorm):
        c = mod.num_channels
        return [TensorSpec((B, c, s, s)) for s in SIZES_2D], f"num_channels={c}", list(SIZES_2D)
    return [], "", None


@dataclass
class InferResult:
    spec: InputSpec | None
    error: BaseException | None = None
    reason: str = ""


def try_forward(model: nn.Module, spec: InputSpec, device: str = "meta") -> BaseException | None:
    """Run the forward once on inputs made from ``spec``; the exception, or None. On real
    tensors the batch is cut to 2: shapes do not depend on it, time does."""
    if device != "meta":
        spec = _small_batch(spec)
    args, kwargs = spec.make(device)
    try:
        with torch.no_grad():
            model(*args, **kwargs)
    except (Exception, SystemExit) as exc:  # user code: any failure is an answer
        return exc
    return None


def _small_batch(spec: InputSpec) -> InputSpec:
    tensors = [v for v in [*spec.args, *spec.kwargs.values()] if isinstance(v, TensorSpec) and v.shape]
    lead = next((t.shape[0] for t in tensors if len(t.shape) >= 2), None)

    def cut(v: Any) -> Any:
        if isinstance(v, TensorSpec) and v.shape and v.shape[0] == lead and lead > 2:
            return dataclasses.replace(v, shape=(2, *v.shape[1:]))
        return v

    return InputSpec(
        args=[cut(a) for a in spec.args], kwargs={k: cut(v) for k, v in spec.kwargs.items()}, origin=spec.origin
    )


def infer_inputs(model: nn.Module, batch: int, *, device: str = "meta", deadline: float | None = None) -> InferResult:
    """Find an input the model's forward accepts, from its first layer(s)."""
    example = getattr(model, "example_input_array", None)
    if example is not None:
        spec = spec_from_inputs(example, "example_input_array")
        err = try_forward(model, spec, device)
        return InferResult(spec, err, "")
    params = forward_params(model)
    if not params:
        return InferResult(None, None, "forward takes no input")
    layers = first_layers(model)
    per_param: list[tuple[list[TensorSpec], str, list[int] | None, str]] = []
    for i, p in enumerate(params):
        if p.name not in layers:
            if i == 0 or not per_param:
                return InferResult(None, None, f"no layer found that consumes forward's argument '{p.name}'")
            # no layer reads it (perhaps unused, perhaps a mask): a tensor like the first input
            like = per_param[0][0][0]
            per_param.append(
                (
                    [
                        like,
                        TensorSpec((batch,)),
                        TensorSpec((batch, 1)),
                        TensorSpec((batch,), "int64", SEQ_LEN, SEQ_LEN + 1),
                    ],  # lengths
                    "no layer reads it",
                    None,
                    f"'{p.name}'",
                )
            )
            continue
        q, m = layers[p.name]
        cands, desc, sizes = _candidates_for_layer(m, batch)
        if not cands:
            return InferResult(None, None, f"cannot infer an input for its first layer {q} ({type(m).__name__})")
        per_param.append((cands, desc, sizes, q))
    import itertools

    combos = list(itertools.islice(itertools.product(*[c for c, *_ in per_param]), 40))
    first_err: BaseException | None = None
    first_spec: InputSpec | None = None
    tried: list[int] = []
    sized = next(((sizes, q) for _, _, sizes, q in per_param if sizes), None)
    origin = "inferred from " + ", ".join(f"{q} ({desc})" for _, desc, _, q in per_param)
    for combo in combos:
        if deadline is not None and time.monotonic() > deadline:
            break
        spec = InputSpec(args=list(combo), origin=origin)
        err = try_forward(model, spec, device)
        if sized:
            tried.append(_spatial(combo))
        if err is None:
            if sized:
                spec.search = {"layer": sized[1], "common": tried, "fits": [_spatial(combo)]}
            return InferResult(spec, None, "")
        if first_err is None:
            first_err, first_spec = err, spec
            if sized and len(per_param) == 1:
                # a flatten -> Linear sized for one input size: bisection finds the sizes
                # that fit; a common one is taken as the input, an odd one is reported
                fits = search_fitting_sizes(model, spec, device)
                common = [f for f in fits or [] if f in sized[0]]
                if common:
                    t = _image_spec(spec)
                    assert t is not None
                    found = _with_size(t, common[0])
                    found.origin = origin
                    found.search = {"layer": sized[1], "common": list(sized[0]), "fits": fits}
                    return InferResult(found, None, "")
                if fits is not None:  # no common size fits
                    first_spec.search = {"layer": sized[1], "common": list(sized[0]), "fits": fits, "exhausted": True}
                    return InferResult(first_spec, first_err, "")
    assert first_spec is not None
    if sized:
        first_spec.search = {"layer": sized[1], "common": tried, "fits": [], "exhausted": True}
    return InferResult(first_spec, first_err, "")


def _spatial(combo: tuple[TensorSpec, ...]) -> int:
    for t in combo:
        if len(t.shape) >= 3 and t.dtype.startswith("float"):
            return t.shape[-1]
    return 0


class _Stop(Exception):
    pass


def _image_spec(spec: InputSpec) -> TensorSpec | None:
    if len(spec.args) != 1 or spec.kwargs or not isinstance(spec.args[0], TensorSpec):
        return None
    t = spec.args[0]
    if len(t.shape) < 3 or not t.dtype.startswith("float"):
        return None
    return t


def _with_size(t: TensorSpec, s: int, batch: int | None = None) -> InputSpec:
    nd = len(t.shape) - 2
    return InputSpec(args=[TensorSpec((batch or t.shape[0], t.shape[1], *([s] * nd)), t.dtype)])


def _arrivals(
    model: nn.Module, spec: InputSpec, device: str, stop_at: str | None = None
) -> tuple[bool, dict[str, tuple]]:
    """Run once; (forward ok, {Linear qualname: shape that arrived}). With ``stop_at``,
    stop as soon as that layer's input is known."""
    seen: dict[str, tuple] = {}
    handles = []

    def hook(mod: nn.Module, args: tuple, q: str) -> None:
        if args and isinstance(args[0], torch.Tensor):
            seen.setdefault(q, tuple(int(d) for d in args[0].shape))
        if q == stop_at:
            raise _Stop()

    for q, m in model.named_modules():
        if isinstance(m, nn.Linear):
            handles.append(m.register_forward_pre_hook(lambda mod, args, q=q: hook(mod, args, q)))
    # eval mode and one sample: shapes do not depend on them, time and BatchNorm's
    # "more than 1 value per channel" do
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        err = try_forward(model, spec, device)
    finally:
        for h in handles:
            h.remove()
        for m, training in modes:
            m.training = training
    return err is None, seen


def search_fitting_sizes(
    model: nn.Module, spec: InputSpec, device: str = "meta", budget_s: float = 3.0, lo: int = 8, hi: int = 512
) -> list[int] | None:
    """For an image-like input whose forward fails at a ``Linear`` (the flatten -> Linear
    pattern): the square input sizes in [lo, hi] that make the whole forward work (None
    when the failure is not of that kind: the caller tries its other sizes). The
    features arriving at that layer grow with the input size, so a bisection finds them
    in ~10 forwards that stop at the layer."""
    t = _image_spec(spec)
    if t is None:
        return None  # not an image-like input: nothing to search
    ok, seen = _arrivals(model, _with_size(t, t.shape[-1], 2), device)
    if ok:
        return [t.shape[-1]]
    mods = dict(model.named_modules())
    bad = next((q for q, shape in seen.items() if shape and shape[-1] != mods[q].in_features), None)
    if bad is None:
        return None  # it failed before any Linear (a view/reshape sized for one input): not searchable
    want = mods[bad].in_features
    end = time.monotonic() + budget_s

    def arriving(s: int) -> int | None:
        _, got = _arrivals(model, _with_size(t, s, 1), device, stop_at=bad)
        shape = got.get(bad)
        return shape[-1] if shape else None

    a, b = lo, hi
    while a < b and time.monotonic() < end:
        mid = (a + b) // 2
        v = arriving(mid)
        if v is None or v < want:
            a = mid + 1
        else:
            b = mid
    fits: list[int] = []
    s = a
    while s <= hi and time.monotonic() < end and len(fits) < 8:
        v = arriving(s)
        if v != want:
            break
        if _arrivals(model, _with_size(t, s, 1), device)[0]:
            fits.append(s)
        s += 1
    return fits


# ---------------------------------------------------------------------------------------
# nnlint_examples()


def examples_from(value: Any) -> list[Example]:
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for i, item in enumerate(items):
        if isinstance(item, Example):
            out.append(item)
        elif isinstance(item, dict):
            out.append(Example.from_dict(item))
        elif hasattr(item, "model") and hasattr(item, "inputs"):
            out.append(Example(**{k: getattr(item, k) for k in EXAMPLE_KEYS if hasattr(item, k)}))
        else:
            raise ValueError(
                f"nnlint_examples()[{i}] is a {type(item).__name__}; expected a dict with keys "
                f"{', '.join(EXAMPLE_KEYS)}"
            )
    return out


# ---------------------------------------------------------------------------------------
# the NN002 message


def declaration_hint(cand: Candidate, path: str, spec: InputSpec | None, batch: int) -> str:
    name = cand.name
    args = cand.kwargs_hint
    inputs = spec.code() if spec is not None else f"torch.randn({batch}, ...)"
    rel = path.replace(os.sep, "/")
    toml_inputs = ""
    if spec is not None and len(spec.args) == 1 and isinstance(spec.args[0], TensorSpec):
        t = spec.args[0]
        toml_inputs = (
            f", inputs = [{{shape = [{', '.join(map(str, t.shape))}]"
            + (f', dtype = "{t.dtype}", high = {int(t.high or 2)}' if not t.dtype.startswith("float") else "")
            + "}]"
        )
    else:
        toml_inputs = f", inputs = [{{shape = [{batch}, ...]}}]"
    kw_toml = ""
    if args:
        kw_toml = ", kwargs = {" + ", ".join(a.replace("=...", " = ...") for a in args.split(", ")) + "}"
    return (
        "declare it in the file (no nnlint import needed):\n"
        f"    def nnlint_examples():\n"
        f"        model = {name}({args})\n"
        f'        return [{{"model": model, "inputs": {inputs}}}]\n'
        f'or in pyproject.toml: [[tool.nnlint.models]] target = "{rel}:{name}"{kw_toml}{toml_inputs}'
    )
