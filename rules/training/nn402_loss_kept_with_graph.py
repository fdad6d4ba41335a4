from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import libcst as cst

from nnlint import fixes
from nnlint.analysis.syntax import line_of
from nnlint.contexts.source import FunctionInfo, SourceContext, dotted
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

from ._calls import is_backward, last_part, method_name, names_in, receiver_name, root, short
from ._loops import Analysis, analysis, iter_statements

FUNCTIONAL_LOSSES = {
    "cross_entropy",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
    "mse_loss",
    "l1_loss",
    "nll_loss",
    "smooth_l1_loss",
    "huber_loss",
    "ctc_loss",
    "margin_ranking_loss",
    "cosine_embedding_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
    "poisson_nll_loss",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "multilabel_margin_loss",
    "soft_margin_loss",
    "multi_margin_loss",
    "multilabel_soft_margin_loss",
}
CRITERION_NAMES = ("criterion", "loss_fn", "loss_func", "lossfn", "loss_function", "loss_fct")
#: methods and functions whose result no longer references the autograd graph
DETACHING_METHODS = {"item", "detach", "detach_", "tolist", "numpy"}
DETACHING_FUNCS = {"float", "int", "round", "str", "len"}


@dataclass
class _Scope:
    backward_lines: dict[str, cst.CSTNode] = field(default_factory=dict)  # name -> backward call
    loss_calls: dict[str, cst.CSTNode] = field(default_factory=dict)  # name -> assignment from a loss call
    losses: set[str] = field(default_factory=set)
    feeds_backward: set[str] = field(default_factory=set)
    returned: set[str] = field(default_factory=set)


