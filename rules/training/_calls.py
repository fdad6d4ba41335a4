"""What a name or a call in a training script is: the walker, name helpers and call classification.

Shared by the NN4 rules and their analysis (rules/training/_loops.py); torch-free, no state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TypeVar, overload

import libcst as cst

from nnlint.analysis.syntax import call_arg, short_expr
from nnlint.contexts.source import SourceContext, child_nodes, dotted
from nnlint.vocab import NO_GRAD_CONTEXTS, SET_GRAD_ENABLED

_DEFS = frozenset({cst.FunctionDef, cst.ClassDef, cst.Lambda})
_LOOPS = frozenset({cst.For, cst.While})


_N = TypeVar("_N", bound=cst.CSTNode)


# typed like isinstance(): walk(body, cst.Call) yields Calls
@overload
def walk(
    node: cst.CSTNode, kind: None = None, *, into_defs: bool = False, into_loops: bool = True
) -> Iterator[cst.CSTNode]: ...
@overload
def walk(node: cst.CSTNode, kind: type[_N], *, into_defs: bool = False, into_loops: bool = True) -> Iterator[_N]: ...
def walk(
    node: cst.CSTNode, kind: type | None = None, *, into_defs: bool = False, into_loops: bool = True
) -> Iterator[cst.CSTNode]:
    """Descendants of ``node`` (not ``node`` itself) in source order, optionally only of
    the concrete node type ``kind``. Nested defs/lambdas are not entered unless
    ``into_defs``; nested loops are yielded but not entered when ``into_loops`` is False."""
    stack = list(reversed(child_nodes(node)))
    while stack:
        n = stack.pop()
        t = type(n)
        if kind is None or t is kind:
            yield n
        if (not into_defs and t in _DEFS) or (not into_loops and t in _LOOPS):
            continue
        stack.extend(reversed(child_nodes(n)))


#: wrappers around an iterable that keep its meaning: enumerate(loader), tqdm(loader)
ITER_WRAPPERS = {
    "enumerate",
    "tqdm",
    "zip",
    "iter",
    "islice",
    "itertools.islice",
    "tqdm.tqdm",
    "tqdm.auto.tqdm",
    "track",
    "rich.progress.track",
}


# small helpers ---------------------------------------------------------------------------
def last_part(name: str | None) -> str:
    return name.rsplit(".", 1)[-1] if name else ""


def method_name(call: cst.Call) -> str | None:
    return call.func.attr.value if isinstance(call.func, cst.Attribute) else None


def receiver(call: cst.Call) -> cst.BaseExpression | None:
    return call.func.value if isinstance(call.func, cst.Attribute) else None


def receiver_name(call: cst.Call) -> str | None:
    """Dotted name of what a method is called on: ``self.opt`` for ``self.opt.step()``,
    ``optimizers`` for ``optimizers[0].step()``."""
    recv = receiver(call)
    if isinstance(recv, cst.Subscript):
        recv = recv.value
    return dotted(recv) if recv is not None else None


def root(name: str) -> str:
    """``self.model`` -> ``self.model``; ``model.module`` -> ``model``."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "self" and len(parts) > 1 else parts[0]


def snake(name: str) -> str:
    """``trainDataset`` -> ``train_dataset`` (for token checks on user names)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def literal_bool(expr: cst.BaseExpression) -> bool | None:
    if isinstance(expr, cst.Name) and expr.value in ("True", "False"):
        return expr.value == "True"
    if isinstance(expr, cst.Integer) and expr.value in ("0", "1"):
        return expr.value == "1"
    return None


def unsigned_number(expr: cst.BaseExpression) -> float | None:
    """The value of an unsigned numeric literal (``0.1``, ``1e-3``, ``2``), else None
    (``syntax.number`` also reads signs)."""
    if isinstance(expr, cst.Float):
        return float(expr.value.replace("_", ""))
    if isinstance(expr, cst.Integer):
        try:
            return float(int(expr.value.replace("_", ""), 0))
        except ValueError:
            return None
    return None


def names_in(expr: cst.CSTNode) -> Iterator[str]:
    """Dotted names an expression reads (``loss`` and ``out.loss`` in
    ``scaler.scale(loss + out.loss)``); a call's callee is not a read."""
    stack = [expr]
    while stack:
        n = stack.pop()
        d = dotted(n) if isinstance(n, (cst.Name, cst.Attribute)) else None
        if d is not None:
            yield d
            if isinstance(n, cst.Attribute):
                yield from (x for x in [root(d)] if x != d)
            continue
        if isinstance(n, cst.Call):
            stack.extend(a.value for a in n.args)
            if isinstance(n.func, cst.Attribute):
                stack.append(n.func.value)  # method on a value: loss.mean()
            continue
        if isinstance(n, (cst.Lambda, cst.FunctionDef, cst.ClassDef)):
            continue
        stack.extend(child_nodes(n))


