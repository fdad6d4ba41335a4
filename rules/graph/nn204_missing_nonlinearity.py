from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.graph import GraphContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, GraphRule, Invalid, Valid
from nnlint.vocab import LINEAR_CONV_FUNCTIONS


class MissingNonlinearity(GraphRule):
    """## What it does
    Finds two affine layers (`Linear`, `Conv*d`) composed with no nonlinearity and no
    normalization between them — only reshapes, dropout or average pooling.

    ## Why is this bad?
    A linear map of a linear map is one linear map: the second layer adds parameters and
    compute but no expressive power, and the network is shallower than it looks. Usually
    an activation was forgotten (`nn.Sequential(nn.Linear(784, 256), nn.Linear(256, 10))`).

    ## Example
    ```python
    self.net = nn.Sequential(
        nn.Linear(784, 256),
        nn.Linear(256, 10),
    )
    ```

    ## Use instead
    ```python
    self.net = nn.Sequential(
        nn.Linear(784, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )
    ```

    Not reported: an upsampling `ConvTranspose`/`Upsample` feeding a conv (U-Net), q/k/v
    projections combined by a matmul (attention), a normalization in between, depthwise +
    pointwise convolutions (separable convs), and low-rank bottlenecks (LoRA-style
    `Linear(512, 8)` then `Linear(8, 512)`).

    ## References
    - Goodfellow, Bengio, Courville, *Deep Learning*, §6.3 (hidden units need a nonlinearity).
    - Seed article, "Silent bugs in neural network code" (missing activations).
    """

    code = "NN204"
    name = "missing-nonlinearity"
    severity = Severity.WARNING

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class Attention(nn.Module):
                def __init__(self, d=16):
                    super().__init__()
                    self.q = nn.Linear(d, d)
                    self.k = nn.Linear(d, d)
                    self.v = nn.Linear(d, d)
                    self.out = nn.Linear(d, d)
                    self.norm = nn.LayerNorm(d)
                    self.fc = nn.Linear(d, 4)

                def forward(self, x):
                    att = torch.softmax(self.q(x) @ self.k(x).transpose(-2, -1), dim=-1)
                    h = self.out(att @ self.v(x))
                    return self.fc(self.norm(h))
            """,
            note="q/k/v combined by matmul; a norm between out and fc",
        ),
        Valid(
            """
            import torch.nn as nn

            class Up(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
                    self.conv = nn.Conv2d(4, 4, 3, padding=1)
                    self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
                    self.pw = nn.Conv2d(4, 8, 1)

                def forward(self, x):
                    x = self.conv(self.up(x)).relu()
                    return self.pw(self.dw(x))
            """,
            note="U-Net upsampling and a depthwise-separable conv",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class SRNet(nn.Module):
                def __init__(self, nf=16):
                    super().__init__()
                    self.conv_first = nn.Conv2d(3, nf, 3, padding=1)
                    self.trunk = nn.Sequential(nn.Conv2d(nf, nf, 3, padding=1), nn.LeakyReLU(0.2),
                                               nn.Conv2d(nf, nf, 3, padding=1), nn.LeakyReLU(0.2))
                    self.conv_last = nn.Conv2d(nf, 3, 3, padding=1)

                def forward(self, x):
                    feat = self.conv_first(x)
                    feat = feat + self.trunk(feat)
                    return self.conv_last(F.leaky_relu(feat, 0.2))
            """,
            note="ESRGAN: the first conv has no activation by design, its output also feeds the long skip",
        ),
        Valid(
            """
            import torch.nn as nn

            class Stage(nn.Module):
                def __init__(self, cin=8, cout=16):
                    super().__init__()
                    self.down = nn.Conv2d(cin, cout, 2, stride=2)
                    self.dw = nn.Conv2d(cout, cout, 7, padding=3, groups=cout)
                    self.norm = nn.BatchNorm2d(cout)
                    self.pw1 = nn.Conv2d(cout, 4 * cout, 1)
                    self.act = nn.GELU()
                    self.pw2 = nn.Conv2d(4 * cout, cout, 1)

                def forward(self, x):
                    x = self.down(x)
                    return self.pw2(self.act(self.pw1(self.norm(self.dw(x)))))
            """,
            note="ConvNeXt: a downsample conv followed by a depthwise 7×7 conv",
        ),
        Valid(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class PreActNet(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.stem = nn.Conv2d(3, 8, 3, padding=1)
                    self.conv1 = nn.Conv2d(8, 16, 3, padding=1, stride=2)
                    self.bn1 = nn.BatchNorm2d(16)
                    self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
                    self.bn2 = nn.BatchNorm2d(16)
                    self.shortcut = nn.Conv2d(8, 16, 1, stride=2)

                def forward(self, x):
                    x = self.stem(x)
                    out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
                    return F.relu(out + self.shortcut(x))
            """,
            note="a 1×1 linear projection shortcut summed with the main path",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn

            class MLP(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.net = nn.Sequential(
                        nn.Flatten(),
                        nn.Linear(784, 256),
                        nn.Dropout(0.2),
                        nn.Linear(256, 10),
                    )

                def forward(self, x):
                    return self.net(x)
            """,
            line=10,
            contains="net.1",
        ),
    ]

    def check(self, ctx: GraphContext) -> Iterator[Finding]:
        if ctx.failure is not None:
            return
        for n in ctx.nodes:
            if not _affine(ctx, n):
                continue
            prev, between = ctx.producer_through_pass(n)
            if prev is None or not _affine(ctx, prev):
                continue
            a, b = (
                ctx.module(prev.target if prev.op == "call_module" else None),
                ctx.module(n.target if n.op == "call_module" else None),
            )
            if _separable(a, b) or _bottleneck(a, b) or _grouped(b):
                continue
            if _feeds_other_path(ctx, prev, between, n) or _projection_shortcut(ctx, n, b):
                continue
            via = ", ".join(sorted({p.module_type or p.target for p in between}))
            name_a = (
                ctx.describe_module(prev.target) if a is not None else f"{prev.target}() in {prev.scope or 'forward'}"
            )
            name_b = ctx.describe_module(n.target) if b is not None else f"{n.target}() in {n.scope or 'forward'}"
            yield Finding(
                f"{name_b} directly follows {name_a}"
                + (f" (only {via} between)" if via else "")
                + " with no nonlinearity or normalization: the two collapse into one linear map; put an activation "
                "(e.g. nn.ReLU()) between them",
                line=ctx.best_line(n),
                module=n.target if b is not None else n.scope,
                evidence={"first": prev.target, "second": n.target, "between": [p.target for p in between]},
            )


