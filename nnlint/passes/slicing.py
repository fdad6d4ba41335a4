"""What nnlint runs of a user file: the slice its models need, never the script.

A linter must not train, download or write (issue 11.1). ``slice_file`` keeps, of a file's
module level:

- imports, ``def`` and ``class`` statements, docstrings;
- the assignments that the classes, functions and module-level models read, transitively
  (``sequence_length = 28`` read by ``Net.__init__``; ``img_shape = (1, 28, 28)`` read by
  ``int(np.prod(img_shape))``), when their value is computed by calls known to be free of
  I/O (arithmetic, ``torch.nn`` constructors, the file's own classes, ``argparse`` defaults,
  ``transformers`` configs, ``torchvision.models`` builders without weights ...);
- the in-place set-up of such a value (``parser.add_argument(...)``, ``model.to(device)``,
  ``G.apply(weights_init)``);
- module-level ``if``/``try`` blocks, reduced the same way.

Everything else is dropped: loops, ``with`` blocks, the ``if __name__ == "__main__":`` block,
data sets, loaders, optimizers, ``torch.load``/``torch.save``, calls of the file's own
``train()``. A name bound or changed by dropped code is *unavailable*: a model whose code
reads it is not built (NN002 says which value, at which line, and what to declare), and the
file is never imported whole instead.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, TypeGuard

#: builtins and plain helpers with no I/O
SAFE_NAMES = {
    "int",
    "float",
    "str",
    "bool",
    "tuple",
    "list",
    "dict",
    "set",
    "frozenset",
    "len",
    "range",
    "getattr",
    "min",
    "max",
    "abs",
    "round",
    "sum",
    "sorted",
    "enumerate",
    "zip",
    "isinstance",
    "issubclass",
    "hasattr",
    "reversed",
    "map",
    "filter",
    "any",
    "all",
    "divmod",
    "pow",
    "type",
    "object",
    "slice",
    "complex",
    "bytes",
    "super",
    "property",
    "staticmethod",
    "classmethod",
    "iter",
    "next",
    "repr",
    "chr",
    "ord",
    "hash",
    "id",
    "Path",
    "namedtuple",
    "TypeVar",
    "field",
    "partial",
    "OrderedDict",
    "defaultdict",
    "deque",
    "Counter",
}
#: fully qualified callables with no I/O (after resolving the file's import aliases)
SAFE_QUALIFIED = {
    "os.path.join",
    "os.path.dirname",
    "os.path.abspath",
    "os.path.basename",
    "os.path.splitext",
    "os.path.expanduser",
    "os.environ.get",
    "os.getenv",
    "pathlib.Path",
    "collections.namedtuple",
    "collections.OrderedDict",
    "collections.defaultdict",
    "typing.TypeVar",
    "typing.NamedTuple",
    "dataclasses.field",
    "dataclasses.dataclass",
    "functools.partial",
    "re.compile",
    "logging.getLogger",
    "argparse.ArgumentParser",
    "argparse.Namespace",
    "types.SimpleNamespace",
    "enum.Enum",
    "torch.device",
    "torch.cuda.is_available",
    "torch.backends.mps.is_available",
    "torch.Size",
    "torch.get_default_dtype",
    "torch.manual_seed",
    "torch.randn",
    "torch.rand",
    "torch.zeros",
    "torch.ones",
    "torch.empty",
    "torch.randint",
    "torch.full",
    "torch.arange",
    "torch.tensor",
    "torch.linspace",
    "torch.eye",
    "torch.Tensor",
    "torch.FloatTensor",
    "torch.LongTensor",
    "torch.cuda.device_count",
    "numpy.prod",
    "numpy.sqrt",
    "numpy.log",
    "numpy.log2",
    "numpy.exp",
    "numpy.ceil",
    "numpy.floor",
    "numpy.array",
    "numpy.zeros",
    "numpy.ones",
    "numpy.arange",
    "numpy.float32",
    "numpy.int64",
    "numpy.random.seed",
    "random.seed",
    "timm.create_model",
}
SAFE_PREFIXES = ("math.", "torch.nn.", "torch.distributions.", "operator.", "string.", "typing.", "ml_collections.")
#: methods that are pure, or set up a value in place without I/O
SAFE_METHODS = {
    "to",
    "cpu",
    "float",
    "double",
    "half",
    "bfloat16",
    "eval",
    "train",
    "requires_grad_",
    "apply",
    "parameters",
    "named_parameters",
    "modules",
    "children",
    "numel",
    "size",
    "dim",
    "view",
    "reshape",
    "format",
    "join",
    "split",
    "strip",
    "upper",
    "lower",
    "replace",
    "get",
    "items",
    "keys",
    "values",
    "copy",
    "add_argument",
    "add_argument_group",
    "add_mutually_exclusive_group",
    "set_defaults",
    "parse_args",
    "parse_known_args",
    "append",
    "extend",
    "insert",
    "update",
    "setdefault",
    "add_module",
    "register_buffer",
    "zero_",
    "from_config",
    "from_dict",
    "to_dict",
    "index",
    "count",
    "startswith",
    "endswith",
    "item",
    "tolist",
    "unsqueeze",
    "squeeze",
    "expand",
    "repeat",
    "permute",
    "transpose",
    "contiguous",
    "long",
    "int",
    "bool",
}
#: methods whose call on the value means I/O or training, never kept
UNSAFE_METHODS = {
    "from_pretrained",
    "load_state_dict",
    "cuda",
    "fit",
    "save_pretrained",
    "push_to_hub",
    "backward",
    "step",
    "download",
}
#: argument names that make a model builder fetch weights
WEIGHT_KWARGS = {"pretrained", "weights", "pretrained_backbone", "weights_backbone", "progress_download"}
#: names of the file's functions that do work when called at module level
WORK_FUNCTIONS = {
    "main",
    "train",
    "test",
    "evaluate",
    "validate",
    "run",
    "fit",
    "predict",
    "download",
    "sample",
    "generate",
    "inference",
    "demo",
    "save",
    "load",
}
#: calls that, anywhere in a function the slice would call, mean I/O
IO_CALLS = {
    "open",
    "torch.load",
    "torch.save",
    "torch.hub.load",
    "urllib.request.urlretrieve",
    "requests.get",
    "numpy.load",
    "numpy.save",
    "pickle.load",
    "pickle.dump",
    "os.makedirs",
    "os.mkdir",
    "os.remove",
    "shutil.rmtree",
    "input",
    "exec",
    "eval",
    "subprocess.run",
    "subprocess.Popen",
    "os.system",
}


@dataclass
class Slice:
    """The reduced module body and what it leaves out."""

    body: list[ast.stmt]
    #: module-level names the slice does not compute -> (line, why)
    unavailable: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: lines of the module-level statements dropped (the script's work)
    dropped_lines: list[int] = field(default_factory=list)
    #: whether anything was dropped at all
    reduced: bool = False
    #: module-level names bound to a model (``model = Net()``, ``G = nn.Sequential(...)``):
    #: name -> (line, the called name)
    instances: dict[str, tuple[int, str]] = field(default_factory=dict)

    def missing_for(self, names: set[str]) -> list[tuple[str, int, str]]:
        return sorted(((n, *self.unavailable[n]) for n in names if n in self.unavailable), key=lambda t: t[1])


def dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def import_aliases(body: list[ast.stmt]) -> dict[str, str]:
    """Local name -> qualified name for the module-level imports (also inside if/try)."""
    out: dict[str, str] = {}
    for node in _module_level(body):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = a.name
                else:
                    out[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    out = {k: ("numpy" + v[2:] if v == "np" or v.startswith("np.") else v) for k, v in out.items()}
    return out


def _module_level(body: list[ast.stmt]):
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If) and not is_main_guard(stmt):
            yield from _module_level(stmt.body + stmt.orelse)
        elif isinstance(stmt, ast.Try):
            yield from _module_level(
                stmt.body + [s for h in stmt.handlers for s in h.body] + stmt.orelse + stmt.finalbody
            )


def is_main_guard(stmt: ast.stmt) -> bool:
    t = stmt.test if isinstance(stmt, ast.If) else None
    if isinstance(t, ast.Compare) and len(t.comparators) == 1:
        a, b = t.left, t.comparators[0]
        for x, y in ((a, b), (b, a)):
            if isinstance(x, ast.Name) and x.id == "__name__" and isinstance(y, ast.Constant) and y.value == "__main__":
                return True
    return False


def free_names(node: ast.AST, local: frozenset[str] = frozenset()) -> set[str]:
    """Names ``node`` reads that are not local to a function or comprehension around the read."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = node.args
        params = {p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if p is not None}
        body = node.body if isinstance(node.body, list) else [node.body]
        stores = {n.id for b in body for n in ast.walk(b) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        stores |= {
            n.name
            for b in body
            for n in ast.walk(b)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        }
        stores |= {
            (al.asname or al.name).split(".")[0]
            for b in body
            for n in ast.walk(b)
            if isinstance(n, (ast.Import, ast.ImportFrom))
            for al in n.names
        }
        globs = {g for b in body for n in ast.walk(b) if isinstance(n, ast.Global) for g in n.names}
        inner = local | params | (stores - globs)
        out: set[str] = set()
        for d in (
            *a.defaults,
            *a.kw_defaults,
            *getattr(node, "decorator_list", []),
            *([returns] if (returns := getattr(node, "returns", None)) is not None else []),
        ):
            if d is not None:
                out |= free_names(d, local)
        for b in body:
            out |= free_names(b, inner)
        return out
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        targets = {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
        inner = local | targets
        out = set()
        for i, g in enumerate(node.generators):
            out |= free_names(g.iter, local if i == 0 else inner)
            for cond in g.ifs:
                out |= free_names(cond, inner)
        elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        for e in elts:
            out |= free_names(e, inner)
        return out
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) and node.id not in local else set()
    out = set()
    for child in ast.iter_child_nodes(node):
        out |= free_names(child, local)
    return out


def stores(stmt: ast.stmt) -> set[str]:
    """Module-level names ``stmt`` binds (not inside its functions or classes)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    out = set()
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update((a.asname or a.name).split(".")[0] for a in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return out


#: methods that read their object and change nothing
READONLY_METHODS = {
    "state_dict",
    "parameters",
    "named_parameters",
    "modules",
    "named_modules",
    "children",
    "named_children",
    "buffers",
    "size",
    "dim",
    "numel",
    "item",
    "tolist",
    "format",
    "keys",
    "values",
    "items",
    "get",
    "count",
    "index",
    "startswith",
    "endswith",
    "join",
    "split",
    "strip",
    "copy",
    "detach",
    "clone",
    "numpy",
    "view",
    "reshape",
    "forward",
    "__call__",
}


def mutated(stmt: ast.stmt) -> set[str]:
    """Module-level names whose object ``stmt`` changes in place: ``X[k] = v``, ``X.a = 1``,
    ``X.append(...)``, ``X.load_state_dict(...)``, ``X.to(device)``."""
    out = set()
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        root = None
        if isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            root = node.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr not in READONLY_METHODS
        ):
            root = node.func.value
        while isinstance(root, (ast.Attribute, ast.Subscript)):
            root = root.value  # Net().to(device): a method of a call's result changes nothing bound
        if isinstance(root, ast.Name):
            out.add(root.id)
        stack.extend(ast.iter_child_nodes(node))
    return out


class Judge:
    """Decides whether an expression may be evaluated by the linter."""

    def __init__(self, body: list[ast.stmt]) -> None:
        self.body = body
        self.aliases = import_aliases(body)
        self.classes = {n.name for n in body if isinstance(n, ast.ClassDef)}
        self.functions = {n.name: n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        self._fn_ok: dict[str, bool] = {}
        self.instances: set[str] = set()  # module-level names bound to a model (model = Net())
        self.defs = {n.name: n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        self._closure: dict[str, set[str]] = {}

    def deep_reads(self, node: ast.AST) -> set[str]:
        """What ``node`` reads, also through the file's classes and functions it names."""
        out = set(free_names(node))
        for name in list(out):
            if name in self.defs:
                out |= self.closure(name)
        return out

    def closure(self, name: str) -> set[str]:
        if name not in self._closure:
            self._closure[name] = set()  # recursion guard
            self._closure[name] = names_needed_by(self.body, [self.defs[name]])
        return self._closure[name]

    def qualify(self, name: str) -> str:
        head, _, rest = name.partition(".")
        full = self.aliases.get(head)
        if full is None:
            return name
        return f"{full}.{rest}" if rest else full

    def why_unsafe(self, node: ast.AST) -> str | None:
        """None when every call in ``node`` (lambda bodies aside) is free of I/O, else the call."""
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, ast.Lambda):
                continue
            if isinstance(n, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
                return type(n).__name__.lower()
            if isinstance(n, ast.Call):
                why = self._call(n)
                if why:
                    return why
            stack.extend(ast.iter_child_nodes(n))
        return None

    def _call(self, call: ast.Call) -> str | None:
        func = call.func
        name = dotted(func)
        label = f"{name or ast.unparse(func)}()"
        for k in call.keywords:
            if k.arg in WEIGHT_KWARGS and not (isinstance(k.value, ast.Constant) and k.value.value in (None, False)):
                return f"{label} with {k.arg}= (downloads weights)"
        if name is None:
            if isinstance(func, ast.Attribute):
                return None if func.attr in SAFE_METHODS and func.attr not in UNSAFE_METHODS else label
            if isinstance(func, ast.Call):
                return None  # Net()(x): the inner call is judged on its own
            return label
        head = name.split(".")[0]
        if isinstance(func, ast.Attribute) and func.attr in UNSAFE_METHODS:
            return label
        if name in self.classes or head in self.classes:
            return None  # the file's own classes (constructors, class methods)
        if name in self.functions:
            return None if self.function_ok(name) else f"{name}() (does work when called)"
        if head in self.aliases:
            full = self.qualify(name)
            if full in SAFE_QUALIFIED or full.startswith(SAFE_PREFIXES):
                return None
            parts = full.split(".")
            if parts[0] == "transformers":
                if "from_pretrained" in parts:
                    return label
                return None  # configs, model classes built from a config, .from_config
            if parts[0] == "torchvision" and len(parts) >= 3 and parts[1] == "models":
                return None  # a model builder without weights (weights= was checked above)
            if full in SAFE_NAMES:
                return None
            return label
        if head in SAFE_NAMES and "." not in name:
            return None
        if isinstance(func, ast.Attribute):
            # a method of a module-level value: judged by the method
            return None if func.attr in SAFE_METHODS else label
        return label

    def function_ok(self, name: str) -> bool:
        """A file function may be called by the slice when nothing in it does I/O or work."""
        if name in self._fn_ok:
            return self._fn_ok[name]
        self._fn_ok[name] = False  # recursion: not proven
        fn = self.functions[name]
        ok = name.lower() not in WORK_FUNCTIONS and not name.lower().startswith(
            ("train", "test", "eval", "load", "save", "download", "main")
        )
        if ok:
            for n in ast.walk(fn):
                if isinstance(n, (ast.For, ast.While)) and _iterates_data(n):
                    ok = False
                    break
                if isinstance(n, ast.Call):
                    callee = dotted(n.func)
                    full = self.qualify(callee) if callee else None
                    if full in IO_CALLS or callee in IO_CALLS:
                        ok = False
                        break
                    if isinstance(n.func, ast.Attribute) and n.func.attr in UNSAFE_METHODS:
                        ok = False
                        break
                    if any(
                        k.arg in WEIGHT_KWARGS
                        and not (isinstance(k.value, ast.Constant) and k.value.value in (None, False))
                        for k in n.keywords
                    ):
                        ok = False
                        break
                    if callee in self.functions and callee != name and not self.function_ok(callee):
                        ok = False
                        break
        self._fn_ok[name] = ok
        return ok


def _iterates_data(loop: ast.For | ast.While) -> bool:
    """A loop over something that is not a range/literal: an epoch or data loop."""
    if isinstance(loop, ast.While):
        return True
    it = loop.iter
    if isinstance(it, ast.Call) and dotted(it.func) in ("range", "enumerate", "zip", "reversed", "sorted", "list"):
        return any(_iterates_data_expr(a) for a in it.args)
    return _iterates_data_expr(it)


def _iterates_data_expr(node: ast.AST) -> bool:
    text = ast.unparse(node).lower()
    return any(w in text for w in ("loader", "dataset", "data_iter", "batches", "epoch"))


def _is_work_expr(stmt: ast.stmt) -> TypeGuard[ast.Expr]:
    return isinstance(stmt, ast.Expr) and not isinstance(stmt.value, ast.Constant)


def slice_body(body: list[ast.stmt]) -> Slice:
    """The statements of ``body`` (a module) that the models need; see the module docstring."""
    judge = Judge(body)
    # 1. what the definitions and module-level models need, transitively
    defs = [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    needed: set[str] = set()
    found_instances: dict[str, tuple[int, str]] = {}
    for d in defs:
        needed |= free_names(d)
    flat = [s for s in _module_level(body) if not isinstance(s, (ast.If, ast.Try))]
    for s in flat:
        if isinstance(s, (ast.Assign, ast.AnnAssign)) and s.value is not None and model_like(s.value, judge):
            needed |= stores(s)
            judge.instances |= stores(s)
            call = s.value
            while (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr in ("to", "float", "double", "eval", "train", "cpu")
            ):
                call = call.func.value
            for n in stores(s):
                found_instances.setdefault(
                    n, (s.lineno, (dotted(call.func) or "?") if isinstance(call, ast.Call) else "?")
                )
    changed = True
    while changed:
        changed = False
        for s in flat:
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
                continue
            if (stores(s) | (mutated(s) - set(judge.aliases))) & needed:
                extra = free_names(s) - needed
                if extra:
                    needed |= extra
                    changed = True
    out = Slice(body=[])
    tainted: dict[str, tuple[int, str]] = {}
    out.body = _reduce(body, judge, needed, tainted, out)
    out.unavailable = tainted
    out.instances = found_instances
    return out


def model_like(value: ast.expr, judge: Judge) -> bool:
    """``Net(...)``, ``nn.Sequential(...)``, ``resnet18()``, ``AutoModel.from_config(cfg)``, ``Net().to(device)``."""
    node = value
    while (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("to", "float", "double", "eval", "train", "cpu")
    ):
        node = node.func.value
    if not isinstance(node, ast.Call):
        return False
    name = dotted(node.func)
    if not name:
        return False
    if name in judge.classes:
        return True
    full = judge.qualify(name)
    last = full.split(".")[-1]
    if full.startswith("torch.nn.") and last[:1].isupper():
        return True
    if full.startswith("transformers.") and "Model" in full and last in ("from_pretrained", "from_config"):
        return True  # reported (NN002) when it downloads, built when it does not
    if full in ("torch.hub.load", "timm.create_model"):
        return True
    if full.startswith("transformers.") and (
        last == "from_config"
        or last[:1].isupper()
        and not last.endswith(
            ("Config", "Tokenizer", "TokenizerFast", "Processor", "FeatureExtractor", "Arguments", "Trainer")
        )
    ):
        return True
    if full.startswith(("torchvision.models.", "timm.create_model")):
        return True
    return False


def _reduce(
    body: list[ast.stmt], judge: Judge, needed: set[str], tainted: dict[str, tuple[int, str]], out: Slice
) -> list[ast.stmt]:
    kept: list[ast.stmt] = []
    for stmt in body:
        line = getattr(stmt, "lineno", 0)
        if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal, ast.Pass)):
            kept.append(stmt)
            for n in stores(stmt):
                tainted.pop(n, None)
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            kept.append(stmt)
            continue
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            # a definition is always kept (its decorators too: @MODELS.register_module() is how
            # a class is defined), unless it reads, when defined, a value the slice does not compute
            bad = sorted(_deftime_reads(stmt) & set(tainted))
            if bad:
                out.reduced = True
                out.dropped_lines.append(line)
                tainted[stmt.name] = (line, f"its definition reads {bad[0]}, which is not computed")
                continue
            kept.append(stmt)
            tainted.pop(stmt.name, None)
            continue
        if isinstance(stmt, ast.If):
            if is_main_guard(stmt):
                out.reduced = True
                out.dropped_lines.append(line)
                continue
            why = judge.why_unsafe(stmt.test)
            if why is None and not (free_names(stmt.test) & set(tainted)):
                stmt.body = _reduce(stmt.body, judge, needed, tainted, out) or [ast.copy_location(ast.Pass(), stmt)]
                stmt.orelse = _reduce(stmt.orelse, judge, needed, tainted, out)
                kept.append(stmt)
            else:
                _drop(
                    stmt,
                    tainted,
                    out,
                    f"set in an `if` block nnlint does not run ({why or 'its test reads a value not computed'})",
                    judge,
                )
            continue
        if isinstance(stmt, ast.Try):
            stmt.body = _reduce(stmt.body, judge, needed, tainted, out) or [ast.copy_location(ast.Pass(), stmt)]
            for h in stmt.handlers:
                h.body = _reduce(h.body, judge, needed, tainted, out) or [ast.copy_location(ast.Pass(), h)]
            stmt.orelse = _reduce(stmt.orelse, judge, needed, tainted, out)
            stmt.finalbody = _reduce(stmt.finalbody, judge, needed, tainted, out)
            kept.append(stmt)
            continue
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) or _is_work_expr(stmt):
            changed = mutated(stmt) - set(judge.aliases)  # torch.manual_seed(0) changes no name of the file
            targets = changed if isinstance(stmt, ast.Expr) else stores(stmt) | changed
            value = stmt.value
            if value is None:  # a bare annotation
                kept.append(stmt)
                continue
            if (
                isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Call)
                and isinstance(stmt.value.func, ast.Attribute)
                and stmt.value.func.attr in ("eval", "train", "zero_grad")
            ):
                out.reduced = True  # the script's mode switches: nnlint sets the mode itself
                out.dropped_lines.append(line)
                continue
            if not targets & needed and not _is_sys_path(stmt, judge):
                _drop(stmt, tainted, out, "computed by the script, which nnlint does not run", judge)
                continue
            why = judge.why_unsafe(stmt)
            # what the statement reads, also through the file's classes and functions it calls
            # (model = CharRNN() runs CharRNN.__init__, which reads vocab_size)
            reads = judge.deep_reads(stmt) & set(tainted)
            if isinstance(stmt, ast.Expr):
                reads -= targets  # X.add_argument(...) on an X that is itself unavailable: X stays so
            if why is None and not reads and not (isinstance(stmt, ast.Expr) and targets & set(tainted)):
                kept.append(stmt)
                for n in stores(stmt):
                    tainted.pop(n, None)
                continue
            if why is not None:
                reason = f"computed by {why}, which nnlint does not run"
            elif reads:
                dep = sorted(reads)[0]
                reason = f"computed from {dep} (line {tainted[dep][0]}), which is not computed"
            else:  # G.apply(init) on a G that is itself not computed: G stays so
                dep = sorted(targets & set(tainted))[0]
                reason = f"changes {dep} (line {tainted[dep][0]}), which is not computed"
            _drop(stmt, tainted, out, reason, judge)
            continue
        # loops, with blocks, del, raise, assert, match ...: the script's work
        what = {
            ast.For: "a `for` loop",
            ast.AsyncFor: "a `for` loop",
            ast.While: "a `while` loop",
            ast.With: "a `with` block",
            ast.AsyncWith: "a `with` block",
        }.get(type(stmt), "module-level code")
        _drop(stmt, tainted, out, f"set or changed in {what} nnlint does not run", judge)
    return kept