def short(ctx: SourceContext, node: cst.CSTNode, limit: int = 60) -> str:
    """How the training-script messages quote code: ``short_expr`` with room for 60 characters."""
    return short_expr(ctx, node, limit)


# call classification ---------------------------------------------------------------------
def is_backward(ctx: SourceContext, call: cst.Call) -> bool:
    m = method_name(call)
    if m in ("backward", "manual_backward"):
        return True
    return ctx.qualname(call) == "torch.autograd.backward"


def is_zero_grad(call: cst.Call) -> bool:
    m = method_name(call)
    name = last_part(dotted(call.func)).lower()
    if m == "zero_grad" or "zero_grad" in name or "clear_grad" in name or "reset_grad" in name:
        return True
    if m in ("zero_", "detach_", "fill_"):
        recv = receiver_name(call) or ""
        return recv.endswith(".grad") or recv.endswith(".grad.data")
    return False


def is_grad_reset(node: cst.CSTNode) -> bool:
    """``p.grad = None`` / ``p.grad = torch.zeros_like(p)``."""
    if not isinstance(node, cst.Assign):
        return False
    if not any(isinstance(t.target, cst.Attribute) and t.target.attr.value == "grad" for t in node.targets):
        return False
    v = node.value
    if isinstance(v, cst.Name) and v.value == "None":
        return True
    return isinstance(v, cst.Call) and last_part(dotted(v.func)) in ("zeros_like", "zeros")


def is_clip(ctx: SourceContext, call: cst.Call) -> bool:
    q = ctx.qualname(call) or ""
    return last_part(q) in ("clip_grad_norm_", "clip_grad_value_", "clip_grad_norm", "clip_grad_value")


def eval_subject(call: cst.Call) -> str | None:
    """'' for a model switched to eval mode whose name we cannot tell; the dotted name
    when we can; None when ``call`` is not ``X.eval()`` / ``X.train(False)``."""
    m = method_name(call)
    if m == "eval" and not call.args:
        return receiver_name(call) or ""
    if m == "train":
        mode = call_arg(call, 0, "mode")
        if mode is not None and literal_bool(mode.value) is False:
            return receiver_name(call) or ""
    return None


def is_train_mode(call: cst.Call) -> bool:
    if method_name(call) != "train":
        return False
    mode = call_arg(call, 0, "mode")
    return mode is None or literal_bool(mode.value) is not False


def optimizer_name(call: cst.Call) -> str:
    """The optimizer a step call steps: ``opt`` for ``opt.step()`` and for
    ``scaler.step(opt)`` / ``xm.optimizer_step(opt)``."""
    name = receiver_name(call) or ""
    if (method_name(call) == "optimizer_step" or "scaler" in name.lower()) and call.args:
        return dotted(call.args[0].value) or "optimizer"
    return name or "optimizer"


def is_no_grad_item(ctx: SourceContext, expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.Call):
        q = ctx.qualname(expr)
        if q in NO_GRAD_CONTEXTS:
            return True
        if q in SET_GRAD_ENABLED:
            mode = call_arg(expr, 0, "mode")
            return mode is not None and literal_bool(mode.value) is False
        return False
    return ctx.qualname(expr) in NO_GRAD_CONTEXTS  # @torch.no_grad without parentheses


def is_eval_function_name(name: str) -> bool:
    n = name.lower().lstrip("_")
    if n.startswith("test_") or n.endswith("_step") or n.startswith("on_"):
        return False  # pytest tests; Lightning hooks (the Trainer switches modes itself)
    if n in {
        "validate",
        "validation",
        "evaluate",
        "evaluation",
        "eval",
        "test",
        "val",
        "valid",
        "run_eval",
        "run_validation",
    }:
        return True
    return n.startswith(("eval_", "evaluate_", "validate_", "val_", "valid_", "validation_")) or n.endswith(
        ("_eval", "_evaluate", "_evaluation", "_validate", "_validation")
    )


def unwrap_iter(ctx: SourceContext, expr: cst.BaseExpression) -> list[cst.BaseExpression]:
    """``enumerate(tqdm(loader))`` -> [loader]; ``zip(a, b)`` -> [a, b]."""
    out = []
    stack = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, cst.Call) and (dotted(e.func) in ITER_WRAPPERS or (ctx.qualname(e) or "") in ITER_WRAPPERS):
            positional = [a.value for a in e.args if a.keyword is None and not a.star]
            if dotted(e.func) == "zip":
                stack.extend(reversed(positional))
            elif positional:
                stack.append(positional[0])
            continue
        out.append(e)
    return out
