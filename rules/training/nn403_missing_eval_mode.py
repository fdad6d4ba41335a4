from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from nnlint.analysis.syntax import arg_expr, has_star
from nnlint.contexts.source import FunctionInfo, SourceContext, dotted
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

from ._loops import (
    AUX_MODEL_NAME,
    Analysis,
    analysis,
    first_line,
    is_eval_function_name,
    last_part,
    root,
    short,
    snake,
    walk,
)


class MissingEvalMode(SourceRule):
    """## What it does
    Flags an evaluation loop — a loop over a data loader under `torch.no_grad()` /
    `torch.inference_mode()`, or a loop in a function named like `validate`, `evaluate`,
    `test`, `eval_*` — that calls the model when no `model.eval()` (or `model.train(False)`)
    ran before it: earlier in the same function, before every call of that function in
    this file, or, for a model that is not a parameter, anywhere else in the file.
    Also flags training that runs in eval mode: a training loop that calls `model.eval()`
    (directly or through a helper) and never `model.train()` again, or a training loop
    that starts while an earlier `model.eval()` is still in effect. An explicit
    `model.train()` before a `no_grad` loop (BatchNorm recalibration, Monte Carlo dropout)
    and models that are not the ones being optimized (a frozen teacher, an EMA copy) are
    left alone, and so is a model built from a class of the same file whose layers all
    behave the same in both modes (Conv/Linear/pooling/activations/LayerNorm, no dropout,
    no BatchNorm, no `self.training`), where eval() would change nothing.

    ## Why is this bad?
    `torch.no_grad()` only stops gradient tracking; it does not change layer behaviour.
    Without `eval()`, dropout keeps dropping units and BatchNorm normalizes with the
    statistics of each evaluation batch and updates its running averages with validation
    data: the scores are noisy, depend on the batch size, and leak evaluation data into
    the model. The opposite mistake — never calling `train()` after evaluating — trains
    every later epoch with dropout off and frozen BatchNorm statistics. Models with neither
    dropout nor BatchNorm are unaffected; when the model's class is not in the file, a
    static check cannot know that: this is a warning.

    ## Example
    ```python
    for epoch in range(epochs):
        model.train()
        train_one_epoch(model, train_loader, optimizer)
        with torch.no_grad():
            for x, y in val_loader:
                acc += (model(x).argmax(1) == y).sum().item()
    ```

    ## Use instead
    ```python
    for epoch in range(epochs):
        model.train()
        train_one_epoch(model, train_loader, optimizer)
        model.eval()
        with torch.no_grad():
            for x, y in val_loader:
                acc += (model(x).argmax(1) == y).sum().item()
    ```

    ## References
    - PyTorch docs, `torch.nn.Module.eval` ("This has any effect only on certain modules
      ... Dropout, BatchNorm") and "Locally disabling gradient computation"
      (https://pytorch.org/docs/stable/notes/autograd.html#locally-disabling-gradient-computation).
    - Andrej Karpathy, "A Recipe for Training Neural Networks" (2019).
    - Slav Ivanov, "37 Reasons why your Neural Network is not working".
    """

    code = "NN403"
    name = "missing-eval-mode"
    severity = Severity.WARNING

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(3, 6, 5)
                    self.pool = nn.MaxPool2d(2, 2)
                    self.fc = nn.Linear(6 * 14 * 14, 10)

                def forward(self, x):
                    return self.fc(torch.flatten(self.pool(F.relu(self.conv(x))), 1))

            net = Net()
            correct = 0
            with torch.no_grad():
                for images, labels in testloader:
                    correct += (net(images).argmax(1) == labels).sum().item()
            """,
            note="the file's own Net has no dropout, BatchNorm or `self.training`: eval() would change nothing",
        ),
        Valid(
            """
            import torch
            import torch.nn.functional as F

            def attack(model, loader, eps):
                correct = 0
                for data, target in loader:
                    data.requires_grad = True
                    loss = F.nll_loss(model(data), target)
                    model.zero_grad()
                    loss.backward()
                    perturbed = (data + eps * data.grad.sign()).clamp(0, 1)
                    correct += (model(perturbed).argmax(1) == target).sum().item()
                return correct

            model = torch.load("model.pt")
            model.eval()
            for eps in [0.0, 0.1, 0.2]:
                attack(model, test_loader, eps)
            """,
            note="FGSM: backward for input gradients, no optimizer step: not a training loop",
        ),
        Valid(
            """
            import torch

            def evaluate(model, loader):
                model.eval()
                correct = 0
                with torch.no_grad():
                    for x, y in loader:
                        correct += (model(x).argmax(1) == y).sum().item()
                return correct
            """,
            note="eval() at the top of the evaluation function",
        ),
        Valid(
            """
            import torch

            def validate(net, loader):
                with torch.no_grad():
                    for x, y in loader:
                        net(x)

            for epoch in range(3):
                net.train()
                train(net)
                net.eval()
                validate(net, val_loader)
            """,
            note="eval() before every call of the evaluation function",
        ),
        Valid(
            """
            import torch

            model.train(False)
            with torch.inference_mode():
                for batch in test_loader:
                    preds.append(model(batch))
            """,
            note="train(False) is eval()",
        ),
        Valid(
            """
            import torch

            with torch.no_grad():
                for p in model.parameters():
                    p -= lr * p.grad
                for ema_p, p in zip(ema.parameters(), model.parameters()):
                    ema_p.mul_(0.999).add_(p, alpha=0.001)
            """,
            note="no_grad used for a weight update / EMA, no forward",
        ),
        Valid(
            """
            import torch

            model = Net().to(device).eval()
            with torch.no_grad():
                for images, _ in dataloader:
                    features.append(model(images))
            """,
            note="inference script, eval() chained at construction",
        ),
        Valid(
            """
            import torch

            @torch.no_grad()
            def estimate_loss():
                model.eval()
                for k in range(eval_iters):
                    logits, loss = model(*get_batch())
                model.train()

            for it in range(max_iters):
                if it % 100 == 0:
                    estimate_loss()
                loss = model(*get_batch())[1]
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
            """,
            note="nanoGPT: the helper evaluates and switches back with train()",
        ),
        Valid(
            """
            def train(args, model, loader, optimizer):
                model.train()
                for x, y in loader:
                    optimizer.zero_grad()
                    F.nll_loss(model(x), y).backward()
                    optimizer.step()

            def test(model, loader):
                model.eval()
                with torch.no_grad():
                    for x, y in loader:
                        model(x)

            for epoch in range(1, 15):
                train(args, model, train_loader, optimizer)
                test(model, test_loader)
            """,
            note="pytorch/examples mnist: train() re-enters train mode every epoch",
        ),
        Valid(
            """
            import torch

            @torch.no_grad()
            def generate(self, idx, max_new_tokens):
                for _ in range(max_new_tokens):
                    logits = self.model(idx)
            """,
            note="a sampling loop over range(), not an evaluation loop over data",
        ),
        Valid(
            """
            for x, y in loader:
                teacher.eval()
                with torch.no_grad():
                    t = teacher(x)
                loss = kd(student(x), t)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
            """,
            note="a frozen teacher stays in eval mode on purpose",
        ),
        Valid(
            """
            import torch

            @torch.no_grad()
            def update_bn(loader, model):
                was_training = model.training
                model.train()
                for x in loader:
                    model(x)
                model.train(was_training)
            """,
            note="train mode on purpose under no_grad: BatchNorm recalibration (swa_utils.update_bn)",
        ),
        Valid(
            """
            import torch

            model.train()  # keep dropout on: Monte Carlo dropout
            with torch.no_grad():
                for x, _ in test_loader:
                    preds.append(torch.stack([model(x) for _ in range(20)]))
            """,
            note="MC dropout asks for train mode explicitly",
        ),
        Valid(
            """
            import torch

            teacher.load_state_dict(torch.load("teacher.pt"))
            teacher.eval()
            optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)
            for x, y in train_loader:
                optimizer.zero_grad()
                loss = kd(student(x), teacher(x).detach())
                loss.backward()
                optimizer.step()
            """,
            note="the model left in eval mode is a frozen teacher, not the one the optimizer trains",
        ),
        Valid(
            """
            import torch

            for epoch in range(epochs):
                model.train()
                model.backbone.eval()  # keep the pretrained BatchNorm statistics
                for x, y in train_loader:
                    optimizer.zero_grad()
                    criterion(model(x), y).backward()
                    optimizer.step()
            """,
            note="freezing a submodule's BatchNorm on purpose",
        ),
        Valid(
            """
            import torch

            def freeze_bn(net):
                for m in net.modules():
                    if isinstance(m, torch.nn.BatchNorm2d):
                        m.eval()

            net.train()
            freeze_bn(net)
            for x, y in train_loader:
                opt.zero_grad()
                loss_fn(net(x), y).backward()
                opt.step()
            """,
            note="BatchNorm layers set to eval one by one",
        ),
        Valid(
            """
            import torch

            model = torch.jit.load("model.pt")
            with torch.no_grad():
                for batch in test_loader:
                    outputs.append(model(batch))
            """,
            note="a TorchScript model keeps the mode it was saved in",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            model = nn.Linear(10, 2)
            correct = 0
            with torch.no_grad():
                for x, y in test_loader:
                    correct += (model(x).argmax(1) == y).sum().item()
            """,
            note="a bare nn.Linear: eval() would change nothing",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Tagger(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.lstm = nn.LSTM(8, 16, num_layers=2, batch_first=True, dropout=0)
                    self.fc = nn.Linear(16, 4)

                def forward(self, x):
                    out, _ = self.lstm(x)
                    return self.fc(out)

            model = Tagger()
            with torch.no_grad():
                for x, y in val_loader:
                    preds = model(x).argmax(-1)
            """,
            note="an LSTM with dropout=0 computes the same in train and eval mode",
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
                    self.conv = nn.Conv2d(3, 6, 5)
                    self.pool = nn.MaxPool2d(2, 2)
                    self.drop = nn.Dropout(0.5)
                    self.fc = nn.Linear(6 * 14 * 14, 10)

                def forward(self, x):
                    return self.fc(self.drop(torch.flatten(self.pool(F.relu(self.conv(x))), 1)))

            net = Net()
            correct = 0
            with torch.no_grad():
                for images, labels in testloader:
                    correct += (net(images).argmax(1) == labels).sum().item()
            """,
            line=20,
            contains="net.eval()",
            note="the same net with a Dropout layer",
        ),
        Invalid(
            """
            import torch

            def evaluate(model, loader):
                correct = 0
                with torch.no_grad():
                    for x, y in loader:
                        out = model(x)
                        correct += (out.argmax(1) == y).sum().item()
                return correct
            """,
            line=7,
            contains="model.eval()",
        ),
        Invalid(
            """
            import torch as T

            for epoch in range(10):
                model.train()
                for x, y in train_loader:
                    optimizer.zero_grad()
                    criterion(model(x), y).backward()
                    optimizer.step()
                with T.inference_mode():
                    for x, y in val_loader:
                        val_loss += criterion(model(x), y).item()
            """,
            line=11,
        ),
        Invalid(
            """
            def validate(net, loader):
                net.eval()
                for x, y in loader:
                    net(x)

            net.train()
            for epoch in range(3):
                for x, y in train_loader:
                    opt.zero_grad()
                    loss_fn(net(x), y).backward()
                    opt.step()
                validate(net, val_loader)
            """,
            line=12,
            contains="net.train()",
        ),
        Invalid(
            """
            import torch

            def val_epoch(model, loader):
                with torch.no_grad():
                    for batch in loader:
                        model(batch)
                model.eval()

            val_epoch(model, val_loader)
            """,
            line=6,
            note="eval() after the loop is too late",
        ),
        Invalid(
            """
            for step, (x, y) in enumerate(train_loader):
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                optimizer.step()
                if step % 500 == 0:
                    model.eval()
                    report(model)
            """,
            line=6,
        ),
        Invalid(
            """
            import torch

            model.eval()
            print(evaluate_once(model))
            model.train()
            for x, y in train_loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                optimizer.step()
            with torch.no_grad():
                for x, y in val_loader:
                    acc.update(model(x), y)
            """,
            line=12,
            note="an eval() before an earlier evaluation does not cover the one after training",
        ),
        Invalid(
            """
            import torch

            model.eval()
            with torch.no_grad():
                for batch in test_loader:
                    baseline.append(model(batch))
            for epoch in range(3):
                for x, y in train_loader:
                    loss = crit(model(x), y)
                    loss.backward()
                    opt.step()
                    opt.zero_grad()
            """,
            line=3,
            contains="before the loop",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Tagger(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.lstm = nn.LSTM(8, 16, num_layers=2, batch_first=True, dropout=0.3)
                    self.fc = nn.Linear(16, 4)

                def forward(self, x):
                    out, _ = self.lstm(x)
                    return self.fc(out)

            model = Tagger()
            with torch.no_grad():
                for x, y in val_loader:
                    preds = model(x).argmax(-1)
            """,
            line=17,
            contains="model.eval()",
            note="the same LSTM with dropout between its layers",
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        if not ctx.loops:
            return
        a = analysis(ctx)
        fired: set[int] = set()
        yield from self._eval_loops(ctx, a, fired)
        if ".eval(" in ctx.text or ".train(" in ctx.text:
            yield from self._training_resumes(ctx, a, fired)

    # an evaluation loop without eval() -----------------------------------------------------
    def _eval_loops(self, ctx: SourceContext, a: Analysis, fired: set[int]) -> Iterator[Finding]:
        for loop, func in ctx.loops:
            evalish = func is not None and is_eval_function_name(func.name) and not _lightning_method(ctx, func)
            in_ng = a.in_no_grad(loop)
            if not (evalish or in_ng):
                continue
            if not evalish and not (isinstance(loop, cst.For) and a.is_loader_like(loop.iter)):
                continue
            found = _model_call(a, loop, func)
            if found is None or id(found[0]) in fired:
                continue
            call, model = found
            ok, missing_site = _eval_before(a, model, call, func)
            if ok or _mode_free(ctx, a, root(model)):
                continue
            fired.add(id(call))
            why = "gradients disabled" if in_ng or func is None else f"in `{func.name}()`"
            site = ""
            if missing_site is not None:
                site = f", nor before the call `{short(ctx, missing_site)}` at line {first_line(ctx, missing_site)}"
            yield Finding(
                f"`{short(ctx, call)}` runs in an evaluation loop (line {first_line(ctx, loop)}, {why}) but "
                f"`{root(model)}.eval()` is not called before it{site}: dropout stays active and BatchNorm uses "
                f"batch statistics (and updates its running averages); call `{root(model)}.eval()` before the loop "
                f"and `{root(model)}.train()` before training resumes",
                node=call,
            )

    # eval() inside a training loop that never switches back ------------------------------
    def _training_resumes(self, ctx: SourceContext, a: Analysis, fired: set[int]) -> Iterator[Finding]:
        trained = a.trained_models()
        for loop, func in ctx.loops:
            facts = a.facts(loop.body, func)
            # training = backward and an optimizer step; backward alone is input gradients
            # (adversarial examples, saliency maps) on a model meant to stay in eval mode
            if not facts.trains() or facts.first("train") is not None:
                continue
            if not facts.inner_train_loop:
                # a training loop that starts while an earlier eval() is still in effect
                mode = _mode_before(a, func, loop, None)
                if (
                    mode is not None
                    and mode[0] == "eval"
                    and id(mode[1]) not in fired
                    and _may_be_trained(a, mode[2] or "", trained)
                    and not _mode_free(ctx, a, root(mode[2] or ""))
                ):
                    fired.add(id(mode[1]))
                    subject = mode[2] or (sorted(trained)[0] if trained else "model")
                    yield Finding(
                        f"`{short(ctx, mode[1])}` (line {first_line(ctx, mode[1])}) leaves the model in eval mode and "
                        f"the training loop at line {first_line(ctx, loop)} starts without `{subject}.train()`: it "
                        f"trains with dropout off and BatchNorm frozen; call `{subject}.train()` before the loop",
                        node=mode[1],
                    )
                    continue
            for e in facts.of("eval"):
                if (
                    id(e.anchor) in fired
                    or not _may_be_trained(a, e.subject or "", trained)
                    or _mode_free(ctx, a, root(e.subject or ""))
                ):
                    continue
                fired.add(id(e.anchor))
                subject = e.subject or (sorted(trained)[0] if trained else "model")
                via = f" (in `{e.via}()`, called at line {first_line(ctx, e.anchor)})" if e.via else ""
                yield Finding(
                    f"`{short(ctx, e.node)}` (line {first_line(ctx, e.node)}){via} switches the model to eval mode "
                    f"inside the training loop at line {first_line(ctx, loop)}, and nothing in the loop calls "
                    f"`.train()` again: from then on training runs with dropout off and BatchNorm frozen; call "
                    f"`{subject}.train()` at the start of each iteration, before the training step",
                    node=e.anchor,
                )
                break


#: torch.nn layers that compute the same in train and eval mode
_MODE_FREE_LAYERS = {
    "Linear",
    "Bilinear",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "SELU",
    "CELU",
    "GELU",
    "SiLU",
    "Mish",
    "Tanh",
    "Sigmoid",
    "Hardtanh",
    "Hardswish",
    "Hardsigmoid",
    "Softplus",
    "Softmax",
    "LogSoftmax",
    "Softmax2d",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "Flatten",
    "Unflatten",
    "Identity",
    "Embedding",
    "EmbeddingBag",
    "LayerNorm",
    "GroupNorm",
    "RMSNorm",
    "Upsample",
    "PixelShuffle",
    "PixelUnshuffle",
    "ZeroPad2d",
    "ConstantPad2d",
    "ReflectionPad2d",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "Parameter",
    "ParameterList",
    "ParameterDict",
    "Module",
}
_HARMLESS_BUILTINS = {
    "super",
    "range",
    "len",
    "int",
    "float",
    "list",
    "dict",
    "tuple",
    "isinstance",
    "getattr",
    "setattr",
    "hasattr",
    "zip",
    "enumerate",
    "print",
    "max",
    "min",
    "sum",
    "abs",
    "round",
}


def _mode_free(ctx: SourceContext, a: Analysis, model: str) -> bool:
    """``model`` is built in this file from classes of this file whose layers all compute
    the same in train and eval mode (no dropout, no BatchNorm, no `self.training`): then
    eval()/train() changes nothing and there is nothing to report."""
    if not model or "." in model:
        return False
    values = a.values_of(model)
    if not values:
        return False
    memo: dict[str, bool] = {}
    for v in values:
        while (
            isinstance(v, cst.Call)
            and isinstance(v.func, cst.Attribute)
            and v.func.attr.value in ("to", "cuda", "cpu", "float", "double", "half")
        ):
            v = v.func.value
        if isinstance(v, cst.Call) and _builtin_mode_free(ctx, v, memo):
            continue  # model = nn.Linear(10, 2); model = nn.LSTM(8, 16): eval() changes nothing
        if not (isinstance(v, cst.Call) and isinstance(v.func, cst.Name) and v.func.value in ctx.class_by_name):
            return False
        if not _class_mode_free(ctx, v.func.value, memo):
            return False
    return True


_RNNS = {"RNN", "LSTM", "GRU"}
_RNN_CELLS = {"RNNCell", "LSTMCell", "GRUCell"}


def _rnn_mode_free(call: cst.Call) -> bool:
    """An nn.RNN/LSTM/GRU without dropout (the argument absent or 0; positional index 5)
    computes the same in train and eval mode."""
    if has_star(call):
        return False
    value = arg_expr(call, 5, "dropout")
    if value is None:
        return True
    return isinstance(value, (cst.Integer, cst.Float)) and float(value.value) == 0.0


def _builtin_mode_free(ctx: SourceContext, call: cst.Call, memo: dict[str, bool]) -> bool:
    """A built-in torch.nn layer (or an nn.Sequential of such layers and of this file's
    mode-free classes) that computes the same in train and eval mode."""
    q = ctx.qualname(call.func) or ""
    if not q.startswith("torch.nn.") or q.startswith(("torch.nn.functional.", "torch.nn.init.")):
        return False
    last = q.rsplit(".", 1)[-1]
    if last in _RNN_CELLS:
        return True
    if last in _RNNS:
        return _rnn_mode_free(call)
    if last == "Sequential":
        for a in call.args:
            v = a.value
            if a.star or not isinstance(v, cst.Call):
                return False
            if isinstance(v.func, cst.Name) and v.func.value in ctx.class_by_name:
                if not _class_mode_free(ctx, v.func.value, memo):
                    return False
            elif not _builtin_mode_free(ctx, v, memo):
                return False
        return True
    return last in _MODE_FREE_LAYERS and last not in ("ModuleList", "ModuleDict", "Module")


def _class_mode_free(ctx: SourceContext, name: str, memo: dict[str, bool]) -> bool:
    if name in memo:
        return memo[name]
    memo[name] = False  # until proven: a recursive reference is not
    cls = ctx.class_by_name[name]
    for base in cls.bases:
        head, _, rest = base.partition(".")
        q = (ctx.aliases[head] + ("." + rest if rest else "")) if head in ctx.aliases else base
        if q != "torch.nn.Module" and not (base in ctx.class_by_name and _class_mode_free(ctx, base, memo)):
            return False
    for node in walk(cls.node, into_defs=True):
        if isinstance(node, cst.Attribute) and node.attr.value == "training":
            return False
        if not isinstance(node, cst.Call):
            continue
        func = node.func
        q = ctx.qualname(func) or ""
        if q.startswith("torch.nn.functional."):
            if any(w in q for w in ("dropout", "batch_norm", "instance_norm")):
                return False
        elif q.startswith("torch.nn.init.") or (q.startswith("torch.") and not q.startswith("torch.nn.")):
            continue
        elif q.startswith("torch.nn."):
            last = q.rsplit(".", 1)[-1]
            if last in _RNNS:
                if not _rnn_mode_free(node):
                    return False
            elif last not in _MODE_FREE_LAYERS and last not in _RNN_CELLS:
                return False
        elif isinstance(func, cst.Name):
            if func.value in ctx.class_by_name:
                if not _class_mode_free(ctx, func.value, memo):
                    return False
            elif func.value not in _HARMLESS_BUILTINS:
                return False  # a helper or an imported class: cannot tell
        elif isinstance(func, cst.Attribute) and q.split(".")[0] in ctx.aliases:
            return False  # another library's layer
    memo[name] = True
    return True


def _lightning_method(ctx: SourceContext, func: FunctionInfo) -> bool:
    if func.cls is None:
        return False
    return any("lightning" in (ctx.aliases.get(b.split(".")[0], "") + b).lower() for b in func.cls.bases)


def _model_call(a: Analysis, loop: cst.For | cst.While, func: FunctionInfo | None) -> tuple[cst.Call, str] | None:
    for call in walk(loop.body, cst.Call):
        f = call.func
        if isinstance(f, cst.Attribute) and f.attr.value == "forward":
            f = f.value
        name = dotted(f)
        if name and a.is_model_like(name, func):
            return call, name
    return None


def _matches(subject: str, model: str) -> bool:
    if not subject:
        return True  # get_model().eval(): cannot tell which, assume it is this one
    return (
        subject == model
        or model.startswith(subject + ".")
        or subject.startswith(model + ".")
        or (subject == "self" and model.startswith("self."))
    )


def _mode_before(
    a: Analysis, func: FunctionInfo | None, node: cst.CSTNode, model: str | None
) -> tuple[str, cst.CSTNode, str | None] | None:
    """What last happened to the model's mode in ``func`` before ``node``, as (kind,
    call, subject): kind "eval", "train" (train mode asked for on purpose: BatchNorm
    recalibration, MC dropout) or "backward" (it was trained since), directly or in a
    helper defined in this file (call is then the helper's call). None when nothing
    did. ``model=None`` accepts any model."""
    order = a.order(func)
    here = order.get(id(node))
    if here is None:
        return None
    latest: tuple[int, tuple[str, cst.CSTNode, str | None]] | None = None

    def relevant(kind: str, subject: str | None) -> bool:
        return kind == "backward" or (kind in ("eval", "train") and (model is None or _matches(subject or "", model)))

    for c in a.calls_in(func):
        pos = order.get(id(c))
        if pos is None or pos >= here or (latest is not None and pos < latest[0]):
            continue
        found = None
        kind = a.classify(c)
        if kind is not None and relevant(*kind):
            found = (kind[0], c, kind[1])
        callee = a.resolve_local(c, func)
        if callee is not None and callee is not func:
            for e in a.facts(callee.node.body, callee).events:
                if relevant(e.kind, e.subject):
                    found = (e.kind, c, e.subject)
        if found is not None:
            latest = (pos, found)
    return latest[1] if latest is not None else None


def _eval_in_scope_before(a: Analysis, func: FunctionInfo | None, node: cst.CSTNode, model: str | None) -> bool:
    mode = _mode_before(a, func, node, model)
    return mode is not None and mode[0] in ("eval", "train")


def _params(func: FunctionInfo) -> set[str]:
    p = func.node.params
    return {x.name.value for x in [*p.posonly_params, *p.params, *p.kwonly_params]}


def _eval_before(a: Analysis, model: str, call: cst.Call, func: FunctionInfo | None) -> tuple[bool, cst.Call | None]:
    """(eval() ran before ``call``, a call site of the evaluation function that lacks it)."""
    mode = _mode_before(a, func, call, model)
    if mode is not None and mode[0] in ("eval", "train"):
        return True, None
    if func is None or mode is not None:
        return _compiled_for_inference(a, model), None
    if _compiled_for_inference(a, model):
        return True, None
    sites = a.call_sites(func)
    missing = next((c for c, f in sites if not _eval_in_scope_before(a, f, c, None)), None)
    if sites and missing is None:
        return True, None
    if root(model).split(".")[0] not in _params(func) or root(model).startswith("self."):
        # a global model or an attribute: set to eval elsewhere in the file counts
        for c, f in a.ctx.calls:
            if f is func:
                continue
            kind = a.classify(c)
            if kind is not None and kind[0] == "eval" and kind[1] and _matches(kind[1], model):
                return True, None
    return False, missing


def _compiled_for_inference(a: Analysis, model: str) -> bool:
    """A TorchScript / exported program keeps the mode it was saved in (eval, as a rule)."""
    for v in a.values_of(root(model)):
        q = a.ctx.qualname(v) if isinstance(v, cst.Call) else None
        if q and q.startswith(("torch.jit.", "torch.export.", "torch._export.")):
            return True
    return False


def _may_be_trained(a: Analysis, subject: str, trained: set[str]) -> bool:
    """Is ``subject`` (switched to eval mode) the whole model being trained? A frozen
    teacher, an EMA copy, a perceptual-loss network, or a submodule frozen on purpose
    (`model.backbone.eval()` to keep its BatchNorm statistics) stay in eval mode by design."""
    if not subject or subject == "self":
        return True
    if trained:
        return any(subject in (t, t + ".module") or t == subject + ".module" for t in trained)
    if "." in subject and not subject.startswith("self.") or subject.count(".") > 1:
        return False
    return a.is_model_like(subject, None) and not AUX_MODEL_NAME.search(snake(last_part(subject)))
