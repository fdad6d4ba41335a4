from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from nnlint import fixes
from nnlint.contexts.source import SourceContext, dotted
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid
from nnlint.vocab import DIST_AUTOGRAD_BACKWARD, DIST_AUTOGRAD_CONTEXTS

from ._loops import Event, analysis, first_line, names_in, optimizer_name, short, walk


class MissingZeroGrad(SourceRule):
    """## What it does
    Flags a training loop that calls `loss.backward()` and `optimizer.step()` but never
    clears the gradients inside the loop (`optimizer.zero_grad()`, `model.zero_grad()` or
    `p.grad = None`), neither directly nor in a helper defined in the same file.

    ## Why is this bad?
    `backward()` *adds* into each parameter's `.grad`. Without a reset, step *n* uses the
    sum of the gradients of all batches so far: the effective learning rate grows every
    step and the update direction is dominated by stale batches. The loss usually falls at
    first, then oscillates or diverges, and nothing crashes.

    ## Example
    ```python
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```
    Gradient accumulation is fine: call `zero_grad()` right after the step inside the
    `if (i + 1) % accum == 0:` block. Distributed autograd (`with dist_autograd.context()
    as cid:` entered each iteration, `dist_autograd.backward(cid, ...)`) keeps the
    gradients in that fresh context, not in `.grad`, so it needs no `zero_grad()`.

    ## References
    - PyTorch docs, `torch.optim.Optimizer.zero_grad` and "How to use an optimizer"
      (https://pytorch.org/docs/stable/optim.html).
    - PyTorch tutorial "Zeroing out gradients in PyTorch"
      (https://pytorch.org/tutorials/recipes/recipes/zeroing_out_gradients.html).
    - Slav Ivanov, "37 Reasons why your Neural Network is not working" (gradients not reset).
    """

    code = "NN401"
    name = "missing-zero-grad"
    fix_applicability = "unsafe"  # gradient accumulation over several batches may be deliberate
    fix_summary = "insert `optimizer.zero_grad()` above the statement that calls `backward()`"
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            import torch

            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                optimizer.step()
            """,
            note="zero_grad at the top of the loop",
        ),
        Valid(
            """
            for x, y in loader:
                loss = criterion(model(x), y)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            """,
            note="zero_grad at the bottom, set_to_none",
        ),
        Valid(
            """
            for x, y in loader:
                model.zero_grad()
                loss_fn(model(x), y).backward()
                opt.step()
            """,
            note="model.zero_grad()",
        ),
        Valid(
            """
            for i, (x, y) in enumerate(loader):
                loss = criterion(model(x), y) / accum
                loss.backward()
                if (i + 1) % accum == 0:
                    optimizer.step()
                    optimizer.zero_grad()
            """,
            note="gradient accumulation: zero_grad beside the step",
        ),
        Valid(
            """
            for x, y in loader:
                for p in model.parameters():
                    p.grad = None
                criterion(model(x), y).backward()
                optimizer.step()
            """,
            note="grads reset by hand",
        ),
        Valid(
            """
            def train_step(model, optimizer, batch):
                optimizer.zero_grad()
                loss = model(*batch)
                loss.backward()
                optimizer.step()
                return loss.item()

            for epoch in range(10):
                for batch in loader:
                    train_step(model, optimizer, batch)
            """,
            note="a helper in the same file does zero_grad",
        ),
        Valid(
            """
            import lightning as L

            class Lit(L.LightningModule):
                def training_step(self, batch, batch_idx):
                    x, y = batch
                    return self.loss(self(x), y)
            """,
            note="Lightning: the Trainer owns the loop",
        ),
        Valid(
            """
            for epoch in range(epochs):
                for x, y in loader:
                    optimizer.zero_grad()
                    criterion(model(x), y).backward()
                    optimizer.step()
                scheduler.step()
            """,
            note="nested loops, zero_grad in the inner loop beside step",
        ),
        Valid(
            """
            while step < max_steps:
                for micro in range(accum):
                    loss = model(*get_batch()) / accum
                    scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                step += 1
            """,
            note="nanoGPT-style accumulation with GradScaler",
        ),
        Valid(
            """
            for obs in rollout:
                action = policy(obs)
                obs, reward, done, info = env.step(action)
                (-reward * action).sum().backward()
                model_engine.step()
            """,
            note="env.step and a DeepSpeed engine step (which zeroes grads itself) are not optimizer steps",
        ),
        Valid(
            """
            def closure():
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                return loss

            for i in range(20):
                optimizer.step(closure)
            """,
            note="LBFGS closure",
        ),
        Valid(
            """
            import torch.distributed.autograd as dist_autograd

            for data, target in batches:
                with dist_autograd.context() as context_id:
                    loss = criterion(model(data), target)
                    dist_autograd.backward(context_id, [loss])
                    opt.step(context_id)
            """,
            note="distributed autograd: a fresh gradient context every iteration",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch

            for x, y in loader:
                loss = criterion(model(x), y)
                loss.backward()
                optimizer.step()
            """,
            line=6,
            contains="optimizer.zero_grad()",
        ),
        Invalid(
            """
            optimizer.zero_grad()
            for epoch in range(epochs):
                for x, y in train_loader:
                    out = model(x)
                    loss = criterion(out, y)
                    loss.backward()
                    optimizer.step()
            """,
            line=7,
            note="zero_grad once before the loops does not count",
        ),
        Invalid(
            """
            def train_step(model, opt, batch):
                loss = model(*batch)
                loss.backward()
                opt.step()

            for batch in loader:
                train_step(model, opt, batch)
            """,
            line=7,
            contains="train_step",
        ),
        Invalid(
            """
            i = 0
            while i < steps:
                x, y = next(it)
                scaler.scale(criterion(net(x), y)).backward()
                scaler.step(optim)
                scaler.update()
                i += 1
            """,
            line=5,
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        if "backward" not in ctx.text or not ctx.loops:
            return
        a = analysis(ctx)
        for loop, func in ctx.loops:
            facts = a.facts(loop.body, func)
            if facts.inner_train_loop or facts.first("zero") is not None:
                continue
            back, step = facts.first("backward"), facts.first("step")
            if back is None or step is None or not isinstance(step.node, cst.Call):  # a step is a call
                continue
            if "autograd" in ctx.text and _per_iteration_dist_context(ctx, loop, back, step.node):
                continue
            opt = optimizer_name(step.node)
            via = ""
            if step.node is not step.anchor and step.via:
                via = f" (through `{step.via}()`, called at line {first_line(ctx, step.anchor)})"
            yield Finding(
                f"the loop at line {first_line(ctx, loop)} runs `{short(ctx, back.node)}` (line {first_line(ctx, back.node)}) "
                f"and `{short(ctx, step.node)}` (line {first_line(ctx, step.node)}){via} but never clears the gradients, so each "
                f"step applies the sum of all earlier batches' gradients; call `{opt}.zero_grad()` at the start of "
                f"each iteration (or after the step)",
                node=step.anchor,
                evidence={"loop_line": first_line(ctx, loop)},
                fix=self._fix(ctx, back.anchor, opt),
            )

    def _fix(self, ctx: SourceContext, back: cst.CSTNode, opt: str | None):
        """``opt.zero_grad()`` on its own line above the statement that calls backward()."""
        stmt = fixes.statement_of(ctx, back)
        if not opt or stmt is None:
            return None
        return self.make_fix(
            f"call {opt}.zero_grad() before backward()", fixes.insert_line_before(ctx, stmt, f"{opt}.zero_grad()")
        )


def _per_iteration_dist_context(ctx: SourceContext, loop: cst.CSTNode, back: Event, step: cst.Call) -> bool:
    """The backward runs in a ``with dist_autograd.context() as cid:`` block entered anew
    each iteration (in the loop, or in a helper the loop calls) and is
    ``dist_autograd.backward(cid, ...)`` or the step is ``opt.step(cid)``: the gradients
    live in that context, which is dropped at the end of the block."""
    for scope in [loop] if back.node is back.anchor else [loop, ctx.module]:
        for w in walk(scope, cst.With, into_defs=scope is ctx.module):
            ids = [_context_id(ctx, item) for item in w.items]
            if not any(i is not None for i in ids):
                continue
            inside = {id(n) for n in walk(w.body)}
            if id(loop) in inside:
                continue  # one context around the whole loop: its gradients do accumulate
            if id(back.anchor) not in inside and id(back.node) not in inside:
                continue
            if isinstance(back.node, cst.Call) and ctx.qualname(back.node) in DIST_AUTOGRAD_BACKWARD:
                return True
            names = {n for a in step.args for n in names_in(a.value)}
            if any(i and i in names for i in ids):
                return True
    return False


def _context_id(ctx: SourceContext, item: cst.WithItem) -> str | None:
    """'' or the ``as`` name for ``dist_autograd.context()``; None for any other item."""
    if not (isinstance(item.item, cst.Call) and ctx.qualname(item.item) in DIST_AUTOGRAD_CONTEXTS):
        return None
    target = item.asname.name if item.asname is not None else None
    return (dotted(target) if isinstance(target, (cst.Name, cst.Attribute)) else None) or ""
