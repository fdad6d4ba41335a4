from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import libcst as cst

from nnlint.analysis.syntax import line_of
from nnlint.contexts.source import FunctionInfo, SourceContext, dotted
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

from ._calls import method_name, receiver_name, walk
from ._loops import Analysis, Assignment, analysis

#: torch.nn classes that own no parameters: replacing a layer by one of them leaves the
#: optimizer nothing to miss
_PARAMETER_FREE = re.compile(
    r"^(Identity|Flatten|Unflatten|Dropout\w*|AlphaDropout|FeatureAlphaDropout|\w*Pool\d?d|Upsample\w*|"
    r"PixelShuffle|PixelUnshuffle|ChannelShuffle|\w*Pad\dd|Fold|Unfold|CosineSimilarity|PairwiseDistance|"
    r"ReLU6?|LeakyReLU|RReLU|GELU|SiLU|Mish|ELU|CELU|SELU|GLU|Tanh|Tanhshrink|Sigmoid|LogSigmoid|Hardtanh|"
    r"Hardsigmoid|Hardswish|Hardshrink|Softshrink|Softplus|Softsign|Softmax\w*|LogSoftmax|Threshold|"
    r"\w*Loss)$"
)


class OptimizerMissesParameters(SourceRule):
    """## What it does
    Flags a layer that is added to or replaced in a model after the optimizer was built
    from that model's `.parameters()`, in the same function (or at module level): the
    classic fine-tuning slip `optimizer = SGD(model.parameters()); model.fc =
    nn.Linear(512, 10)`. It stays silent when the new layer's parameters are handed over
    with `optimizer.add_param_group(...)`, when an optimizer over the model is built again
    after the change, when the new layer is frozen (`requires_grad`), and when the new
    value has no parameters (`nn.Identity()`, an activation).

    The dynamic twin: `nnlint.check(model, inputs, optimizer=opt)` (or a list of
    optimizers, e.g. a GAN's two) compares parameter identities and reports every
    trainable module whose parameters are in no param group, including an optimizer built
    from a subset of the model.

    ## Why is this bad?
    An optimizer keeps references to the parameter tensors it was given. A layer created
    afterwards has new tensors the optimizer has never seen: `loss.backward()` fills their
    `.grad`, but `step()` never applies it, so the new head stays at its random
    initialization while the rest trains. Training runs without an error and the model is
    quietly bad (for a new classifier head: near chance accuracy).

    ## Example
    ```python
    model = torchvision.models.resnet18(weights="DEFAULT")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    model.fc = nn.Linear(model.fc.in_features, 10)
    ```

    ## Use instead
    ```python
    model = torchvision.models.resnet18(weights="DEFAULT")
    model.fc = nn.Linear(model.fc.in_features, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    ```
    or keep the optimizer and add the new layer:
    `optimizer.add_param_group({"params": model.fc.parameters()})`.

    ## References
    - PyTorch docs, `torch.optim` "Constructing it": "If you need to move a model to GPU
      via .cuda(), please do so before constructing optimizers for it"
      (https://pytorch.org/docs/stable/optim.html), and `Optimizer.add_param_group`.
    - PyTorch forums, "Optimizer does not update weights of a replaced layer"
      (fine-tuning threads: the head replaced after the optimizer was built).
    - PyTorch tutorial "Finetuning Torchvision Models": reshape the model, then "create
      the optimizer" with the parameters to update.
    """

    code = "NN408"
    name = "optimizer-misses-parameters"
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn
            import torchvision

            model = torchvision.models.resnet18()
            model.fc = nn.Linear(512, 10)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
            for x, y in loader:
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
            """,
            note="the head is replaced before the optimizer is built",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            model.fc = nn.Linear(512, 10)
            optimizer.add_param_group({"params": model.fc.parameters()})
            optimizer.step()
            """,
            note="add_param_group hands the new layer over",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            train(model, optimizer)
            model.fc = nn.Linear(512, 10)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
            train(model, optimizer)
            """,
            note="the optimizer is re-created after the change",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            model.aux_head = nn.Linear(512, 10)
            model.aux_head.requires_grad_(False)
            optimizer.step()
            """,
            note="the new layer is frozen on purpose",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            model.fc = nn.Identity()
            optimizer.step()
            """,
            note="the replacement has no parameters (feature extractor)",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            opt_g = torch.optim.Adam(G.parameters(), lr=2e-4)
            D.head = nn.Linear(128, 1)
            opt_d = torch.optim.Adam(D.parameters(), lr=2e-4)
            opt_g.step(); opt_d.step()
            """,
            note="GAN: two optimizers, the discriminator's is built after its change",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            def build(model):
                optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
                return optimizer

            def main():
                model = Net()
                model.fc = nn.Linear(512, 10)
                optimizer = build(model)
                optimizer.step()
            """,
            note="a different function: the change happens before the optimizer is built",
        ),
        Valid(
            """
            import torch

            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            model.training = False
            model.name = "resnet"
            model.fc.weight.data = torch.zeros(10, 512)
            optimizer.step()
            """,
            note="assigning plain attributes or a parameter's data keeps the same tensors",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            model.encoder = nn.DataParallel(model.encoder)
            optimizer.step()
            """,
            note="a wrapper around the same layer keeps its parameters",
        ),
    ]

    INVALID = [
        Invalid(
            """
            import torch
            import torch.nn as nn
            import torchvision

            model = torchvision.models.resnet18(weights="DEFAULT")
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            model.fc = nn.Linear(model.fc.in_features, 10)
            for x, y in loader:
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
            """,
            line=7,
            contains="model.fc",
        ),
        Invalid(
            """
            from torch import nn, optim

            def finetune(model, loader):
                opt = optim.AdamW(model.parameters(), lr=3e-4)
                model.classifier[6] = nn.Linear(4096, 5)
                for x, y in loader:
                    opt.zero_grad()
                    nn.functional.cross_entropy(model(x), y).backward()
                    opt.step()
            """,
            line=5,
            contains="model.classifier[6]",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            net = Net()
            params = filter(lambda p: p.requires_grad, net.parameters())
            optimizer = torch.optim.Adam(params)
            net.proj = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
            optimizer.step()
            """,
            line=7,
            contains="net.proj",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 10))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            model[2] = nn.Linear(32, 3)
            optimizer.step()
            """,
            line=6,
            contains="model[2]",
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        if "parameters" not in ctx.text or "optim" not in ctx.text.lower():
            return
        a = analysis(ctx)
        for items in a.assignments().values():
            for opt in items:
                if not isinstance(opt.value, cst.Call) or not a.is_optimizer_ctor(opt.value):
                    continue
                for model in _models_of(a, opt.value):
                    yield from self._after(ctx, a, opt, model)

    def check_optimizer(self, model: Any, optimizers: Any) -> Iterator[Finding]:
        """The dynamic twin, run by ``nnlint.check(model, inputs, optimizer=opt)``."""
        return _check_optimizer(model, optimizers)

    def _after(self, ctx: SourceContext, a: Analysis, opt: Assignment, model: str) -> Iterator[Finding]:
        start = a.statement_order(opt.node)
        if start is None:
            return
        stmts = _small_statements(a, opt.func)
        for at, st in stmts:
            if (
                at <= start
                or not isinstance(st, cst.Assign)
                or not isinstance(st.value, cst.Call)
                or not _has_parameters(ctx, st.value)
            ):
                continue
            for t in st.targets:
                base = _strip(t.target)
                if base is None or not (
                    base.startswith(model + ".")
                    or (base == model and t.target is not None and isinstance(t.target, cst.Subscript))
                ):
                    continue
                shown = ctx.code(t.target)
                if any(ctx.code(x.value) == shown for x in st.value.args):
                    continue  # a wrapper around the same layer (nn.DataParallel(model.fc)) keeps its parameters
                if _handled(ctx, a, stmts, model, base, at):
                    continue
                created = ctx.code(st.value.func) if isinstance(st.value, cst.Call) else "a new layer"
                line = line_of(ctx, opt.node)
                yield Finding(
                    f"`{shown}` gets a new `{created}` after `{opt.target}` was built from `{model}.parameters()` "
                    f"(line {line}): the optimizer holds only the parameters that existed then, so the new layer's "
                    f"weights get gradients but are never updated and stay at their random init. Build the optimizer "
                    f"after changing the model, or add the layer with "
                    f'`{opt.target}.add_param_group({{"params": {shown}.parameters()}})`',
                    node=st,
                    evidence={"optimizer_line": line, "model": model, "attribute": shown},
                    related=((opt.node, f"`{opt.target}` built from `{model}.parameters()` here"),),
                )


def _small_statements(a: Analysis, func: FunctionInfo | None) -> list[tuple[int, cst.CSTNode]]:
    cache = a.__dict__.setdefault("_nn408_small", {})
    key = id(func.node) if func is not None else 0
    if key not in cache:
        out = []
        for n in walk(a.scope_of(func)):
            if isinstance(n, cst.BaseSmallStatement):
                order = a.statement_order(n)
                if order is not None:
                    out.append((order, n))
        cache[key] = sorted(out, key=lambda x: x[0])
    return cache[key]


def _strip(target: cst.BaseExpression) -> str | None:
    """The dotted name assigned, through subscripts: ``model.classifier[6]`` ->
    ``model.classifier``."""
    while isinstance(target, cst.Subscript):
        target = target.value
    return dotted(target)


def _models_of(a: Analysis, call: cst.Call) -> list[str]:
    """Whole models whose ``.parameters()`` the optimizer gets (directly, in param groups
    or through a name assigned from them)."""
    exprs: list[cst.BaseExpression] = [x.value for x in call.args]
    for x in call.args:
        name = dotted(x.value)
        if name is not None:
            exprs += a.values_of(name)
    out: list[str] = []
    for e in exprs:
        for n in [e, *walk(e, cst.Call)]:
            if isinstance(n, cst.Call) and method_name(n) in ("parameters", "named_parameters"):
                name = receiver_name(n)
                if name and name != "self" and name not in out:
                    out.append(name)
    return out


def _has_parameters(ctx: SourceContext, value: cst.BaseExpression | None) -> bool:
    """``value`` builds a module with parameters (or is an ``nn.Parameter``)."""
    if not isinstance(value, cst.Call):
        return False
    q = ctx.qualname(value) or ""
    last = q.rsplit(".", 1)[-1]
    if q.startswith("torch.nn.") and last[:1].isupper():
        if last in ("Sequential", "ModuleList", "ModuleDict"):
            return any(_has_parameters(ctx, x.value) for x in value.args) or any(
                _has_parameters(ctx, el.value)
                for x in value.args
                if isinstance(x.value, (cst.List, cst.Tuple))
                for el in x.value.elements
            )
        return not _PARAMETER_FREE.match(last)
    if q in ctx.class_by_name:
        return ctx.is_module_class(ctx.class_by_name[q])
    return q.startswith(("torchvision.models.", "timm.")) or q.endswith(".from_pretrained")


def _handled(
    ctx: SourceContext, a: Analysis, stmts: list[tuple[int, cst.CSTNode]], model: str, target: str, at: int
) -> bool:
    """After the change: ``add_param_group``, a new optimizer over the model, or the new
    layer frozen (``requires_grad_(False)``, ``p.requires_grad = False``)."""
    for order, st in stmts:
        if order <= at:
            continue
        if isinstance(st, cst.Assign) and any((dotted(t.target) or "").endswith("requires_grad") for t in st.targets):
            return True
        for call in walk(st, cst.Call):
            m = method_name(call)
            if m == "add_param_group":
                return True
            if m == "requires_grad_" and (receiver_name(call) or "").startswith((target, model)):
                return True
            if a.is_optimizer_ctor(call) and model in _models_of(a, call):
                return True
    return False


def _check_optimizer(model: Any, optimizers: Any) -> Iterator[Finding]:
    """The dynamic twin: every trainable submodule (or loose parameter) of ``model`` whose
    parameters are in no param group of ``optimizers`` (one optimizer or several)."""
    opts = list(optimizers) if isinstance(optimizers, (list, tuple, set)) else [optimizers]
    covered: set[int] = set()
    for o in opts:
        for group in getattr(o, "param_groups", []):
            covered.update(id(p) for p in group["params"])
    missing = {n for n, p in model.named_parameters() if p.requires_grad and id(p) not in covered}
    if not missing:
        return
    total = {n: p.numel() for n, p in model.named_parameters()}
    reported: list[str] = []
    for qual, mod in model.named_modules():
        if not qual or any(qual == r or qual.startswith(r + ".") for r in reported):
            continue
        names = [f"{qual}.{n}" for n, p in mod.named_parameters() if p.requires_grad]
        if names and all(n in missing for n in names):
            reported.append(qual)
    loose = sorted(n for n in missing if not any(n.startswith(r + ".") for r in reported))
    kinds = {q: type(m).__name__ for q, m in model.named_modules()}
    for qual in reported:
        count = sum(total[n] for n in missing if n.startswith(qual + "."))
        yield Finding(
            f"`{qual}` ({kinds.get(qual, 'module')}, {count:,} trainable parameters) is in no param group of the "
            f"optimizer: backward() fills its gradients but step() never applies them, so it stays at its "
            f"initialization. Build the optimizer after the model is final, or add it with "
            f'`optimizer.add_param_group({{"params": {_attr_path("model", qual)}.parameters()}})`',
            module=qual,
            evidence={"missing_parameters": count, "optimizers": len(opts)},
        )
    for n in loose:
        yield Finding(
            f"parameter `{n}` ({total[n]:,} values, requires_grad) is in no param group of the optimizer: it is "
            f"never updated. Add it to the optimizer, or set requires_grad=False if it is meant to stay fixed",
            module=n.rsplit(".", 1)[0] if "." in n else None,
            evidence={"missing_parameters": total[n], "optimizers": len(opts)},
        )


def _attr_path(root: str, qual: str) -> str:
    """``model`` + ``features.0`` -> ``model.features[0]``."""
    out = root
    for part in qual.split("."):
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out
