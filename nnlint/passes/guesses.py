"""Where the settings a dynamic finding rests on came from, and how guesses are kept honest.

Every graph/probe finding records ``guesses`` = {"input": ..., "loss": ..., "target": ...}
with values ``declared`` (pyproject, --input-shape, nnlint_examples(), example_input_array),
``file`` (read from the user's file: a call with literal arguments, a module constant such as
``sequence_length = 28``, a loss applied to the model's output) or ``guessed``.

A guessed input is first made to satisfy the file's own constants (``sequence_length``,
``image_size`` ...). A finding that depends on a guessed input must hold on a second
plausible input too (``confirm``), or it is not reported.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Callable
from typing import Any

DECLARED, FILE, GUESSED = "declared", "file", "guessed"

#: probe findings whose measurement depends on the input the model was fed
INPUT_DEPENDENT = frozenset({"NN302", "NN303", "NN304", "NN305", "NN306", "NN307", "NN310", "NN311"})

SEQ_NAMES = re.compile(
    r"^(seq(uence)?_?len(gth)?|max_?(seq_?)?len(gth)?|block_?size|context_?(len(gth)?|size)|"
    r"n_?steps|num_?steps|time_?steps|window(_?size)?|n_?frames|num_?frames|"
    r"(max_)?(seq|sent(ence)?|text|doc)_?len(gth)?|n_?tokens|num_?tokens)$",
    re.I,
)
IMAGE_NAMES = re.compile(
    r"^(image_?size|img_?size|im_?size|resolution|image_?(dim|res)|img_?(dim|res)|"
    r"height|width|img_?(height|width)|image_?(height|width)|crop_?size|patch_?grid)$",
    re.I,
)


def input_source(spec: Any) -> str:
    origin = str(getattr(spec, "origin", "") or "")
    if origin.startswith(("--input-shape", "pyproject", "nnlint_examples()", "example_input_array")):
        return DECLARED
    if origin.startswith(("the call at line", "file constant")):
        return FILE
    if _certain(spec):
        return FILE
    return GUESSED


def _certain(spec: Any) -> bool:
    """A single (batch, in_features) vector input read off the model's first Linear: the
    only free size is the batch, so nothing was guessed."""
    args = list(getattr(spec, "args", None) or [])
    if len(args) != 1 or getattr(spec, "kwargs", None):
        return False
    t = args[0]
    shape = getattr(t, "shape", None)
    dtype = str(getattr(t, "dtype", ""))
    origin = str(getattr(spec, "origin", "") or "")
    return (
        shape is not None
        and len(shape) == 2
        and dtype.startswith("float")
        and origin.startswith("inferred from")
        and "in_features=" in origin
        and "," not in origin.split(" (")[0]
    )


def loss_source(cand: Any, example: Any = None) -> str:
    if getattr(cand, "loss", None) is not None or (example is not None and getattr(example, "loss", None) is not None):
        return DECLARED
    src = (getattr(cand, "meta", None) or {}).get("loss_source")
    if src:
        return src
    return GUESSED


def target_source(cand: Any, example: Any = None) -> str:
    meta = getattr(cand, "meta", None) or {}
    if (
        getattr(cand, "target", None) is not None
        or meta.get("target_shape")
        or (example is not None and getattr(example, "target", None) is not None)
    ):
        return DECLARED
    return GUESSED


def describe(cand: Any, spec: Any, example: Any = None) -> dict[str, str]:
    return {"input": input_source(spec), "loss": loss_source(cand, example), "target": target_source(cand, example)}


# ---------------------------------------------------------------------------------------
# the file's constants


def file_constants(text: str) -> dict[str, int]:
    """Module-level integer constants (``sequence_length = 28``, ``IMG_SIZE = 64``, also
    simple arithmetic of earlier constants)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    env: dict[str, int] = {}

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name) and node.id in env:
            return env[node.id]
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Add, ast.Sub, ast.FloorDiv)):
            a, b = ev(node.left), ev(node.right)
            return {ast.Mult: a * b, ast.Add: a + b, ast.Sub: a - b, ast.FloorDiv: a // b if b else 0}[type(node.op)]
        raise ValueError

    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            pairs = []
            t = stmt.targets[0]
            if isinstance(t, ast.Name):
                pairs = [(t.id, stmt.value)]
            elif isinstance(t, ast.Tuple) and isinstance(stmt.value, ast.Tuple) and len(t.elts) == len(stmt.value.elts):
                pairs = [(e.id, v) for e, v in zip(t.elts, stmt.value.elts) if isinstance(e, ast.Name)]
            for name, value in pairs:
                try:
                    env[name] = ev(value)
                except (ValueError, KeyError, ZeroDivisionError):
                    env.pop(name, None)
    return env


def constant_specs(spec: Any, text: str) -> list[tuple[Any, str]]:
    """Variants of a guessed ``spec`` whose sequence length / image size is the file's own
    constant, each with its origin text."""
    from nnlint.passes.loader import SEQ_LEN, InputSpec, TensorSpec

    consts = file_constants(text)
    seqs = [(n, v) for n, v in consts.items() if SEQ_NAMES.match(n) and 1 < v <= 1024]
    imgs = [(n, v) for n, v in consts.items() if IMAGE_NAMES.match(n) and 4 <= v <= 512]
    out: list[tuple[Any, str]] = []
    args = list(spec.args)
    idx = [i for i, a in enumerate(args) if isinstance(a, TensorSpec)]
    if not idx:
        return out
    for name, value in seqs:
        new_args = []
        changed = False
        for a in args:
            if isinstance(a, TensorSpec) and len(a.shape) >= 2:
                shape = list(a.shape)
                # (B, T) ids, (B, T, F) batch-first, (T, B, F) time-first: T is the guessed length
                for d in (1,) if len(shape) == 2 else (1, 0):
                    if shape[d] == SEQ_LEN:
                        shape[d] = value
                        changed = True
                        break
                a = dataclasses.replace(a, shape=tuple(shape))
            new_args.append(a)
        if changed:
            out.append(
                (InputSpec(args=new_args, kwargs=dict(spec.kwargs), origin=f"file constant {name} = {value}"), name)
            )
    for name, value in imgs:
        new_args = []
        changed = False
        for a in args:
            if isinstance(a, TensorSpec) and len(a.shape) >= 4 and a.dtype.startswith("float"):
                new_shape = (a.shape[0], a.shape[1], *([value] * (len(a.shape) - 2)))
                changed = changed or new_shape != a.shape
                a = dataclasses.replace(a, shape=new_shape)
            new_args.append(a)
        if changed:
            out.append(
                (InputSpec(args=new_args, kwargs=dict(spec.kwargs), origin=f"file constant {name} = {value}"), name)
            )
    return out


def prefer_file_constants(
    model: Any, spec: Any, text: str, device: str, try_forward: Callable[[Any, Any, str], BaseException | None]
) -> Any:
    """The first variant of a guessed spec that uses the file's constants and runs; else the spec."""
    if spec is None or input_source(spec) != GUESSED:
        return spec
    for cand, _name in constant_specs(spec, text):
        if try_forward(model, cand, device) is None:
            return cand
    return spec


# ---------------------------------------------------------------------------------------
# a second plausible input


def alternate_spec(
    model: Any, spec: Any, device: str, try_forward: Callable[[Any, Any, str], BaseException | None]
) -> Any:
    """Another input the model accepts that differs from ``spec`` in a size the guess chose
    (sequence length, image size); None when only the guessed size fits (then the input is
    as good as certain)."""
    from nnlint.passes.loader import InputSpec, TensorSpec

    if spec is None or spec.kwargs or len(spec.args) != 1 or not isinstance(spec.args[0], TensorSpec):
        return None
    t = spec.args[0]
    shape = list(t.shape)
    options: list[tuple[int, ...]] = []
    search = getattr(spec, "search", None) or {}
    if len(shape) >= 3 and t.dtype.startswith("float"):
        cur = shape[-1]
        for s in list(search.get("fits") or [])[:6] + [cur * 2, cur + cur // 2, max(8, cur // 2)]:
            if s != cur and s >= 4:
                options.append((shape[0], shape[1], *([s] * (len(shape) - 2))))
        if len(shape) == 3:
            options.append((shape[0], shape[1] * 2, shape[2]))  # (B, T, F): another length
    elif len(shape) == 2 and not t.dtype.startswith(("float", "bfloat", "bool")):
        options.append((shape[0], shape[1] * 2))  # token ids: another length
    seen = set()
    for shp in options:
        if shp in seen:
            continue
        seen.add(shp)
        alt = InputSpec(args=[dataclasses.replace(t, shape=shp)], origin=spec.origin + " (second size)")
        if try_forward(model, alt, device) is None and _out_batch(model, alt, device) in (None, shp[0]):
            return alt  # (a size that folds positions into the batch is no plausible input)
    return None


def confirm(first: list[Any], rerun: Callable[[], list[Any] | None]) -> tuple[list[Any], list[Any]]:
    """Keep an input-dependent finding only when the second plausible input shows it too
    (same code, same module). Returns (kept, dropped)."""
    dependent = [d for d in first if d.code in INPUT_DEPENDENT]
    if not dependent:
        return first, []
    second = rerun()
    if second is None:
        return first, []
    seen = {(d.code, d.module) for d in second}
    kept = [d for d in first if d.code not in INPUT_DEPENDENT or (d.code, d.module) in seen]
    dropped = [d for d in dependent if (d.code, d.module) not in seen]
    return kept, dropped


def _out_batch(model: Any, spec: Any, device: str) -> int | None:
    import torch

    args, kwargs = spec.make(device)
    try:
        with torch.no_grad():
            out = model(*args, **kwargs)
    except (Exception, SystemExit):
        return None
    from nnlint.passes.probe.tensors import first_tensor

    t = first_tensor(out)
    return int(t.shape[0]) if t is not None and t.ndim >= 1 else None


def prefer_batch_preserving(model: Any, spec: Any, device: str) -> Any:
    """A guessed image size at which the output has more or fewer samples than the input
    (``x.reshape(-1, 7 * 7 * 64)`` at 256×256 folds spatial positions into the batch) is
    not what the file was written for: look near the size that keeps the batch (84×84 for
    the DQN above). The spec unchanged when it keeps the batch or no size nearby does."""
    from nnlint.passes.loader import TensorSpec

    if spec is None or input_source(spec) != GUESSED or spec.kwargs or len(spec.args) != 1:
        return spec
    t = spec.args[0]
    if not isinstance(t, TensorSpec) or len(t.shape) < 4 or not t.dtype.startswith("float"):
        return spec
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tens of tiny forwards: one thread, no spinning on a busy machine
    try:
        return _batch_search(model, spec, t, device)
    finally:
        torch.set_num_threads(threads)


def _batch_search(model: Any, spec: Any, t: Any, device: str) -> Any:
    from nnlint.passes.loader import InputSpec

    b = 2
    small = InputSpec(args=[dataclasses.replace(t, shape=(b, *t.shape[1:]))], origin=spec.origin)
    got = _out_batch(model, small, device)
    if got is None or got == b or got % b:
        return spec
    nd = len(t.shape) - 2
    s0 = t.shape[-1]
    center = s0 / (got / b) ** (1 / nd)
    lo, hi = max(8, int(center * 0.5)), min(512, int(center * 2) + 1)
    for s in sorted(range(lo, hi + 1), key=lambda s: (abs(s - center), s))[:120]:
        cand = InputSpec(args=[dataclasses.replace(t, shape=(b, t.shape[1], *([s] * nd)))], origin=spec.origin)
        if _out_batch(model, cand, device) == b:
            return InputSpec(
                args=[dataclasses.replace(t, shape=(t.shape[0], t.shape[1], *([s] * nd)))],
                origin=f"{spec.origin}; {s}×{s}: the size at which the output keeps the batch",
                search=spec.search,
            )
    return spec


# ---------------------------------------------------------------------------------------
# a probe loss that raises because of a bug a rule describes

_LOSS_FAILURES = (
    (re.compile(r"elements of input should be between 0 and 1"), "bce_range"),
    (
        re.compile(
            r"Target -?\d+ is out of bounds|target .* out of bounds|index -?\d+ is out of bounds|"
            r"IndexError: Target",
            re.I,
        ),
        "class_range",
    ),
)


def loss_failure(
    cand: Any, example: Any, exc: BaseException, output_shapes: list | None = None
) -> tuple[str, str, int | None] | None:
    """(code, message, line) when the probe's loss raised because of a bug a rule describes
    and the loss is the user's (declared, or applied to this model's output in the file);
    ("NN002", why, None) when the loss was only nnlint's guess; None otherwise."""
    text = f"{type(exc).__name__}: {exc}"
    kind = next((k for pat, k in _LOSS_FAILURES if pat.search(text)), None)
    if kind is None:
        return None
    src = loss_source(cand, example)
    meta = getattr(cand, "meta", None) or {}
    loss = getattr(cand, "loss_name", None) or "the loss"
    name = getattr(cand, "name", "the model")
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if src == GUESSED:
        return (
            "NN002",
            f"{name}: the loss nnlint guessed ({loss}) does not fit its output ({first}); "
            "declare the loss in nnlint_examples() or [[tool.nnlint.models]] to check it",
            None,
        )
    line = meta.get("loss_line")
    if kind == "bce_range":
        return (
            "NN105",
            f"{loss} applied to the output of {name} raised `{first}`: the output is not a probability "
            "(raw logits or an unbounded activation); use BCEWithLogitsLoss on the logits, or apply "
            "torch.sigmoid first",
            line,
        )
    one_unit = any(isinstance(s, (list, tuple)) and len(s) >= 2 and s[-1] == 1 for s in (output_shapes or [])[:1])
    if one_unit and loss in ("CrossEntropyLoss", "NLLLoss"):
        return (
            "NN107",
            f"{loss} applied to the 1-unit output of {name} raised `{first}`: with one unit there is "
            "one class; use BCEWithLogitsLoss for a binary head, or out_features=number of classes",
            line,
        )
    return (
        "NN502",
        f"{loss} applied to the output of {name} raised `{first}`: a class index is outside "
        "[0, number of output units)",
        line,
    )