def _deftime_reads(stmt: ast.stmt) -> set[str]:
    """Names a ``def``/``class`` statement reads when it runs (decorators, bases, defaults,
    a class body's own statements), not when its functions are called."""
    out: set[str] = set()
    for d in getattr(stmt, "decorator_list", []):
        out |= free_names(d)
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        for d in (*stmt.args.defaults, *stmt.args.kw_defaults):
            if d is not None:
                out |= free_names(d)
    elif isinstance(stmt, ast.ClassDef):
        for b in [*stmt.bases, *(k.value for k in stmt.keywords)]:
            out |= free_names(b)
        local: set[str] = set()
        for s in stmt.body:
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out |= _deftime_reads(s) - local
                local.add(s.name)
            else:
                out |= free_names(s) - local
                local |= stores(s)
    return out


def _drop(
    stmt: ast.stmt, tainted: dict[str, tuple[int, str]], out: Slice, reason: str, judge: Judge | None = None
) -> None:
    """Drop ``stmt``: the names it binds are not computed; the objects it changes in place
    are not what the script would make of them (a registry filled in a loop), except
    imported modules and module-level models (a training loop changes a model's weights:
    nnlint checks the model as built)."""
    out.reduced = True
    out.dropped_lines.append(getattr(stmt, "lineno", 0))
    keep_as_built = set(judge.aliases) | judge.instances if judge is not None else set()
    for n in stores(stmt) | (mutated(stmt) - keep_as_built):
        if n not in tainted:
            tainted[n] = (getattr(stmt, "lineno", 0), reason)


def _is_sys_path(stmt: ast.stmt, judge: Judge) -> bool:
    """``sys.path.insert(0, ...)``/``append``: how the file finds its own imports."""
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        name = dotted(stmt.value.func) or ""
        return (
            judge.qualify(name) in ("sys.path.insert", "sys.path.append")
            and judge.why_unsafe(ast.Tuple(elts=list(stmt.value.args), ctx=ast.Load())) is None
        )
    return False


def slice_file(text: str, filename: str) -> Slice | None:
    try:
        tree = ast.parse(text, filename)
    except (SyntaxError, ValueError):
        return None
    return slice_body(tree.body)


def names_needed_by(tree_body: list[ast.stmt], roots: list[ast.AST]) -> set[str]:
    """Module-level names ``roots`` read, through the file's functions and classes, transitively."""
    defs = {n.name: n for n in tree_body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    todo = list(roots)
    seen: set[int] = set()
    names: set[str] = set()
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for name in free_names(node):
            names.add(name)
            if name in defs:
                todo.append(defs[name])
    return names


def compile_slice(sl: Slice, filename: str) -> Any:
    module = ast.Module(body=sl.body, type_ignores=[])
    ast.fix_missing_locations(module)
    return compile(module, filename, "exec", dont_inherit=True)