class LossKeptWithGraph(SourceRule):
    """## What it does
    Flags a loss tensor added to a running total or appended to a list inside a loop
    (`total_loss += loss`, `losses.append(loss)`) without `.item()` or `.detach()`, when the
    loss still carries its autograd graph (it came from a criterion, or `.backward()` is
    called on it) and the loop is not under `torch.no_grad()`.

    ## Why is this bad?
    A loss tensor references the whole graph that produced it. `total_loss += loss` makes
    `total_loss` a tensor whose history holds every iteration's graph, so nothing is freed:
    memory grows every step until the run dies with "CUDA out of memory", usually hours in.

    ## Example
    ```python
    total_loss = 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total_loss += loss
    ```

    ## Use instead
    ```python
        total_loss += loss.item()      # a Python float
        # or: losses.append(loss.detach())
    ```

    ## References
    - PyTorch FAQ, "My model reports 'cuda runtime error(2): out of memory'" — "Don't
      accumulate history across your training loop"
      (https://pytorch.org/docs/stable/notes/faq.html).
    - PyTorch FAQ, "Why does my memory grow" / `Tensor.item()` and `Tensor.detach()` docs.
    """

    code = "NN402"
    name = "loss-kept-with-graph"
    severity = Severity.WARNING
    fix_applicability = "safe"
    fix_summary = "accumulate `loss.item()`"

    VALID = [
        Valid(
            """
            total = 0.0
            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                optimizer.step()
                total += loss.item()
            """,
            note=".item()",
        ),
        Valid(
            """
            losses = []
            for x, y in train_loader:
                loss = criterion(model(x), y)
                loss.backward()
                losses.append(loss.detach())
                history.append(float(loss))
            """,
            note="detach() / float()",
        ),
        Valid(
            """
            import torch
            import torch.nn.functional as F

            def evaluate(model, loader):
                total = 0
                with torch.no_grad():
                    for x, y in loader:
                        loss = F.cross_entropy(model(x), y)
                        total += loss
                return total / len(loader)
            """,
            note="accumulated under torch.no_grad(): no graph",
        ),
        Valid(
            """
            import torch

            @torch.inference_mode()
            def evaluate(model, loader):
                losses = []
                for x, y in loader:
                    losses.append(criterion(model(x), y))
                    loss = criterion(model(x), y)
                    losses.append(loss)
                return losses
            """,
            note="decorated with inference_mode",
        ),
        Valid(
            """
            for i, (x, y) in enumerate(loader):
                loss = criterion(model(x), y)
                loss = loss / accum
                loss.backward()
                if (i + 1) % accum == 0:
                    optimizer.step()
                    optimizer.zero_grad()
            """,
            note="gradient accumulation rescales the loss; nothing accumulates the tensor",
        ),
        Valid(
            """
            for x, y in loader:
                total = 0
                for head in heads:
                    head_loss = criterion(head(x), y)
                    total += head_loss
                total.backward()
                optimizer.step()
            """,
            note="summing per-head losses to backprop the sum",
        ),
        Valid(
            """
            import torch

            for x, y in loader:
                losses = []
                for head in heads:
                    l = criterion(head(x), y)
                    losses.append(l)
                torch.stack(losses).mean().backward()
            """,
            note="the list feeds backward()",
        ),
        Valid(
            """
            for x, y in loader:
                loss = criterion(model(x), y)
                loss.backward()
                optimizer.step()
                loss = loss.item()
                running += loss
            """,
            note="rebound to a float before accumulating",
        ),
        Valid(
            """
            for x, y in loader:
                loss = criterion(model(x), y)
                loss += 0.01 * model.l2()
                loss.backward()
                meter.update(loss.item(), x.size(0))
            """,
            note="adding a regulariser into the loss itself",
        ),
    ]
    INVALID = [
        Invalid(
            """
            total_loss = 0
            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                optimizer.step()
                total_loss += loss
            """,
            line=7,
            contains="loss.item()",
        ),
        Invalid(
            """
            import torch.nn as nn

            loss_fn = nn.CrossEntropyLoss()
            losses = []
            for epoch in range(3):
                for batch in train_loader:
                    out = model(batch["x"])
                    loss = loss_fn(out, batch["y"])
                    losses.append(loss)
            """,
            line=9,
            contains="losses",
        ),
        Invalid(
            """
            from torch.nn import functional as F

            def train_epoch(model, loader, opt):
                running = 0.0
                for x, y in loader:
                    opt.zero_grad()
                    loss = F.nll_loss(model(x), y)
                    loss.backward()
                    opt.step()
                    running = running + loss * x.size(0)
                return running / len(loader.dataset)
            """,
            line=10,
        ),
        Invalid(
            """
            for x, y in loader:
                outputs = model(x, labels=y)
                loss = outputs.loss
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
                stats["loss"] += loss
            """,
            line=7,
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        if not ctx.loops:
            return
        a = analysis(ctx)
        scopes: dict[int, _Scope] = {}
        parent: dict[int, cst.For | cst.While] = {}
        for loop, func in ctx.loops:
            for st in iter_statements(list(loop.body.body), into_loops=False):
                if isinstance(st, (cst.For, cst.While)):
                    parent[id(st)] = loop
                    continue
                acc = _accumulation(st)
                if acc is None:
                    continue
                target, value, node = acc
                if _graph_ref(value, None) is None:
                    continue  # cheap syntactic filter before any analysis
                key = id(func.node) if func is not None else 0
                if key not in scopes:
                    scopes[key] = _scope(a, func)
                scope = scopes[key]
                loss = _graph_ref(value, scope.losses)
                if loss is None or loss == target or root(target) == root(loss):
                    continue
                if target in scope.feeds_backward or root(target) in scope.feeds_backward:
                    continue
                if a.in_no_grad(st) or _rebound_detached(a, func, loss, st):
                    continue
                if loss not in scope.feeds_backward:
                    # a loss nobody backprops: only a running total over batches is a leak
                    if root(target) in scope.returned or not _over_batches(a, loop, parent):
                        continue
                if loss in scope.backward_lines:
                    why = f"`.backward()` is called on it at line {line_of(ctx, scope.backward_lines[loss])}"
                elif loss in scope.loss_calls:
                    why = f"it comes from the loss computed at line {line_of(ctx, scope.loss_calls[loss])}"
                else:
                    why = "it is computed from the loss"
                yield Finding(
                    f"`{short(ctx, node)}` adds the tensor `{loss}` to `{target}` with its autograd graph ({why}); "
                    f"`{target}` then keeps every iteration's graph alive and memory grows each step; "
                    f"accumulate `{loss}.item()` (or `{loss}.detach()`) instead",
                    node=node,
                    fix=self._fix(ctx, value, scope.losses),
                )

    def _fix(self, ctx: SourceContext, value: cst.BaseExpression, losses: set[str]):
        target = _detach_point(value, losses)
        if target is None:
            return None
        return self.make_fix(f"accumulate `{ctx.code(target)}.item()`", fixes.insert_after(ctx, target, ".item()"))


def _over_batches(a: Analysis, loop: cst.For | cst.While | None, parent: dict[int, cst.For | cst.While]) -> bool:
    """``loop`` or a loop around it iterates a data loader."""
    while loop is not None:
        if isinstance(loop, cst.For) and a.is_loader_like(loop.iter):
            return True
        loop = parent.get(id(loop))
    return False


def _accumulation(st: cst.CSTNode) -> tuple[str, cst.BaseExpression, cst.CSTNode] | None:
    """(running total, added value, node) for ``t += v``, ``t = t + v``,
    ``t.append(v)``, ``meter.update(v, n)``."""
    if isinstance(st, cst.AugAssign) and isinstance(st.operator, cst.AddAssign):
        target = _target_name(st.target)
        return (target, st.value, st) if target else None
    if isinstance(st, cst.Assign) and len(st.targets) == 1 and isinstance(st.value, cst.BinaryOperation):
        target = _target_name(st.targets[0].target)
        v = st.value
        if target and isinstance(v.operator, cst.Add):
            if _target_name(v.left) == target:
                return target, v.right, st
            if _target_name(v.right) == target:
                return target, v.left, st
        return None
    if isinstance(st, cst.Expr) and isinstance(st.value, cst.Call):
        call = st.value
        if not call.args or call.args[0].star or call.args[0].keyword is not None:
            return None
        m = method_name(call)
        target = receiver_name(call)
        if not target:
            return None
        if m == "append" and len(call.args) == 1:
            return target, call.args[0].value, call
        if m == "update" and any(k in last_part(target).lower() for k in ("meter", "loss", "avg")):
            return target, call.args[0].value, call
    return None


def _detach_point(expr: cst.BaseExpression, losses: set[str]) -> cst.BaseExpression | None:
    """The sub-expression of ``expr`` that carries the loss's graph (as ``_graph_ref``
    finds it), to append ``.item()`` to: ``loss`` in ``loss * n``, ``loss.mean()`` whole."""
    if isinstance(expr, (cst.Name, cst.Attribute)):
        return expr if dotted(expr) in losses else None
    if isinstance(expr, cst.BinaryOperation):
        return _detach_point(expr.left, losses) or _detach_point(expr.right, losses)
    if isinstance(expr, cst.UnaryOperation):
        return _detach_point(expr.expression, losses)
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and _graph_ref(expr, losses):
        return expr
    return None


def _target_name(expr: cst.BaseExpression) -> str | None:
    if isinstance(expr, cst.Subscript):
        expr = expr.value  # stats["loss"] += loss
    return dotted(expr)


def _graph_ref(expr: cst.BaseExpression, losses: set[str] | None) -> str | None:
    """The loss name ``expr`` carries with its graph: ``loss``, ``loss * n``,
    ``loss.mean()``; None for ``loss.item()``, ``float(loss)``, ``loss.data``. With
    ``losses=None``, any name."""
    if isinstance(expr, (cst.Name, cst.Attribute)):
        name = dotted(expr)
        return name if name is not None and (losses is None or name in losses) else None
    if isinstance(expr, cst.BinaryOperation):
        return _graph_ref(expr.left, losses) or _graph_ref(expr.right, losses)
    if isinstance(expr, cst.UnaryOperation):
        return _graph_ref(expr.expression, losses)
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
        if expr.func.attr.value in DETACHING_METHODS:
            return None
        return _graph_ref(expr.func.value, losses)  # loss.mean(), loss.sum(), loss.cpu()
    return None


def _is_loss_call(a: Analysis, expr: cst.BaseExpression | None) -> bool:
    if isinstance(expr, cst.Attribute) and expr.attr.value == "loss":
        return dotted(expr.value) != "self"  # outputs.loss (Hugging Face model outputs)
    if not isinstance(expr, cst.Call):
        return False
    if isinstance(expr.func, cst.Call):  # nn.MSELoss()(a, b)
        return (a.ctx.qualname(expr.func) or "").endswith("Loss")
    q = a.ctx.qualname(expr) or ""
    if q.startswith("torch.nn.functional.") and (last_part(q) in FUNCTIONAL_LOSSES or q.endswith("_loss")):
        return True
    name = last_part(dotted(expr.func)).lower()
    if name.endswith(CRITERION_NAMES):
        return True
    callee = dotted(expr.func)
    if not callee:
        return False
    return any(
        isinstance(v, cst.Call)
        and (a.ctx.qualname(v) or "").startswith("torch.nn.")
        and (a.ctx.qualname(v) or "").endswith("Loss")
        for v in a.values_of(callee)
    )


def _scope(a: Analysis, func: FunctionInfo | None) -> _Scope:
    s = _Scope()
    for call in a.calls_in(func):
        if not is_backward(a.ctx, call):
            continue
        # loss.backward(retain_graph=True), accelerator.backward(loss), self.manual_backward(loss)
        exprs = [x.value for x in call.args if x.keyword is None]
        if isinstance(call.func, cst.Attribute):
            exprs.append(call.func.value)
        for e in exprs:
            for name in names_in(e):
                if name != "self":
                    s.backward_lines.setdefault(name, call)
    assigns = a.assignments_in(func)
    s.losses = set(s.backward_lines)
    s.feeds_backward = set(s.backward_lines)
    for x in assigns:
        if _is_loss_call(a, x.value):
            s.loss_calls.setdefault(x.target, x.node)
            s.losses.add(x.target)
    for _ in range(3):  # loss = loss / accum; total = l1 + l2; loss = sum(losses)
        for x in assigns:
            if x.value is None:
                continue
            if x.target not in s.losses and _graph_ref(x.value, s.losses):
                s.losses.add(x.target)
            if x.target in s.feeds_backward:
                s.feeds_backward.update(names_in(x.value))
    for ret in a.returns_in(func):
        if ret.value is not None:
            s.returned.update(names_in(ret.value))
    return s


def _rebound_detached(a: Analysis, func: FunctionInfo | None, name: str, st: cst.CSTNode) -> bool:
    """``loss = loss.item()`` (or ``float(loss)``) before the accumulation: the name no
    longer holds the tensor."""
    here = a.statement_order(st)
    if here is None:
        return False
    latest = None
    for x in a.assignments_in(func):
        if x.target != name:
            continue
        pos = a.statement_order(x.node)
        if pos is not None and pos < here and (latest is None or pos > latest[0]):
            latest = (pos, x)
    if latest is None or latest[1].value is None:
        return False
    v = latest[1].value
    if isinstance(v, (cst.Integer, cst.Float)):
        return True
    if isinstance(v, cst.Call):
        if isinstance(v.func, cst.Attribute) and v.func.attr.value in DETACHING_METHODS:
            return True
        return dotted(v.func) in DETACHING_FUNCS
    return False
