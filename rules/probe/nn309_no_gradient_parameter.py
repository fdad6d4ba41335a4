from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.probe import Extra, ParamStat, ProbeContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, ProbeRule, Valid


class NoGradientParameter(ProbeRule):
    """## What it does
    After one backward pass, reports every `requires_grad` parameter that the forward used
    (passed to an operation, directly or through `.data`) whose gradient is `None` (not
    connected to the loss) or exactly zero everywhere. Parameters the forward never
    touches are NN202's business; zero
    gradients that come only from a deliberate zero-init downstream (zero-init-residual,
    ReZero) are recognised by re-measuring with those weights perturbed, and not reported.

    ## Why is this bad?
    The optimizer never updates these weights: part of the model silently does not train.
    Common causes: a `.detach()` or `.data` on the path, a `torch.no_grad()` block in
    `forward`, a non-differentiable step (`argmax`, `.item()`, NumPy), or constant-filled
    weights whose units cancel each other's gradients. Zero gradients around a ReLU layer
    that is dead for every sample are NN305's finding and are not repeated here.

    ## Example
    ```python
    def forward(self, x):
        h = F.relu(self.fc1(x))
        return self.fc2(h.detach())      # fc1 never gets a gradient
    ```

    ## Use instead
    ```python
    def forward(self, x):
        h = F.relu(self.fc1(x))
        return self.fc2(h)
    ```

    ## References
    - Karpathy, "A Recipe for Training Neural Networks" (2019): "use backprop to chart
      dependencies".
    - Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour" (2017):
      zero-init of the last BatchNorm in each residual branch (exempted here).
    - PyTorch docs, "Autograd mechanics: Excluding subgraphs from backward".
    """

    code = "NN309"
    name = "no-gradient-parameter"
    severity = Severity.ERROR
    # when the output is the same for every sample, the one finding at the output layer
    # names both the collapse and the parameters it leaves untrained
    supersedes = ("NN311",)
    needs = frozenset({Extra.ZERO_INIT_CHECK})

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
                    self.bn1 = nn.BatchNorm2d(c)
                    self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
                    self.bn2 = nn.BatchNorm2d(c)
                    nn.init.zeros_(self.bn2.weight)

                def forward(self, x):
                    out = torch.relu(self.bn1(self.conv1(x)))
                    return torch.relu(x + self.bn2(self.conv2(out)))

            class ResNet(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.stem = nn.Conv2d(3, 8, 3, padding=1)
                    self.block = Block(8)
                    self.fc = nn.Linear(8, 10)

                def forward(self, x):
                    return self.fc(self.block(torch.relu(self.stem(x))).mean((2, 3)))

            def nnlint_examples():
                return [{"model": ResNet(), "inputs": torch.randn(4, 3, 8, 8)}]
            """,
            note="zero-init-residual: zero gradient only at step 0, by design",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self, use_aux=False):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 32)
                    self.aux = nn.Linear(32, 5)
                    self.head = nn.Linear(32, 10)
                    self.use_aux = use_aux

                def forward(self, x):
                    h = torch.relu(self.fc1(x))
                    if self.use_aux:
                        return self.head(h), self.aux(h)
                    return self.head(h)

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            note="a module the forward does not call is NN202's business",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Finetune(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.backbone = nn.Linear(20, 32)
                    self.head = nn.Linear(32, 10)
                    for p in self.backbone.parameters():
                        p.requires_grad_(False)

                def forward(self, x):
                    return self.head(torch.relu(self.backbone(x)))

            def nnlint_examples():
                return [{"model": Finetune(), "inputs": torch.randn(8, 20)}]
            """,
            note="frozen on purpose",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Bag(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.emb = nn.Embedding(1000, 16, padding_idx=0)
                    self.fc = nn.Linear(16, 3)

                def forward(self, idx):
                    return self.fc(self.emb(idx).mean(1))

            def nnlint_examples():
                return [{"model": Bag(), "inputs": torch.randint(0, 1000, (8, 5))}]
            """,
            note="embedding: most rows get no gradient, the table as a whole does",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(1, 8, 3)
                    self.conv2 = nn.Conv2d(1, 8, 3)
                    self.fc = nn.Linear(8, 10)

                def forward(self, inp):
                    x = F.relu(self.conv1(inp))
                    x = F.relu(self.conv2(inp))
                    return self.fc(x.mean((2, 3)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(4, 1, 12, 12)}]
            """,
            note="conv1's output is overwritten unread: NN202 (and NN101) report it at its line",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 32)
                    self.fc2 = nn.Linear(32, 10)
                    nn.init.constant_(self.fc1.bias, -100.0)

                def forward(self, x):
                    return self.fc2(F.relu(self.fc1(x)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            note="a ReLU layer dead for every sample zeroes the gradients around it: NN305's finding",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(16, 4)
                    self.dummy_param = nn.Parameter(torch.empty(0))

                def forward(self, x):
                    return self.fc(x.to(self.dummy_param.device))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 16)}]
            """,
            note="an empty parameter read only for its .device: not used by any operation",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 32)
                    self.fc2 = nn.Linear(32, 10)

                def forward(self, x):
                    h = F.relu(self.fc1(x))
                    return self.fc2(h.detach())

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            line=8,
            contains="detach",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.scale = nn.Linear(20, 20)
                    self.fc = nn.Linear(20, 10)

                def forward(self, x):
                    w = self.scale.weight.data
                    return self.fc(x @ w)

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            line=7,
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.embed = nn.Linear(20, 16)
                    self.cls = nn.Parameter(torch.randn(1, 1, 16))
                    self.mix = nn.Linear(16, 16)
                    self.gamma = nn.Parameter(torch.ones(1, 1, 16))
                    self.head = nn.Linear(16, 10)

                def forward(self, x):
                    h = torch.cat((self.cls.expand(len(x), -1, -1), self.embed(x)), 1)
                    h = torch.cumsum(self.mix(h * self.gamma), 1)
                    return self.head(h[:, 0])

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 5, 20)}]
            """,
            line=11,
            contains="same for every sample",
        ),
    ]

    def check(self, ctx: ProbeContext) -> Iterator[Finding]:
        by_module: dict[str, list] = {}
        for p in ctx.params.values():
            # `used`: the forward passed it (or its .data) to an op; parameters it never
            # touches are NN202's business
            if not p.requires_grad or not p.used or p.zero_grad_explained:
                continue
            if any(p.module == m or p.module.startswith(m + ".") for m in ctx.discarded_modules):
                continue  # its output is discarded: NN202 says so at the right line
            if p.grad in ("none", "zero"):
                by_module.setdefault(p.module, []).append(p)
        # a ReLU dead for every sample zeroes every gradient that has to cross it (and the
        # weight gradient of the layer it feeds): NN305 reports that at its layer already
        dead_layer = any(a.dead_frac is not None and a.dead_frac >= 0.99 for a in ctx.activations)
        constant = [p.name for p in ctx.params.values() if p.constant]
        if not dead_layer and not constant and _output_collapsed(ctx):
            # the output is the same for every sample: one cause (the input does not reach
            # it) zeroes every gradient before the cut, reported once at the output layer
            cut = {m: [p for p in ps if p.grad == "zero"] for m, ps in by_module.items()}
            cut = {m: ps for m, ps in cut.items() if ps}
            if cut:
                yield _one_cut(ctx, cut)
                by_module = {m: [p for p in ps if p.grad != "zero"] for m, ps in by_module.items()}
        for module, ps in by_module.items():
            none = [p.name for p in ps if p.grad == "none"]
            zero = [p.name for p in ps if p.grad == "zero" and not dead_layer]
            if not none and not zero:
                continue
            where = module or ctx.model_name
            if none:
                msg = (
                    f"{', '.join(none)} got no gradient (None) although {where} ran in forward: it is cut off from "
                    "the loss — look for .detach(), .data, torch.no_grad(), or a non-differentiable step "
                    "(argmax, .item(), NumPy) on its path"
                )
            else:
                msg = f"{', '.join(zero)} got an all-zero gradient: it will never be updated"
                if constant:
                    msg += (
                        f" — constant-filled weights ({', '.join(constant[:3])}) make their units identical, "
                        "so the gradients reaching this layer cancel exactly; initialise them randomly"
                    )
                else:
                    msg += (
                        " — check for dead units, a multiplication by zero or a constant output on its path, "
                        "or a slice that drops what it computes (e.g. only token 0 is kept)"
                    )
            yield Finding(
                msg,
                module=module or None,
                evidence={
                    "none": none,
                    "zero": zero,
                    "weight_norm": {p.name: p.weight_norm for p in ps},
                    "constant_weights": constant[:10],
                },
            )


