from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from nnlint import fixes
from nnlint.analysis.syntax import call_arg, has_star
from nnlint.contexts.source import FunctionInfo, SourceContext, dotted
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid
from nnlint.vocab import DATALOADER_CLASSES, ITERABLE_DATASET_PACKAGES, ITERABLE_DATASETS

from ._loops import (
    Analysis,
    analysis,
    first_line,
    is_eval_function_name,
    last_part,
    literal_bool,
    short,
    snake,
    unwrap_iter,
)

TRAIN_NAME = re.compile(r"(?<![a-z])train")
HELD_OUT_NAME = re.compile(
    r"(?<![a-z])(val|valid|validation|test|testing|eval|evaluation|dev|holdout|calib|calibration|infer|inference|predict)(?![a-z])"
    r"|(?<![a-z])(val|valid|test|eval|dev)(set|loader|data|ds|dl|dataset)"
)
STREAMING_NAME = re.compile(r"iterable|stream|webdataset|datapipe", re.I)
#: a dataset variable named like an iterator or a pipe (``train_iter``, ``train_pipe``)
ITERATOR_NAME = re.compile(r"(?<![a-z])iter(ator|able)?(?![a-z])|stream|pipe")


class UnshuffledTrainLoader(SourceRule):
    """## What it does
    Flags a `torch.utils.data.DataLoader` for training data — its dataset or the loader is
    named like `train`/`training`, the dataset is built with `train=True`/`split="train"`,
    or a loop over the loader calls `.backward()` — created with `shuffle` absent or
    `False` and no `sampler=`/`batch_sampler=`. Validation/test loaders,
    `IterableDataset`s and streaming datasets (the loader cannot shuffle them), options
    passed as `**kwargs`, and loaders of training data that are only ever read under
    `torch.no_grad()` (feature extraction, kNN monitors) are left alone; so are datasets
    that are or may be iterable: from `torchtext.datasets` or `torchdata`, shuffled in the
    pipe (`.shuffle()`), or named like an iterator, a stream or a pipe.

    ## Why is this bad?
    `DataLoader` does not shuffle by default. Training then sees the samples in the same
    order every epoch — often sorted by class, file or source — so consecutive batches are
    highly correlated, BatchNorm statistics are biased and SGD converges slower or to a
    worse model; with class-sorted data the model forgets earlier classes within an epoch.

    ## Example
    ```python
    train_loader = DataLoader(train_ds, batch_size=64)
    ```

    ## Use instead
    ```python
    train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
    # distributed: DataLoader(train_ds, batch_size=64, sampler=DistributedSampler(train_ds))
    ```

    ## References
    - PyTorch docs, `torch.utils.data.DataLoader` (`shuffle=False` by default)
      (https://pytorch.org/docs/stable/data.html).
    - Slav Ivanov, "37 Reasons why your Neural Network is not working": "2. Shuffle the
      dataset".
    - Andrej Karpathy, "A Recipe for Training Neural Networks" (2019).
    """

    code = "NN405"
    name = "unshuffled-train-loader"
    fix_applicability = "unsafe"  # an IterableDataset or a deliberate order (curriculum) breaks
    fix_summary = "pass `shuffle=True`"
    severity = Severity.WARNING

    VALID = [
        Valid(
            """
            from torch.utils.data import DataLoader

            train_loader = DataLoader(train_ds, batch_size=32, shuffle=True)
            val_loader = DataLoader(val_ds, batch_size=32)
            test_loader = DataLoader(test_ds, batch_size=32, shuffle=False)
            """,
            note="shuffled train loader; held-out loaders need no shuffle",
        ),
        Valid(
            """
            from torch.utils.data import DataLoader
            from torch.utils.data.distributed import DistributedSampler

            sampler = DistributedSampler(train_ds)
            train_loader = DataLoader(train_ds, batch_size=32, sampler=sampler)
            """,
            note="a sampler shuffles",
        ),
        Valid(
            """
            import torch.utils.data as tud

            class Stream(tud.IterableDataset):
                def __iter__(self):
                    yield from range(10)

            train_ds = Stream()
            train_loader = tud.DataLoader(train_ds, batch_size=8)
            """,
            note="IterableDataset: the loader cannot shuffle it",
        ),
        Valid(
            """
            from torch.utils.data import DataLoader
            from torchtext.datasets import Multi30k

            train_data = Multi30k(split="train", language_pair=("de", "en"))
            train_dataloader = DataLoader(train_data, batch_size=128, collate_fn=collate)
            """,
            note="a torchtext dataset is an iterable datapipe: shuffle= does not apply",
        ),
        Valid(
            """
            from torch.utils.data import DataLoader

            train_dp = load_train_records().shuffle().map(decode)
            train_loader = DataLoader(train_dp, batch_size=32)
            train_loader2 = DataLoader(train_iterator, batch_size=32)
            """,
            note="the pipe shuffles itself; a dataset named like an iterator",
        ),
        Valid(
            """
            from torch.utils.data import DataLoader

            def make_loader(ds, train):
                return DataLoader(ds, batch_size=64, shuffle=train)
            """,
            note="shuffle from a variable",
        ),
        Valid(
            """
            import torch
            from torchvision import datasets

            test_set = datasets.MNIST("data", train=False, download=True)
            loader = torch.utils.data.DataLoader(test_set, batch_size=1000)
            for x, y in loader:
                model(x)
            """,
            note="a test set, no backward",
        ),
        Valid(
            """
            from torch.utils.data import DataLoader

            train_loader = DataLoader(train_ds, batch_sampler=BucketSampler(train_ds, 32))
            """,
            note="batch_sampler",
        ),
        Valid(
            """
            from torch.utils.data import DataLoader

            loader = DataLoader(train_ds, **loader_kwargs)
            """,
            note="options from a dict: cannot tell",
        ),
        Valid(
            """
            from torch.utils.data import DataLoader

            train_eval_loader = DataLoader(train_ds, batch_size=256)
            """,
            note="evaluating on the training set",
        ),
        Valid(
            """
            import torch
            from torch.utils.data import DataLoader

            memory_data = CIFAR10Pair(root="data", train=True, transform=test_transform)
            memory_loader = DataLoader(memory_data, batch_size=512, shuffle=False)

            def knn_monitor(net, memory_loader):
                net.eval()
                with torch.no_grad():
                    for data, target in memory_loader:
                        feats.append(net(data))

            knn_monitor(model, memory_loader)
            """,
            note="training images read only under no_grad (kNN monitor / feature extraction)",
        ),
    ]
    INVALID = [
        Invalid(
            """
            from torch.utils.data import DataLoader

            train_loader = DataLoader(train_ds, batch_size=32)
            """,
            line=3,
            contains="shuffle=True",
        ),
        Invalid(
            """
            import torch.utils.data as data

            trainset = make_dataset("train")
            loader = data.DataLoader(trainset, 64, False, num_workers=4)
            """,
            line=4,
            contains="shuffle=False",
        ),
        Invalid(
            """
            import torch
            from torchvision import datasets

            ds = datasets.MNIST("data", train=True, download=True)
            loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=False)
            """,
            line=5,
            contains="train=True",
        ),
        Invalid(
            """
            from torch.utils.data import DataLoader as DL

            def fit(model, loader, opt):
                for x, y in loader:
                    opt.zero_grad()
                    model(x, y).backward()
                    opt.step()

            def main():
                dl = DL(dataset, batch_size=16)
                fit(model, dl, opt)
            """,
            line=10,
            contains="backward",
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        if "DataLoader" not in ctx.text:
            return
        a = None
        for call, func in ctx.calls:
            if ctx.qualname(call) not in DATALOADER_CLASSES or has_star(call):
                continue
            shuffle = call_arg(call, 2, "shuffle")
            if shuffle is not None and literal_bool(shuffle.value) is not False:
                continue
            if any(
                (s := call_arg(call, pos, kw)) is not None
                and not (isinstance(s.value, cst.Name) and s.value.value == "None")
                for kw, pos in (("sampler", 3), ("batch_sampler", 4))
            ):
                continue
            dataset = call_arg(call, 0, "dataset")
            if dataset is None:
                continue
            a = a or analysis(ctx)
            reason = _training_reason(a, call, func, dataset.value)
            if reason is None:
                continue
            what = "shuffle=False" if shuffle is not None else "no shuffle= (the default is False)"
            yield Finding(
                f"`{short(ctx, call)}` loads training data ({reason}) with {what} and no sampler: every epoch "
                f"visits the samples in the same order, so batches are correlated and training converges slower "
                f"or worse; pass shuffle=True (or sampler=DistributedSampler(...) when distributed)",
                node=call,
                fix=self.make_fix(
                    "pass shuffle=True",
                    fixes.replace(ctx, shuffle.value, "True")
                    if shuffle is not None
                    else fixes.add_keyword(ctx, call, "shuffle", "True"),
                ),
            )


def _qual(ctx: SourceContext, name: str) -> str:
    head, _, rest = name.partition(".")
    if head in ctx.aliases:
        full = ctx.aliases[head]
        return f"{full}.{rest}" if rest else full
    return name


def _is_iterable_class(ctx: SourceContext, name: str, seen: frozenset[str] = frozenset()) -> bool:
    q = _qual(ctx, name)
    if q in ITERABLE_DATASETS or STREAMING_NAME.search(last_part(q)) or q.startswith(ITERABLE_DATASET_PACKAGES):
        return True
    cls = ctx.class_by_name.get(name)
    if cls is None or name in seen:
        return False
    return any(_is_iterable_class(ctx, b, seen | {name}) for b in cls.bases)


def _sources(a: Analysis, expr: cst.BaseExpression) -> list[cst.BaseExpression]:
    """The expression and, for a name, the values assigned to it."""
    name = dotted(expr)
    return [expr] + (a.values_of(name) if name else [])


def _training_reason(a: Analysis, call: cst.Call, func: FunctionInfo | None, dataset: cst.BaseExpression) -> str | None:
    ctx = a.ctx
    names: list[tuple[str, str]] = []
    ds_name = dotted(dataset)
    if ds_name:
        names.append(("dataset", ds_name))
    loader_names = [x.target for items in a.assignments().values() for x in items if x.value is call]
    names += [("loader", n) for n in loader_names]
    if ds_name and ITERATOR_NAME.search(snake(last_part(ds_name))):
        return None  # train_iterator, train_pipe: an iterable the loader cannot shuffle
    split = None
    for src in _sources(a, dataset):
        v = src
        while isinstance(v, cst.Call) and isinstance(v.func, cst.Attribute):
            if v.func.attr.value == "shuffle":
                return None  # datapipe.shuffle(): the pipe shuffles itself
            if not isinstance(v.func.value, cst.Call):
                break
            v = v.func.value  # Dataset(...).map(...)
        if not isinstance(v, cst.Call):
            continue
        callee = dotted(v.func) or ""
        if _is_iterable_class(ctx, callee) or (
            (streaming := call_arg(v, None, "streaming")) is not None and literal_bool(streaming.value)
        ):
            return None
        train_kw = call_arg(v, None, "train")
        if train_kw is not None and literal_bool(train_kw.value) is not None:
            split = "train=True" if literal_bool(train_kw.value) else "held-out"
        split_kw = call_arg(v, None, "split")
        if split_kw is not None and isinstance(split_kw.value, cst.SimpleString):
            s = split_kw.value.evaluated_value
            if isinstance(s, str):
                if HELD_OUT_NAME.search(snake(s)):
                    split = "held-out"
                elif TRAIN_NAME.search(snake(s)):
                    split = f'split="{s}"'
        for x in v.args:  # make_dataset("train")
            if x.keyword is None and isinstance(x.value, cst.SimpleString) and isinstance(x.value.evaluated_value, str):
                s = snake(x.value.evaluated_value)
                if HELD_OUT_NAME.search(s):
                    split = "held-out"
                elif split is None and re.fullmatch(r"train(ing)?", s):
                    split = f'built from "{x.value.evaluated_value}"'
    if split == "held-out" or any(HELD_OUT_NAME.search(snake(last_part(n))) for _, n in names):
        return None
    loops = _loops_over(a, call, func, loader_names)
    training = next((loop for loop, scope in loops if a.facts(loop.body, scope).first("backward") is not None), None)
    if (
        training is None
        and loops
        and all(
            a.in_no_grad(loop) or (scope is not None and is_eval_function_name(scope.name)) for loop, scope in loops
        )
    ):
        return None  # only ever read without gradients: feature extraction, kNN monitors, evaluation
    for kind, n in names:
        if TRAIN_NAME.search(snake(last_part(n))):
            return f"the {kind} is named `{n}`"
    if split is not None:
        return f"the dataset is built with {split}"
    if training is not None:
        return f"the loop at line {first_line(ctx, training)} iterates it and calls backward()"
    return None


def _loops_over(
    a: Analysis, call: cst.Call, func: FunctionInfo | None, loader_names: list[str]
) -> list[tuple[cst.For, FunctionInfo | None]]:
    """Loops over this loader: in its own scope, or in a helper of this file it is
    passed to."""
    ctx = a.ctx

    def over(
        scope: FunctionInfo | None, names: set[str], node: cst.CSTNode | None
    ) -> list[tuple[cst.For, FunctionInfo | None]]:
        out = []
        for loop, f in ctx.loops:
            if f is scope and isinstance(loop, cst.For):
                if any(e is node or dotted(e) in names for e in unwrap_iter(ctx, loop.iter)):
                    out.append((loop, f))
        return out

    found = over(func, set(loader_names), call)
    if not loader_names:
        return found
    for c in a.calls_in(func):
        callee = a.resolve_local(c, func)
        if callee is None:
            continue
        params = [p.name.value for p in callee.node.params.params]
        if params and params[0] == "self" and callee.cls is not None:
            params = params[1:]
        targets = set()
        for i, x in enumerate(c.args):
            if dotted(x.value) not in loader_names or x.star:
                continue
            if x.keyword is not None:
                targets.add(x.keyword.value)
            elif i < len(params):
                targets.add(params[i])
        if targets:
            found += over(callee, targets, None)
    return found
