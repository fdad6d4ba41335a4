from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.graph import GraphContext, describe_module, expected_input, short_shape
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, GraphRule, Invalid, Valid


def _sizes(values: list[int], nd: int = 2) -> str:
    return ", ".join("×".join([str(v)] * nd) for v in values)


class ShapeMismatch(GraphRule):
    """## What it does
    Runs the model's forward on an example input (on the meta device: shapes only, no
    memory) and, when it fails on shapes, names the layer, the line that creates it, the
    shape that arrived and what the layer expects, e.g.
    `fc1 = Linear(9216→128) got (8, 1600)`. When nnlint searched the input size itself
    (image models), it also says which input sizes would fit.

    ## Why is this bad?
    The model crashes on its first batch, or — worse — was written for a different input
    size than the data it will get (a `Linear` sized for 28×28 images fed 32×32 ones).
    Torch's own message (`mat1 and mat2 shapes cannot be multiplied (8x1600 and 9216x128)`)
    names neither the layer nor the line.

    ## Example
    ```python
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 128)
            self.fc2 = nn.Linear(256, 10)  # expects 256 features, gets 128

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))
    ```

    ## Use instead
    ```python
            self.fc2 = nn.Linear(128, 10)
    ```

    ## References
    - PyTorch docs, `torch.nn.Linear` (in_features must equal the input's last dimension).
    - Seed article, "insane input to output shapes": the classic MNIST `Linear(9216, 128)`.
    """

    code = "NN201"
    name = "shape-mismatch"
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(784, 128)
                    self.fc2 = nn.Linear(128, 10)

                def forward(self, x):
                    return self.fc2(torch.relu(self.fc1(x)))
            """,
            note="consistent widths",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(3, 8, 3)
                    self.pool = nn.AdaptiveAvgPool2d(1)
                    self.fc = nn.Linear(8, 10)

                def forward(self, x):
                    return self.fc(self.pool(self.conv(x).relu()).flatten(1))
            """,
            note="any input size fits thanks to the adaptive pool",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(784, 128)
                    self.fc2 = nn.Linear(256, 10)

                def forward(self, x):
                    return self.fc2(torch.relu(self.fc1(x)))
            """,
            line=8,
            contains="fc2 = Linear(256→10) got (8, 128)",
        ),
        Invalid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class MnistNet(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(1, 32, 3)
                    self.conv2 = nn.Conv2d(32, 64, 3)
                    self.fc1 = nn.Linear(9000, 128)
                    self.fc2 = nn.Linear(128, 10)

                def forward(self, x):
                    x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
                    return self.fc2(F.relu(self.fc1(x.flatten(1))))
            """,
            line=9,
            contains="fc1 = Linear(9000→128) got (8, 9216)",
        ),
    ]

    def check(self, ctx: GraphContext) -> Iterator[Finding]:
        f = ctx.failure
        if f is None or f.kind != "shape":
            return
        got = ", ".join(short_shape(s) for s in f.in_shapes) or "?"
        evidence = {"got": [list(s) for s in f.in_shapes], "error": f.message.splitlines()[0] if f.message else ""}
        if f.module:
            mod = ctx.module(f.module)
            msg = f"{describe_module(f.module, mod)} got {got}"
            expects = expected_input(mod)
            if expects:
                msg += f"; it {expects}"
            # "in_features=N would fit" only when the input is declared or read from the file:
            # on a guessed input N is a guess too
            hint = _fix_hint(mod, f.in_shapes) if getattr(ctx, "input_source", "declared") != "guessed" else ""
            if hint:
                msg += f" ({hint})"
            line = ctx.module_line(f.module) or f.line
            if f.line and f.line != line:
                msg += f"; called at line {f.line}"
        else:
            first = f.message.splitlines()[0] if f.message else f.exc_type
            msg = f"{f.op or 'an operation'}() on {got} failed: {first}"
            line = f.line
        msg += f"; example input {ctx.inputs_desc}" if ctx.inputs_desc else ""
        search = ctx.input_search or {}
        fits = search.get("fits") or []
        if search.get("common") and search.get("exhausted"):
            common = sorted(set(search["common"]))
            msg += f"; none of the common input sizes ({', '.join(map(str, common))}) fits"
        if fits:
            first_in = next((ctx.nodes[i].shape for i in ctx.placeholders if ctx.nodes[i].shape), None)
            msg += f"; input sizes that fit: {_sizes(fits, max(1, len(first_in) - 2) if first_in else 2)}"
            evidence["fits"] = fits
        elif search.get("exhausted") or search.get("declared"):
            msg += "; no square input size from 8 to 512 fits"
        yield Finding(msg, line=line, module=f.module, evidence=evidence)


def _fix_hint(mod, in_shapes) -> str:
    import torch.nn as nn

    if not in_shapes:
        return ""
    shape = in_shapes[0]
    if isinstance(mod, nn.Linear) and shape and shape[-1] != mod.in_features:
        return f"in_features={shape[-1]} would fit"
    if isinstance(mod, nn.modules.conv._ConvNd) and len(shape) > 1 and shape[1] != mod.in_channels:
        return f"in_channels={shape[1]} would fit"
    if isinstance(mod, nn.modules.batchnorm._NormBase) and len(shape) > 1 and shape[1] != mod.num_features:
        return f"num_features={shape[1]} would fit"
    return ""
