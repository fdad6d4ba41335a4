from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from nnlint.analysis.syntax import call_arg, has_star, line_of
from nnlint.contexts.source import FunctionInfo, SourceContext, dotted
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

from ._calls import method_name, unsigned_number, walk
from ._loops import Analysis, analysis

ADAM = {
    "torch.optim.Adam": "Adam",
    "torch.optim.adam.Adam": "Adam",
    "torch.optim.AdamW": "AdamW",
    "torch.optim.adamw.AdamW": "AdamW",
    "transformers.AdamW": "AdamW",
    "transformers.optimization.AdamW": "AdamW",
}
SGD = {"torch.optim.SGD": "SGD", "torch.optim.sgd.SGD": "SGD"}
#: schedulers that overwrite the optimizer's lr from their own max_lr / base_lr
LR_OVERRIDING_SCHEDULERS = {"torch.optim.lr_scheduler.OneCycleLR", "torch.optim.lr_scheduler.CyclicLR"}


class SuspiciousLearningRate(SourceRule):
    """## What it does
    Flags `torch.optim.Adam`/`AdamW` built with a constant learning rate ≥ 0.1 and
    `torch.optim.SGD` with a constant learning rate ≥ 1 — a literal, or a constant
    assigned once in the file (`LR = 0.5`), for an optimizer of a module's
    `.parameters()`. Rates that come from arguments or a config, optimizers whose lr a
    `OneCycleLR`/`CyclicLR` scheduler overwrites, and optimizers of raw tensors (an image
    in style transfer) are not judged.
    Thresholds: `[tool.nnlint.thresholds.NN407] adam_max_lr`, `sgd_max_lr`.

    ## Why is this bad?
    Adam normalizes each step by the gradient's running RMS, so `lr` is roughly the size of
    every parameter update: 0.1 moves each weight by ~0.1 per step, which wipes out an
    initialization of scale 0.01–0.1 in one step; the loss jumps, plateaus or turns NaN.
    Sensible defaults are 1e-3 (Karpathy's "3e-4 is the best learning rate for Adam"), and
    1e-5..5e-5 for fine-tuning. For SGD, 0.01–0.1 (with momentum) is typical; lr ≥ 1
    diverges for almost every network without careful warmup.

    ## Example
    ```python
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    ```

    ## Use instead
    ```python
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ```

    ## References
    - PyTorch docs, `torch.optim.Adam` (default `lr=1e-3`) and `torch.optim.SGD`
      (https://pytorch.org/docs/stable/optim.html).
    - Kingma & Ba, "Adam: A Method for Stochastic Optimization" (2015): α = 0.001.
    - Andrej Karpathy, "A Recipe for Training Neural Networks" (2019): "adam is safe ...
      a learning rate of 3e-4".
    - Slav Ivanov, "37 Reasons why your Neural Network is not working": learning rate too high.
    """

    code = "NN407"
    name = "suspicious-learning-rate"
    severity = Severity.WARNING
    thresholds = {"adam_max_lr": 0.1, "sgd_max_lr": 1.0}

    VALID = [
        Valid(
            """
            import torch

            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            opt2 = torch.optim.AdamW(model.parameters(), 3e-4, weight_decay=0.1)
            """,
            note="usual Adam rates (weight_decay=0.1 is not the lr)",
        ),
        Valid(
            """
            import torch.optim as optim

            opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            """,
            note="SGD 0.1 with momentum (ResNet recipe)",
        ),
        Valid(
            """
            from torch.optim import LBFGS

            opt = LBFGS(model.parameters(), lr=1)
            """,
            note="LBFGS lr=1 is its default",
        ),
        Valid(
            """
            import argparse
            import torch

            p = argparse.ArgumentParser()
            p.add_argument("--lr", type=float, default=0.5)
            args = p.parse_args()
            opt = torch.optim.Adam(model.parameters(), lr=args.lr)
            """,
            note="lr from the command line",
        ),
        Valid(
            """
            import torch
            from torch.optim.lr_scheduler import OneCycleLR

            opt = torch.optim.AdamW(model.parameters(), lr=0.1)
            sched = OneCycleLR(opt, max_lr=0.01, total_steps=1000)
            """,
            note="OneCycleLR overwrites the lr",
        ),
        Valid(
            """
            import torch

            LR = 0.5
            opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
            sgd = torch.optim.SGD(model.parameters(), lr=LR)
            """,
            note="SGD 0.5 is under its threshold; Adam's lr from a config",
        ),
        Valid(
            """
            import torch

            LR = 0.5
            if args.finetune:
                LR = 1e-5
            opt = torch.optim.Adam(model.parameters(), lr=LR)
            """,
            note="a constant reassigned: not a constant",
        ),
        Valid(
            """
            import torch

            input_img = content_img.clone().requires_grad_(True)
            optimizer = torch.optim.Adam([input_img], lr=0.1)
            """,
            note="optimizing an image, not network weights (style transfer, feature visualization)",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch

            optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
            """,
            line=3,
            contains="lr=1e-3",
        ),
        Invalid(
            """
            from torch.optim import AdamW

            LR = 0.5
            optimizer = AdamW(model.parameters(), lr=LR)
            """,
            line=4,
            contains="LR",
        ),
        Invalid(
            """
            import torch.optim as optim

            opt = optim.SGD(net.parameters(), 2.0, momentum=0.9)
            """,
            line=3,
            contains="SGD",
        ),
        Invalid(
            """
            from torch import optim

            opt = optim.Adam([
                {"params": model.backbone.parameters()},
                {"params": model.head.parameters(), "lr": 0.3},
            ], lr=1e-4)
            """,
            line=5,
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        if "optim" not in ctx.text and "AdamW" not in ctx.text:
            return
        a = None
        for call, func in ctx.calls:
            q = ctx.qualname(call) or ""
            kind = ADAM.get(q) or SGD.get(q)
            if kind is None or has_star(call):
                continue
            a = a or analysis(ctx)
            if _lr_overridden(ctx):
                return
            if not _optimizes_weights(a, call):
                continue  # Adam([image], lr=0.1): optimizing an input, not network weights
            limit = self.threshold["sgd_max_lr"] if kind == "SGD" else self.threshold["adam_max_lr"]
            candidates: list[cst.BaseExpression] = []
            lr = call_arg(call, 1, "lr")
            if lr is not None:
                candidates.append(lr.value)
            params = call_arg(call, 0, "params")
            if params is not None and isinstance(params.value, (cst.List, cst.Tuple)):
                for el in params.value.elements:  # param groups with their own lr
                    if isinstance(el.value, cst.Dict):
                        for item in el.value.elements:
                            if (
                                isinstance(item, cst.DictElement)
                                and isinstance(item.key, cst.SimpleString)
                                and item.key.evaluated_value == "lr"
                            ):
                                candidates.append(item.value)
            for expr in candidates:
                found = _constant(a, expr, func)
                if found is None:
                    continue
                value, origin = found
                if value < limit:
                    continue
                yield Finding(
                    _message(ctx, kind, value, expr, origin), node=expr, evidence={"lr": value, "limit": limit}
                )


def _constant(
    a: Analysis, expr: cst.BaseExpression, func: FunctionInfo | None
) -> tuple[float, cst.CSTNode | None] | None:
    """The value of a literal, or of a name assigned exactly once in the file, with a
    literal, at module level or in the calling function."""
    v = unsigned_number(expr)
    if v is not None:
        return v, None
    if not isinstance(expr, cst.Name):
        return None
    assigns = a.assignments().get(expr.value, [])
    if len(assigns) != 1:
        return None
    only = assigns[0]
    if only.func is not None and only.func is not func:
        return None
    if only.value is None or isinstance(only.node, cst.For):
        return None
    v = unsigned_number(only.value)
    return (v, only.node) if v is not None else None


def _optimizes_weights(a: Analysis, call: cst.Call) -> bool:
    """The optimizer gets a module's ``.parameters()`` (directly, in param groups, or
    through a name assigned from them)."""
    params = call_arg(call, 0, "params")
    if params is None:
        return False
    exprs = [params.value]
    name = dotted(params.value)
    if name is not None:
        exprs += a.values_of(name)
    for e in exprs:
        for n in [e, *walk(e, cst.Call)]:
            if isinstance(n, cst.Call) and method_name(n) in ("parameters", "named_parameters"):
                return True
    return False


def _lr_overridden(ctx: SourceContext) -> bool:
    return any(ctx.qualname(c) in LR_OVERRIDING_SCHEDULERS for c, _ in ctx.calls)


def _message(ctx: SourceContext, kind: str, value: float, expr: cst.BaseExpression, origin: cst.CSTNode | None) -> str:
    shown = f"`{ctx.code(expr)}` = {value:g}" if origin is not None else f"lr={value:g}"
    if origin is not None:
        shown += f" (set at line {line_of(ctx, origin)})"
    if kind == "SGD":
        return (
            f"SGD with {shown} moves the weights by {value:g}× the gradient every step: almost every network "
            f"diverges (the loss jumps to inf/NaN); typical SGD rates are 0.01–0.1 with momentum=0.9; lower it, or "
            f"ramp up to it with warmup"
        )
    return (
        f"{kind} with {shown} moves every weight by about {value:g} per step, {value / 1e-3:.0f}× Adam's usual "
        f"1e-3: training usually diverges or stalls; use lr=1e-3 (3e-4 is a safe start, 1e-5..5e-5 for fine-tuning)"
    )
