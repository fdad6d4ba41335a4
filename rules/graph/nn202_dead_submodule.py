from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.graph import GraphContext, is_leaf
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, GraphRule, Invalid, Valid

from ._dead import dead_regions, region_exempt


class DeadSubmodule(GraphRule):
    """## What it does
    Finds submodules and parameters the traced `forward` never uses: never called at all,
    or called but with their output thrown away before it reaches the model's output —
    the graph-level twin of NN102 that also catches overwritten results and branches
    that cannot run.

    ## Why is this bad?
    The layer's weights are trained by nothing (or their output is discarded), so the
    model is not the one that was designed. The classic copy-paste bug
    `x = self.conv1(x); x = self.conv2(inp)` silently drops `conv1` while everything
    still runs and trains.

    ## Example
    ```python
    def forward(self, inp):
        x = self.conv1(inp)
        x = self.conv2(inp)  # conv1's output is overwritten unread
        return self.head(x.flatten(1))
    ```

    ## Use instead
    ```python
    def forward(self, inp):
        x = self.conv1(inp)
        x = self.conv2(x)
        return self.head(x.flatten(1))
    ```

    Not reported: modules switched off by a constructor flag (`if self.use_bn:`), used
    only by another method (`generate`, `encode`), shared trunks, residual blocks, and
    items of a container that is partly used on purpose.

    ## References
    - Seed article, "Silent bugs in neural network code": the conv1/conv2 copy-paste net.
    - PyTorch forums, "Unused parameters" / DDP `find_unused_parameters`.
    """

    code = "NN202"
    name = "dead-submodule"
    severity = Severity.WARNING

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class Inception(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.branches = nn.ModuleList([nn.Conv2d(3, 4, k, padding=k // 2) for k in (1, 3, 5)])
                    self.head = nn.Linear(4, 10)

                def forward(self, x):
                    outs = []
                    for branch in self.branches:
                        outs.append(branch(x))
                    return self.head(torch.stack(outs).sum(0).mean((2, 3)))
            """,
            note="the return after the loop over parallel branches",
        ),
        Valid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self, use_bn=False):
                    super().__init__()
                    self.conv = nn.Conv2d(3, 8, 3, padding=1)
                    self.bn = nn.BatchNorm2d(8)
                    self.use_bn = use_bn
                    self.head = nn.Linear(8, 4)

                def forward(self, x):
                    x = self.conv(x)
                    if self.use_bn:
                        x = self.bn(x)
                    return self.head(x.relu().mean((2, 3)))
            """,
            note="switched off by a constructor flag",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Block(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(16, 16)
                    self.fc2 = nn.Linear(16, 16)

                def forward(self, x):
                    return x + self.fc2(torch.relu(self.fc1(x)))

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.trunk = Block()
                    self.head_a = nn.Linear(16, 3)
                    self.head_b = nn.Linear(16, 2)
                    self.decoder = nn.Linear(16, 16)

                def forward(self, x):
                    h = self.trunk(x)
                    return self.head_a(h), self.head_b(h)

                def decode(self, h):
                    return self.decoder(h)
            """,
            note="residual block, shared trunk with two heads, a module used by another method",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = nn.Linear(8, 16)
                    self.head = nn.Linear(16, 4)

                def forward(self, x, return_embed=False):
                    embed = self.body(x).relu()
                    if return_embed:
                        return embed
                    return self.head(embed)

            model = Net()
            embed = model(torch.randn(2, 8), return_embed=True)
            """,
            note="the early return is a flag the call chose (`return_embed=True`); the head runs by default",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
                    self.conv2 = nn.Conv2d(3, 16, 3, padding=1)
                    self.head = nn.Linear(16, 10)

                def forward(self, inp):
                    x = self.conv1(inp)
                    x = self.conv2(inp)
                    return self.head(x.relu().mean((2, 3)))
            """,
            line=11,
            contains="conv1",
        ),
        Invalid(
            """
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(8, 16)
                    self.drop = nn.Dropout(0.5)
                    self.fc2 = nn.Linear(16, 2)

                def forward(self, x):
                    return self.fc2(self.fc1(x).relu())
            """,
            line=7,
            contains="drop",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Inception(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.branches = nn.ModuleList([nn.Conv2d(3, 4, k, padding=k // 2) for k in (1, 3, 5)])
                    self.head = nn.Linear(4, 10)

                def forward(self, x):
                    outs = []
                    for branch in self.branches:
                        outs.append(branch(x))
                        return self.head(torch.stack(outs).sum(0).mean((2, 3)))
            """,
            line=14,
            contains="branches.1",
        ),
    ]

    def check(self, ctx: GraphContext) -> Iterator[Finding]:
        if ctx.failure is not None:
            return
        yield from self._never_run(ctx)
        yield from self._discarded(ctx)

    def _never_run(self, ctx: GraphContext) -> Iterator[Finding]:
        executed = ctx.executed
        used_params = ctx.params_read
        reported: list[str] = []
        for q, mod in ctx.modules.items():
            if not q or q in executed or any(q.startswith(r + ".") for r in reported):
                continue
            prefix = q + "."
            if any(e.startswith(prefix) for e in executed) or any(p.startswith(prefix) for p in used_params):
                continue
            parent = q.rsplit(".", 1)[0] if "." in q else ""
            last = q.rsplit(".", 1)[-1]
            if (
                last.isdigit()
                or parent
                and parent in ctx.modules
                and _is_container(ctx.modules[parent])
                and any(e.startswith(parent + ".") for e in executed)
            ):
                exit_line = (
                    _loop_exits_early(ctx, parent)
                    if last.isdigit() and parent not in reported and any(e.startswith(parent + ".") for e in executed)
                    else None
                )
                if exit_line is not None:
                    reported.append(parent)
                    yield Finding(
                        f"{ctx.describe_module(q)} is never executed by {ctx.model_name}.forward: the loop over "
                        f"{parent} leaves at its first item (the {exit_line[1]} at line {exit_line[0]} is inside the "
                        f"for body), so only {parent}.0 runs. Move the {exit_line[1]} out of the loop",
                        line=exit_line[0],
                        module=q,
                        evidence={"reason": "loop exits early", "container": parent},
                    )
                continue  # a container used in part (`self.layers[:n]`): deliberate
            if not list(mod.parameters()) and not list(mod.children()) and not _is_layer(mod):
                continue
            attr = _attr(q)
            why = self._exempt(ctx, attr)
            if why is None:
                continue
            reported.append(q)
            n_params = sum(p.numel() for p in mod.parameters())
            yield Finding(
                f"{ctx.describe_module(q)} is never executed by {ctx.model_name}.forward{why}; "
                f"its {n_params:,} parameters get no gradient. Use it in forward or delete it",
                module=q,
                evidence={"parameters": n_params, "reason": "never executed"},
            )
        for q, p in ctx.model.named_parameters():
            owner = q.rsplit(".", 1)[0] if "." in q else ""
            if q in used_params or owner not in executed or any(q.startswith(r + ".") for r in reported):
                continue
            owner_mod = ctx.modules.get(owner)
            if owner_mod is None or _is_leaf_with(owner_mod, q):
                continue
            why = self._exempt(ctx, q.rsplit(".", 1)[-1])
            if why is None:
                continue
            yield Finding(
                f"parameter {q} {tuple(p.shape)} is never read by {ctx.model_name}.forward{why}; it gets no gradient",
                module=q,
                evidence={"reason": "never read"},
            )

    @staticmethod
    def _exempt(ctx: GraphContext, attr: str) -> str | None:
        """None when the source shows the module is unused on purpose; else a remark for
        the message."""
        refs = [r for r in ctx.source.refs.get(attr, []) if r.function != "__init__"]
        if not refs:
            return " (nothing but __init__ refers to it)"
        if any(r.function != "forward" for r in refs):
            return None  # another method uses it (generate, encode, a helper forward calls)
        if any(r.conditional for r in refs):
            return None  # behind a flag
        if any(ctx.source.after_flag_return(r.line) for r in refs):
            return None  # after `if return_embed: return embed`: the call chose the flag
        return f" although forward refers to it at line {refs[0].line} (an early return?)"

    def _discarded(self, ctx: GraphContext) -> Iterator[Finding]:
        for region in dead_regions(ctx):
            mods = [n for n in region if n.op == "call_module"]
            if not mods or region_exempt(ctx, region):
                continue
            first = mods[0]
            others = [n.target for n in mods[1:]]
            also = f" (and {', '.join(others)} after it)" if others else ""
            yield Finding(
                f"{ctx.describe_module(first.target)} runs in forward{also} but its output never reaches the "
                f"output of {ctx.model_name}: it is overwritten or unused (a copy-paste slip such as "
                "`x = self.conv2(inp)` instead of `self.conv2(x)`?)",
                line=first.line,
                module=first.target,
                evidence={"reason": "output discarded", "modules": [n.target for n in mods]},
            )


def _attr(q: str) -> str:
    parts = [p for p in q.split(".") if not p.isdigit()]
    return parts[-1] if parts else q


def _is_container(mod) -> bool:
    import torch.nn as nn

    return isinstance(mod, (nn.ModuleList, nn.ModuleDict, nn.Sequential))


def _is_layer(mod) -> bool:
    """Parameter-free modules worth reporting when unused: dropout, activations, pooling."""
    import torch.nn as nn

    return isinstance(
        mod,
        (
            nn.Dropout,
            nn.modules.dropout._DropoutNd,
            nn.ReLU,
            nn.GELU,
            nn.Sigmoid,
            nn.Tanh,
            nn.Softmax,
            nn.LogSoftmax,
            nn.modules.pooling._MaxPoolNd,
            nn.modules.pooling._AvgPoolNd,
        ),
    )


def _is_leaf_with(mod, q: str) -> bool:
    return is_leaf(mod)


def _loop_exits_early(ctx: GraphContext, container: str) -> tuple[int, str] | None:
    """(line, 'return'|'break') when a ``for … in self.<container>`` loop in the file has an
    unconditional return/break directly in its body: only the first item ever runs."""
    import ast

    tree = ctx.source.tree
    if tree is None:
        return None
    attr = container.rsplit(".", 1)[-1]
    for node in ast.walk(tree):
        if not isinstance(node, ast.For):
            continue
        it = node.iter
        while isinstance(it, ast.Call) and it.args:  # enumerate(self.x), zip(self.x, ...)
            it = it.args[0]
        if not (isinstance(it, ast.Attribute) and it.attr == attr):
            continue
        for stmt in node.body:
            if isinstance(stmt, (ast.Return, ast.Break)):
                return stmt.lineno, "return" if isinstance(stmt, ast.Return) else "break"
    return None