def _affine(ctx: GraphContext, n) -> bool:
    if n.op == "call_module":
        return ctx.kind(n) == "affine"
    return n.op in ("call_function", "call_method") and n.target in LINEAR_CONV_FUNCTIONS


def _separable(a, b) -> bool:
    import torch.nn as nn

    if isinstance(a, nn.modules.conv._ConvNd) and isinstance(b, nn.modules.conv._ConvNd):
        if a.groups > 1 and a.groups == a.in_channels and all(k == 1 for k in b.kernel_size):
            return True
        if b.groups > 1 and b.groups == b.in_channels and all(k == 1 for k in a.kernel_size):
            return True
    return False


def _grouped(b) -> bool:
    """A conv followed by a depthwise or grouped conv (ConvNeXt's downsample conv, then the
    stage's depthwise 7×7): the grouped conv mixes only within groups, the pair does not
    collapse into one ordinary conv."""
    import torch.nn as nn

    return isinstance(b, nn.modules.conv._ConvNd) and b.groups > 1


def _feeds_other_path(ctx: GraphContext, prev, between, n) -> bool:
    """The first layer's output also feeds a skip/residual path (ESRGAN's first conv, whose
    output is also added back after the trunk): it is a feature extractor by design."""
    chain = [prev, *reversed(between)]
    for i, node in enumerate(chain):
        nxt = chain[i + 1] if i + 1 < len(chain) else n
        if any(c.idx != nxt.idx for c in ctx.consumers(node.idx)):
            return True
    return False


def _projection_shortcut(ctx: GraphContext, n, b) -> bool:
    """A 1×1 (or Linear) projection whose output is summed with another path: a linear
    projection shortcut (ResNet's downsample) is linear on purpose."""
    import torch.nn as nn

    one_by_one = isinstance(b, nn.Linear) or (
        isinstance(b, nn.modules.conv._ConvNd) and all(k == 1 for k in b.kernel_size)
    )
    if not one_by_one:
        return False
    for c in ctx.consumers(n.idx):
        if (
            c.op in ("call_function", "call_method")
            and str(c.target).rstrip("_") in ("add", "iadd", "__add__", "sub")
            and len(ctx.tensor_inputs(c)) >= 2
        ):
            return True
    return False


def _width(m, out: bool) -> int | None:
    import torch.nn as nn

    if isinstance(m, nn.Linear):
        return m.out_features if out else m.in_features
    if isinstance(m, nn.modules.conv._ConvNd):
        return m.out_channels if out else m.in_channels
    return None


def _bottleneck(a, b) -> bool:
    """A low-rank factorisation (LoRA, factorized embeddings) on purpose."""
    a_in, a_out, b_out = _width(a, False), _width(a, True), _width(b, True)
    if a_in is None or a_out is None or b_out is None:
        return False
    return a_out * 2 <= min(a_in, b_out)