def _output_collapsed(ctx: ProbeContext) -> bool:
    """The output is the same for every sample of a batch of different inputs (NN311's test)."""
    out = ctx.output
    if out is None or out.nonfinite or out.batch_std_max is None or ctx.input_varies is False:
        return False
    return out.batch_std_max <= 1e-5 * max(out.mean_abs, 1e-12)


def _one_cut(ctx: ProbeContext, cut: dict[str, list[ParamStat]]) -> Finding:
    """One finding for every all-zero gradient left by an output that ignores the input."""
    names = [p.name for ps in cut.values() for p in ps]
    # the model's own parameters (module "") are named one by one
    modules = [m or ", ".join(p.name for p in ps) for m, ps in cut.items()]
    shown = ", ".join(modules[:4]) + (f" and {len(modules) - 4} more" if len(modules) > 4 else "")
    where = ctx.final_layer or ctx.model_name
    return Finding(
        f"the output is the same for every sample in the batch and {len(names)} parameters in "
        f"{len(modules)} module{'s' if len(modules) > 1 else ''} ({shown}) got an all-zero gradient: the output of {where} depends "
        "neither on the input nor on them, so they will never be updated — find where the path from the "
        "input to the output is cut (a slice, mask or overwrite that keeps only input-independent values)",
        module=ctx.final_layer,
        evidence={
            "zero": names,
            "modules": list(cut),
            "batch_std_max": ctx.output.batch_std_max if ctx.output else None,
            "mean_abs": ctx.output.mean_abs if ctx.output else None,
        },
    )
