"""The data probe (NN5): summarise the first batches of the user's data into a DataContext."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from nnlint.contexts.data import DataContext, TensorSummary
from nnlint.contexts.probe import ProbeContext
from nnlint.passes.probe.constants import MAX_DATA_BATCHES
from nnlint.passes.probe.result import ProbeError
from nnlint.passes.probe.tensors import first_tensor

if TYPE_CHECKING:
    from nnlint.passes.probe.run import Probe


def measure(probe: Probe, ctx: ProbeContext | None) -> DataContext:
    data = probe.example.data
    if callable(data) and not hasattr(data, "__iter__"):
        data = data()
    batches = 0
    samples = 0
    xs: dict[str, list[torch.Tensor]] = {}
    ys: list[torch.Tensor] = []
    try:
        for item in data:
            if isinstance(item, dict):
                x, y = item.get("inputs", item.get("input")), item.get("target", item.get("label"))
            elif isinstance(item, (tuple, list)) and len(item) >= 2:
                x, y = item[0], item[1]
            else:
                x, y = item, None
            for pos, t in _positions(x):
                xs.setdefault(pos, []).append(_as_tensor(t))
            if y is not None:
                ys.append(_as_tensor(y))
            first = first_tensor(x, floating=False)
            samples += int(first.shape[0]) if isinstance(first, torch.Tensor) and first.ndim else 1
            batches += 1
            if batches >= MAX_DATA_BATCHES:
                break
    except Exception as exc:
        raise ProbeError("data", exc) from exc
    inputs = [_summarise(pos, ts) for pos, ts in xs.items() if ts]
    target = _summarise("target", ys) if ys else None
    integer = bool(ys) and all(not (t.is_floating_point() or t.is_complex()) and t.dtype != torch.bool for t in ys)
    counts: dict[int, int] = {}
    negative: dict[int, int] = {}
    if integer:
        flat = torch.cat([t.reshape(-1).long().cpu() for t in ys])
        neg = flat[flat < 0]
        if neg.numel():
            vals, cnt = torch.unique(neg, return_counts=True)
            negative = {int(v): int(c) for v, c in zip(vals.tolist(), cnt.tolist())}
        flat = flat[flat >= 0]
        if flat.numel():
            bc = torch.bincount(flat)
            counts = {int(i): int(c) for i, c in enumerate(bc.tolist()) if c}
    classes = None
    source = "unknown"
    if ctx is not None and ctx.loss is not None and ctx.loss.classes:
        classes, source = ctx.loss.classes, f"the model's {ctx.loss.classes}-class head"
    elif probe.example.classes:
        classes, source = probe.example.classes, "declared classes"
    return DataContext(
        model_name=probe.model_name,
        path=probe.path,
        batches=batches,
        samples=samples,
        inputs=inputs,
        target=target,
        target_integer=integer,
        class_counts=counts,
        negative_labels=negative,
        classes=classes,
        classes_source=source,
        line=_examples_line(probe.path),
    )


def _positions(x: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(x, dict):
        for k, v in x.items():
            yield f"inputs[{k!r}]", v
    elif isinstance(x, (tuple, list)):
        for i, v in enumerate(x):
            yield f"inputs[{i}]", v
    elif x is not None:
        yield "inputs", x


def _as_tensor(t: Any) -> torch.Tensor:
    if isinstance(t, torch.Tensor):
        return t.detach()
    return torch.as_tensor(t)


def _summarise(pos: str, ts: list[torch.Tensor]) -> TensorSummary:
    ts = [t.cpu() for t in ts]
    flat = torch.cat([t.reshape(-1) for t in ts]) if ts else torch.zeros(0)
    s = TensorSummary(
        position=pos,
        dtype=str(ts[0].dtype).replace("torch.", ""),
        shape=tuple(ts[0].shape),
        count=int(flat.numel()),
        nonfinite=0,
    )
    if flat.is_floating_point() or flat.is_complex():
        fin = torch.isfinite(flat)
        s.nonfinite = int((~fin).sum())
        good = flat[fin].double()
        if good.numel():
            s.mean, s.std = float(good.mean()), float(good.std(correction=0))
            s.min, s.max = float(good.min()), float(good.max())
        if ts[0].ndim >= 2 and all(t.ndim == ts[0].ndim and t.shape[1:] == ts[0].shape[1:] for t in ts):
            x = torch.cat(ts).double()
            x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
            per = x.movedim(1, 0).reshape(x.shape[1], -1).std(dim=1, correction=0)
            if per.numel() <= 4096:
                s.feature_std = per.tolist()
    elif flat.numel() and flat.dtype != torch.bool:
        s.min, s.max = float(flat.min()), float(flat.max())
        f = flat.double()
        s.mean, s.std = float(f.mean()), float(f.std(correction=0))
    return s


def _examples_line(path: str) -> int | None:
    try:
        with open(path, encoding="utf-8") as fh:
            for i, text in enumerate(fh, 1):
                if re.match(r"\s*def\s+nnlint_examples\s*\(", text):
                    return i
    except OSError:
        return None
    return None
