"""Which models compute the same in train and eval mode (NN403): built-in layers without dropout or
BatchNorm, classes of the file (or of a project module beside it) built only from them, and
TorchScript/exported programs."""

from __future__ import annotations

import os

import libcst as cst

from nnlint.analysis.local_imports import imported_class_file
from nnlint.analysis.syntax import arg_expr, has_star
from nnlint.contexts.project import project_context
from nnlint.contexts.source import SourceContext, dotted
from nnlint.vocab import MODE_FREE_MODULES, RNN_CELL_MODULES, RNN_MODULES

from ._loops import Analysis, root, walk

_HARMLESS_BUILTINS = {
    "super",
    "range",
    "len",
    "int",
    "float",
    "list",
    "dict",
    "tuple",
    "isinstance",
    "getattr",
    "setattr",
    "hasattr",
    "zip",
    "enumerate",
    "print",
    "max",
    "min",
    "sum",
    "abs",
    "round",
}


def mode_free(ctx: SourceContext, a: Analysis, model: str) -> bool:
    """``model`` is built in this file from classes of this file whose layers all compute
    the same in train and eval mode (no dropout, no BatchNorm, no `self.training`): then
    eval()/train() changes nothing and there is nothing to report."""
    if not model or "." in model:
        return False
    values = a.values_of(model)
    if not values:
        return False
    memo: dict[str, bool] = {}
    for v in values:
        while (
            isinstance(v, cst.Call)
            and isinstance(v.func, cst.Attribute)
            and v.func.attr.value in ("to", "cuda", "cpu", "float", "double", "half")
        ):
            v = v.func.value
        if isinstance(v, cst.Call) and _builtin_mode_free(ctx, v, memo):
            continue  # model = nn.Linear(10, 2); model = nn.LSTM(8, 16): eval() changes nothing
        if isinstance(v, cst.Call) and _project_class_mode_free(ctx, v):
            continue  # model = Net(...) with `from model import Net`, a file beside this one
        if not (isinstance(v, cst.Call) and isinstance(v.func, cst.Name) and v.func.value in ctx.class_by_name):
            return False
        if not _class_mode_free(ctx, v.func.value, memo):
            return False
    return True


def _project_class_mode_free(ctx: SourceContext, call: cst.Call) -> bool:
    """``call`` builds a class imported from a module of the user's project beside this
    file (read statically, never imported), and that class is mode-free by the same test as
    a class of this file. Classes of other packages are unknown: False."""
    written = dotted(call.func)
    if written is None or written.split(".", 1)[0] not in ctx.aliases or not os.path.isfile(ctx.path):
        return False  # only imported names: a class of this file is judged above
    name = ctx.resolve_dotted(written)
    found = imported_class_file(os.path.dirname(os.path.abspath(ctx.path)), name)
    if found is None:
        return False
    other = project_context(found[0])
    if other is None or found[1] not in other.class_by_name:
        return False
    return _class_mode_free(other, found[1], {})


def _rnn_mode_free(call: cst.Call) -> bool:
    """An nn.RNN/LSTM/GRU without dropout (the argument absent or 0; positional index 5)
    computes the same in train and eval mode."""
    if has_star(call):
        return False
    value = arg_expr(call, 5, "dropout")
    if value is None:
        return True
    return isinstance(value, (cst.Integer, cst.Float)) and float(value.value) == 0.0


def _builtin_mode_free(ctx: SourceContext, call: cst.Call, memo: dict[str, bool]) -> bool:
    """A built-in torch.nn layer (or an nn.Sequential of such layers and of this file's
    mode-free classes) that computes the same in train and eval mode."""
    q = ctx.qualname(call.func) or ""
    if not q.startswith("torch.nn.") or q.startswith(("torch.nn.functional.", "torch.nn.init.")):
        return False
    last = q.rsplit(".", 1)[-1]
    if last in RNN_CELL_MODULES:
        return True
    if last in RNN_MODULES:
        return _rnn_mode_free(call)
    if last == "Sequential":
        for a in call.args:
            v = a.value
            if a.star or not isinstance(v, cst.Call):
                return False
            if isinstance(v.func, cst.Name) and v.func.value in ctx.class_by_name:
                if not _class_mode_free(ctx, v.func.value, memo):
                    return False
            elif not _builtin_mode_free(ctx, v, memo):
                return False
        return True
    return last in MODE_FREE_MODULES and last not in ("ModuleList", "ModuleDict", "Module")


def _class_mode_free(ctx: SourceContext, name: str, memo: dict[str, bool]) -> bool:
    if name in memo:
        return memo[name]
    memo[name] = False  # until proven: a recursive reference is not
    cls = ctx.class_by_name[name]
    for base in cls.bases:
        head, _, rest = base.partition(".")
        q = (ctx.aliases[head] + ("." + rest if rest else "")) if head in ctx.aliases else base
        if q != "torch.nn.Module" and not (base in ctx.class_by_name and _class_mode_free(ctx, base, memo)):
            return False
    for node in walk(cls.node, into_defs=True):
        if isinstance(node, cst.Attribute) and node.attr.value == "training":
            return False
        if not isinstance(node, cst.Call):
            continue
        func = node.func
        q = ctx.qualname(func) or ""
        if q.startswith("torch.nn.functional."):
            if any(w in q for w in ("dropout", "batch_norm", "instance_norm")):
                return False
        elif q.startswith("torch.nn.init.") or (q.startswith("torch.") and not q.startswith("torch.nn.")):
            continue
        elif q.startswith("torch.nn."):
            last = q.rsplit(".", 1)[-1]
            if last in RNN_MODULES:
                if not _rnn_mode_free(node):
                    return False
            elif last not in MODE_FREE_MODULES and last not in RNN_CELL_MODULES:
                return False
        elif isinstance(func, cst.Name):
            if func.value in ctx.class_by_name:
                if not _class_mode_free(ctx, func.value, memo):
                    return False
            elif func.value not in _HARMLESS_BUILTINS:
                return False  # a helper or an imported class: cannot tell
        elif isinstance(func, cst.Attribute) and q.split(".")[0] in ctx.aliases:
            return False  # another library's layer
    memo[name] = True
    return True


def compiled_for_inference(a: Analysis, model: str) -> bool:
    """A TorchScript / exported program keeps the mode it was saved in (eval, as a rule)."""
    for v in a.values_of(root(model)):
        q = a.ctx.qualname(v) if isinstance(v, cst.Call) else None
        if q and q.startswith(("torch.jit.", "torch.export.", "torch._export.")):
            return True
    return False
