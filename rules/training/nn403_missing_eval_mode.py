from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from nnlint.contexts.source import FunctionInfo, SourceContext, dotted
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

from ._loops import (
    Analysis,
    analysis,
    first_line,
    is_eval_function_name,
    root,
    short,
    walk,
)
from ._mode_order import eval_before, may_be_trained, mode_before
from ._modes import mode_free


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
    left alone, and so is a model built from a class of the same file, or of a module of
    the project beside it (`from model import Net` with `model.py` in the same folder, read
    without importing it), whose layers all behave the same in both modes
    (Conv/Linear/pooling/activations/LayerNorm, no dropout, no BatchNorm, no
    `self.training`), where eval() would change nothing.

    ## Why is this bad?
    `torch.no_grad()` only stops gradient tracking; it does not change layer behaviour.
    Without `eval()`, dropout keeps dropping units and BatchNorm normalizes with the
    statistics of each evaluation batch and updates its running averages with validation
    data: the scores are noisy, depend on the batch size, and leak evaluation data into
    the model. The opposite mistake — never calling `train()` after evaluating — trains
    every later epoch with dropout off and frozen BatchNorm statistics. Models with neither
    dropout nor BatchNorm are unaffected; when the model's class is neither in the file nor
    in a module beside it, a static check cannot know that: this is a warning.

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
            ok, missing_site = eval_before(a, model, call, func)
            if ok or mode_free(ctx, a, root(model)):
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
                mode = mode_before(a, func, loop, None)
                if (
                    mode is not None
                    and mode[0] == "eval"
                    and id(mode[1]) not in fired
                    and may_be_trained(a, mode[2] or "", trained)
                    and not mode_free(ctx, a, root(mode[2] or ""))
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
                    or not may_be_trained(a, e.subject or "", trained)
                    or mode_free(ctx, a, root(e.subject or ""))
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
