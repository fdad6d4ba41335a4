from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from nnlint.contexts.source import SourceContext, dotted
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

from ._calls import is_backward, last_part
from ._loops import Analysis, analysis

TORCH_SEEDS = {
    "torch.manual_seed",
    "torch.random.manual_seed",
    "torch.cuda.manual_seed",
    "torch.cuda.manual_seed_all",
    "torch.cuda.random.manual_seed",
    "torch.cuda.random.manual_seed_all",
}
#: helpers from libraries that seed torch among others (lightning, transformers, accelerate,
#: detectron2, mmengine, timm ...), matched by name when imported
SEED_HELPERS = {
    "seed_everything",
    "set_seed",
    "set_random_seed",
    "seed_all",
    "set_seeds",
    "setup_seed",
    "init_seeds",
    "fix_seed",
    "fix_random_seed",
    "seed_torch",
    "enable_full_determinism",
}
NOT_TORCH_SEEDS = ("random.", "numpy.", "tensorflow.", "jax.", "tf.")


class NoSeed(SourceRule):
    """## What it does
    Flags a training script — a file that calls `.backward()` and an optimizer `.step()`
    and runs by itself (module-level code or an `if __name__ == "__main__":` block) —
    that never seeds PyTorch's random number generator (`torch.manual_seed`,
    `torch.cuda.manual_seed_all`, `lightning.seed_everything`, `transformers.set_seed`, or
    a `set_seed` helper of the file that calls one of them). Reported once, at the first
    `.backward()` call. `random.seed` and `np.random.seed` alone do not seed torch.

    ## Why is this bad?
    Weight initialization, dropout masks and `DataLoader(shuffle=True)` order all come from
    torch's generator. Unseeded, two runs of the same code differ, so a change cannot be
    told apart from run-to-run noise and a bug cannot be reproduced.

    ## Example
    ```python
    import random
    random.seed(0)
    model = Net()
    for x, y in loader:
        ...
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    import random
    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)  # seeds the CPU and every CUDA device
    model = Net()
    ```

    ## References
    - PyTorch docs, "Reproducibility" (https://pytorch.org/docs/stable/notes/randomness.html).
    - Andrej Karpathy, "A Recipe for Training Neural Networks" (2019): "fix random seed".
    """

    code = "NN404"
    name = "no-seed"
    severity = Severity.INFO

    VALID = [
        Valid(
            """
            import torch

            torch.manual_seed(0)
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                optimizer.step()
            """,
            note="seeded at module level",
        ),
        Valid(
            """
            import random
            import numpy as np
            import torch

            def set_seed(seed):
                random.seed(seed)
                np.random.seed(seed)
                torch.cuda.manual_seed_all(seed)

            def main():
                set_seed(1)
                for x, y in loader:
                    optimizer.zero_grad()
                    criterion(model(x), y).backward()
                    optimizer.step()
            """,
            note="a set_seed helper that seeds torch",
        ),
        Valid(
            """
            import pytorch_lightning as pl

            pl.seed_everything(42)
            for batch in loader:
                loss = model(batch)
                loss.backward()
                opt.step()
                opt.zero_grad()
            """,
            note="Lightning seed_everything",
        ),
        Valid(
            """
            from transformers import set_seed

            def main():
                set_seed(args.seed)
                for batch in loader:
                    outputs = model(**batch)
                    accelerator.backward(outputs.loss)
                    optimizer.step()
                    optimizer.zero_grad()
            """,
            note="transformers.set_seed",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def forward(self, x):
                    return x
            """,
            note="a model file, no training",
        ),
        Valid(
            """
            from torch import random as trandom

            trandom.manual_seed(3)
            loss.backward()
            optimizer.step()
            """,
            note="torch.random.manual_seed through an alias",
        ),
        Valid(
            """
            import torch

            x = torch.randn(3, requires_grad=True)
            (x ** 2).sum().backward()
            print(x.grad)
            """,
            note="backward() without an optimizer: a gradient demo, not a training script",
        ),
        Valid(
            """
            import torch

            def train_one_epoch(model, criterion, data_loader, optimizer):
                model.train()
                for samples, targets in data_loader:
                    loss = criterion(model(samples), targets)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
            """,
            note="a module of training functions (engine.py): the script that imports it seeds",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch

            model = Net()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                optimizer.step()
            """,
            line=8,
            contains="torch.manual_seed",
        ),
        Invalid(
            """
            import random
            import numpy as np

            random.seed(0)
            np.random.seed(0)

            def train():
                for x, y in loader:
                    opt.zero_grad()
                    loss_fn(net(x), y).backward()
                    opt.step()

            if __name__ == "__main__":
                train()
            """,
            line=10,
            contains="np.random.seed",
        ),
        Invalid(
            """
            import random

            def set_seed(s):
                random.seed(s)

            set_seed(0)
            for batch in loader:
                scaler.scale(model(batch)).backward()
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad()
            """,
            line=8,
            note="the file's own set_seed does not seed torch",
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        if "backward" not in ctx.text:
            return
        a = analysis(ctx)
        first_backward = next((c for c, _ in ctx.calls if is_backward(ctx, c)), None)
        if first_backward is None or not any(a.is_step(c) for c, _ in ctx.calls):
            return
        if not _runs_as_script(a) or any(_seeds_torch(a, c, ()) for c, _ in ctx.calls):
            return
        partial = sorted({q for c, _ in ctx.calls if (q := ctx.qualname(c)) in ("random.seed", "numpy.random.seed")})
        note = ""
        if partial:
            shown = ", ".join("np.random.seed" if q == "numpy.random.seed" else q for q in partial)
            note = f" ({shown} {'do' if len(partial) > 1 else 'does'} not seed torch's generator)"
        yield Finding(
            f"this training script never seeds PyTorch{note}: weight init, dropout and shuffling differ on every "
            f"run, so results cannot be reproduced; call torch.manual_seed(SEED) (or lightning.seed_everything / "
            f"transformers.set_seed) once before building the model",
            node=first_backward,
        )


def _runs_as_script(a: Analysis) -> bool:
    """The file runs training itself (module-level code, a ``__main__`` guard, a call of
    one of its functions at module level). A module of training functions (``engine.py``)
    is seeded by the script that imports it."""
    for st in a.ctx.module.body:
        if isinstance(st, (cst.For, cst.While, cst.With)):
            return True
        if isinstance(st, cst.If) and "__name__" in a.ctx.code(st.test):
            return True
    return any(f is None and (is_backward(a.ctx, c) or a.resolve_local(c, None) is not None) for c, f in a.ctx.calls)


def _seeds_torch(a: Analysis, call: cst.Call, stack: tuple[int, ...]) -> bool:
    q = a.ctx.qualname(call) or ""
    if q in TORCH_SEEDS:
        return True
    local = a.resolve_local(call, None) if isinstance(call.func, cst.Name) else None
    if local is not None:
        # the file's own helper: it counts only if it seeds torch itself
        if id(local.node) in stack or len(stack) > 3:
            return False
        return any(_seeds_torch(a, c, stack + (id(local.node),)) for c in a.calls_in(local))
    name = last_part(q)
    if q.startswith(NOT_TORCH_SEEDS) or q in ("seed",):
        return False
    if name in SEED_HELPERS:
        return True
    # fabric.seed_everything(0), L.seed_everything(0), torch.Generator().manual_seed(0) excluded
    return (
        isinstance(call.func, cst.Attribute)
        and call.func.attr.value == "seed_everything"
        and dotted(call.func) is not None
    )
