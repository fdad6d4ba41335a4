from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from nnlint import fixes
from nnlint.analysis.syntax import call_arg, line_of
from nnlint.contexts.source import FunctionInfo, SourceContext, child_nodes, dotted
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

from ._calls import is_grad_reset, method_name, optimizer_name, receiver_name, short, walk
from ._loops import Analysis, analysis

KINDS = ("backward", "step", "zero", "clip")


@dataclass(frozen=True)
class _Ev:
    kind: str
    node: cst.CSTNode
    cond: bool  # inside an if/for/while/try of this block: may not run every time


class StepOrder(SourceRule):
    """## What it does
    Checks the order of one training step in a loop body or function body, statement by
    statement: flags `optimizer.step()` that runs before `loss.backward()` (with no
    `zero_grad()` between them), `optimizer.zero_grad()` between `backward()` and the
    `step()` of the same optimizer, and `clip_grad_norm_`/`clip_grad_value_` after
    `step()`. Steps, backwards and zero_grads inside an `if` (gradient accumulation) are
    not taken as misordered.

    ## Why is this bad?
    `step()` applies whatever is in `.grad` at that moment. Before `backward()` that is the
    previous batch's gradient (or nothing), and a `zero_grad()` between `backward()` and
    `step()` throws the fresh gradient away: the model trains on stale gradients, or not at
    all. Clipping after `step()` changes gradients that were already applied and are about
    to be zeroed, so it has no effect and exploding gradients go through unclipped.

    ## Example
    ```python
    for x, y in loader:
        optimizer.zero_grad()
        optimizer.step()
        loss = criterion(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    ```

    ## Use instead
    ```python
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    ```
    With AMP: `scaler.scale(loss).backward()`, `scaler.unscale_(optimizer)`, clip,
    `scaler.step(optimizer)`, `scaler.update()`.

    ## References
    - PyTorch docs, "How to use an optimizer" / "Taking an optimization step"
      (https://pytorch.org/docs/stable/optim.html).
    - PyTorch docs, `torch.nn.utils.clip_grad_norm_` and "Automatic Mixed Precision
      examples: gradient clipping" (https://pytorch.org/docs/stable/notes/amp_examples.html).
    - Slav Ivanov, "37 Reasons why your Neural Network is not working".
    """

    code = "NN406"
    name = "step-order"
    fix_applicability = "unsafe"  # the order may be deliberate (accumulation, closures)
    fix_summary = "move `clip_grad_norm_`/`clip_grad_value_` above `optimizer.step()`, or a `zero_grad()` between backward and step above `backward()` (whole lines at the same indentation; never with a GradScaler)"
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            import torch

            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
            """,
            note="the canonical order, scheduler after",
        ),
        Valid(
            """
            from torch.nn.utils import clip_grad_norm_

            for x, y in loader:
                with torch.autocast("cuda"):
                    loss = criterion(model(x), y)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
            """,
            note="AMP with GradScaler",
        ),
        Valid(
            """
            for epoch in range(epochs):
                scheduler.step()
                for x, y in loader:
                    optimizer.zero_grad()
                    criterion(model(x), y).backward()
                    optimizer.step()
            """,
            note="scheduler.step() before backward is fine",
        ),
        Valid(
            """
            for i, (x, y) in enumerate(loader):
                if i > 0 and i % accum == 0:
                    optimizer.step()
                    optimizer.zero_grad()
                loss = criterion(model(x), y) / accum
                loss.backward()
            """,
            note="gradient accumulation stepping at the top of the loop",
        ),
        Valid(
            """
            for x, y in loader:
                optimizer.step()
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
            """,
            note="rotated loop: the step applies the previous iteration's fresh gradients",
        ),
        Valid(
            """
            for real, z in loader:
                opt_d.zero_grad()
                loss_d = d_loss(D(real), D(G(z).detach()))
                loss_d.backward()
                opt_d.step()
                opt_g.zero_grad()
                loss_g = g_loss(D(G(z)))
                loss_g.backward()
                opt_g.step()
            """,
            note="GAN: two optimizers, each in order",
        ),
        Valid(
            """
            def training_step(self, batch, batch_idx):
                opt = self.optimizers()
                opt.zero_grad()
                loss = self.compute_loss(batch)
                self.manual_backward(loss)
                self.clip_gradients(opt, gradient_clip_val=0.5)
                opt.step()
            """,
            note="Lightning manual optimization",
        ),
        Valid(
            """
            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                if max_norm:
                    clip_grad_norm_(model.parameters(), max_norm)
                optimizer.step()
            """,
            note="conditional clipping before the step",
        ),
        Valid(
            """
            import math
            import torch

            for x, y in loader:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), math.inf)
            """,
            note="max_norm=inf only measures the gradient norm for logging",
        ),
        Valid(
            """
            for x, y in loader:
                loss = criterion(model(x), y)
                loss.backward()
                stash = [p.grad.clone() for p in model.parameters()]
                optimizer.zero_grad()
                for p, g in zip(model.parameters(), stash):
                    p.grad.add_(g)
                optimizer.step()
            """,
            note="gradients stashed, cleared, and put back before the step",
        ),
    ]
    INVALID = [
        Invalid(
            """
            for x, y in loader:
                optimizer.zero_grad()
                optimizer.step()
                loss = criterion(model(x), y)
                loss.backward()
            """,
            line=3,
            contains="loss.backward()",
        ),
        Invalid(
            """
            import torch.nn as nn

            def train_step(model, opt, x, y):
                opt.zero_grad()
                loss = nn.functional.mse_loss(model(x), y)
                loss.backward()
                opt.step()
                nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            """,
            line=8,
            contains="after",
        ),
        Invalid(
            """
            for x, y in loader:
                loss = criterion(model(x), y)
                loss.backward()
                optimizer.zero_grad()
                optimizer.step()
            """,
            line=4,
            contains="zero_grad",
        ),
        Invalid(
            """
            from torch.nn.utils import clip_grad_value_

            for step, (x, y) in enumerate(loader):
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                optimizer.step()
                if clip:
                    clip_grad_value_(model.parameters(), 0.5)
            """,
            line=9,
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        if "backward" not in ctx.text and "clip_grad" not in ctx.text:
            return
        a = analysis(ctx)
        scopes: dict[int, FunctionInfo | None] = {}
        for call, f in ctx.calls:
            m = method_name(call)
            if m in ("step", "optimizer_step") or "clip_grad" in (m or dotted(call.func) or ""):
                kind = a.classify(call)
                if kind is not None and kind[0] in ("step", "clip"):
                    scopes.setdefault(id(f.node) if f is not None else 0, f)
        fired: set[int] = set()
        for func in scopes.values():
            walker = _Walker(a)
            if func is None:
                walker.block(list(ctx.module.body), ctx.module, [])
            else:
                walker.block(list(func.node.body.body), func.node, [])
            for owner, events in walker.sequences():
                if not any(e.kind in ("step", "clip") for e in events):
                    continue
                for finding in _misorders(ctx, events, owner):
                    if id(finding.node) not in fired:
                        fired.add(id(finding.node))
                        yield finding


def _move_fix(ctx: SourceContext, node: cst.CSTNode, before: cst.CSTNode, what: str):
    """Move ``node``'s statement above ``before``'s; never with a GradScaler (unscale_ first)."""
    if "scaler" in ctx.code(before) or "scaler" in ctx.code(node):
        return None
    edits = fixes.move_statement_before(ctx, node, before)
    return StepOrder.make_fix(StepOrder(), what, *edits) if edits else None


def _where(ctx: SourceContext, owner: cst.CSTNode) -> str:
    if isinstance(owner, (cst.For, cst.While)):
        return f"loop at line {line_of(ctx, owner)}"
    if isinstance(owner, cst.FunctionDef):
        return f"function `{owner.name.value}`"
    if isinstance(owner, cst.If):
        return f"if-block at line {line_of(ctx, owner)}"
    if isinstance(owner, cst.Else):
        return "else-block"
    return "module"


class _Walker:
    """One walk of a scope that records each backward/step/zero/clip event with the
    chain of blocks around it, so every block's statement sequence comes out of it
    without walking the block again."""

    ANALYSED = (cst.For, cst.While, cst.FunctionDef, cst.If, cst.Else, cst.Module)

    def __init__(self, a: Analysis) -> None:
        self.a = a
        self.out: list[tuple[str, cst.CSTNode, list[cst.CSTNode | None]]] = []
        self.owners: dict[int, cst.CSTNode] = {}

    def block(self, stmts: list, owner: cst.CSTNode, path: list) -> None:
        here = path + [owner]
        self.owners.setdefault(id(owner), owner)
        for st in stmts:
            if isinstance(st, (cst.SimpleStatementLine, cst.BaseSmallStatement)):
                for small in st.body if isinstance(st, cst.SimpleStatementLine) else [st]:
                    self._events(small, here)
            elif not isinstance(st, (cst.FunctionDef, cst.ClassDef)):
                self._compound(st, here)

    def _compound(self, st: cst.CSTNode, here: list) -> None:
        for child in child_nodes(st):
            if isinstance(child, cst.BaseSuite):
                self.block(list(child.body), st, here)
            elif isinstance(
                child, (cst.If, cst.Else, cst.ExceptHandler, cst.ExceptStarHandler, cst.Finally, cst.MatchCase)
            ):
                self._compound(child, here)
            else:  # a header: `for ... in`, `if ...:`, `with ...:` items
                self._events(child, here + [None])

    def _events(self, node: cst.CSTNode, path: list) -> None:
        for n in [node, *walk(node)]:
            if isinstance(n, cst.Call):
                kind = self.a.classify(n)
                if kind is not None and kind[0] in KINDS:
                    self.out.append((kind[0], n, path))
            elif isinstance(n, cst.Assign) and is_grad_reset(n):
                self.out.append(("zero", n, path))
            elif isinstance(n, cst.Assign) and any(_is_grad(t.target) for t in n.targets):
                self.out.append(("gradset", n, path))  # p.grad = stashed: gradients put back by hand
            if isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute) and _is_grad(n.func.value):
                if n.func.attr.value.endswith("_") and n.func.attr.value not in ("zero_", "detach_"):
                    self.out.append(("gradset", n, path))  # p.grad.copy_(g), p.grad.add_(g)

    def sequences(self) -> Iterator[tuple[cst.CSTNode, list[_Ev]]]:
        seqs: dict[int, list[_Ev]] = {}
        for kind, node, path in self.out:
            cond = False  # deeper than a block, only `with` bodies run unconditionally
            for o in reversed(path):
                if o is not None and isinstance(o, self.ANALYSED):
                    seqs.setdefault(id(o), []).append(_Ev(kind, node, cond))
                cond = cond or o is None or not isinstance(o, cst.With)
        for key, seq in seqs.items():
            yield self.owners[key], seq


def _misorders(ctx: SourceContext, events: list[_Ev], owner: cst.CSTNode) -> Iterator[Finding]:
    # 1. step() before any backward(), and no zero_grad() before the next backward()
    for i, e in enumerate(events):
        if e.kind == "backward":
            break
        if e.kind == "step" and not e.cond and isinstance(e.node, cst.Call):  # a step is a call
            for later in events[i + 1 :]:
                if later.kind in ("zero", "step"):
                    break
                if later.kind == "backward":
                    if not later.cond:
                        if any(z.kind == "zero" for z in events):
                            effect = "zero_grad() clears every gradient backward() computes before a step uses it, so the model does not learn"
                        else:
                            effect = "each step applies the gradients left over from earlier iterations, one batch late"
                        yield Finding(
                            f"`{short(ctx, e.node)}` (line {line_of(ctx, e.node)}) runs before "
                            f"`{short(ctx, later.node)}` (line {line_of(ctx, later.node)}) in the {_where(ctx, owner)}: {effect}; "
                            f"reorder to `{optimizer_name(e.node)}.zero_grad()`, `backward()`, "
                            f"`{optimizer_name(e.node)}.step()`",
                            node=e.node,
                        )
                    break
            break
    # 2. zero_grad() of an optimizer between backward() and that optimizer's step()
    for i, e in enumerate(events):
        if e.kind != "backward" or e.cond:
            continue
        for j in range(i + 1, len(events)):
            z = events[j]
            if z.kind in ("backward", "step"):
                break
            if z.kind != "zero" or z.cond or not isinstance(z.node, cst.Call):
                continue
            step = next((s for s in events[j + 1 :] if s.kind in ("backward", "step", "gradset")), None)
            if step is None or step.kind != "step" or step.cond or not isinstance(step.node, cst.Call):
                break
            if receiver_name(z.node) == optimizer_name(step.node):
                yield Finding(
                    f"`{short(ctx, z.node)}` (line {line_of(ctx, z.node)}) runs between "
                    f"`{short(ctx, e.node)}` (line {line_of(ctx, e.node)}) and `{short(ctx, step.node)}` "
                    f"(line {line_of(ctx, step.node)}) in the {_where(ctx, owner)}: it clears the gradients before the step "
                    f"uses them, so the model does not learn; call zero_grad() before backward() or after step()",
                    node=z.node,
                    fix=_move_fix(ctx, z.node, e.node, "move it before backward()"),
                )
            break
    # 3. clipping after the step it was meant for
    last = None
    for e in events:
        if e.kind in ("step", "backward"):
            last = e
        elif (
            e.kind == "clip"
            and last is not None
            and last.kind == "step"
            and not last.cond
            and not _measures_only(e.node)
            and isinstance(last.node, cst.Call)
        ):
            opt = optimizer_name(last.node)
            yield Finding(
                f"`{short(ctx, e.node)}` (line {line_of(ctx, e.node)}) runs after `{short(ctx, last.node)}` "
                f"(line {line_of(ctx, last.node)}) in the {_where(ctx, owner)}: the update already used the unclipped "
                f"gradients, so clipping has no effect; move it between `backward()` and `{opt}.step()` (with a "
                f"GradScaler, after `scaler.unscale_({opt})`)",
                node=e.node,
                fix=_move_fix(ctx, e.node, last.node, f"move it before `{opt}.step()`"),
            )


def _is_grad(expr: cst.BaseExpression) -> bool:
    name = dotted(expr.value if isinstance(expr, cst.Subscript) else expr) or ""
    return name.endswith(".grad") or name.endswith(".grad.data")


def _measures_only(call: cst.CSTNode) -> bool:
    """``clip_grad_norm_(params, float("inf"))`` only measures the norm (for logging)."""
    if not isinstance(call, cst.Call):
        return False
    limit = call_arg(call, 1, "max_norm") or call_arg(call, 1, "clip_value")
    if limit is None:
        return False
    v = limit.value
    if (
        isinstance(v, cst.Call)
        and dotted(v.func) == "float"
        and v.args
        and isinstance(v.args[0].value, cst.SimpleString)
    ):
        return "inf" in v.args[0].value.value.lower()
    return (dotted(v) or "").endswith(".inf")
