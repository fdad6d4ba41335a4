"""Extra.BATCH_JACOBIAN for token inputs: perturb one sample's tokens in eval mode and see which output samples change, along the user's own input axes.

A gradient needs a floating leaf, and for token inputs the only one is inside the model (an
embedding's output), which sees the model's own axes: a library encoder fed ``tokens.t()``
reads the user's batch as its sequence, and its embedding output looks clean. Perturbation
works on the user's input itself: change input sample j (along input dim d) to other tokens
the input already holds, rerun the same seeded eval-mode forward, and measure how much every
output sample along the matching output dim moved. A clean batch axis moves only sample j.

Also records the first call of a library model with a batch-first contract (a
``transformers`` model: ``input_ids`` is ``(batch, seq)``) that received the user's dim 0 on
another axis, with the user's line of that call. Knows no rule.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nnlint.passes.probe.batch_jacobian import find_view
from nnlint.passes.probe.tensors import first_tensor, map_tensors
from nnlint.passes.state import reseed

if TYPE_CHECKING:
    from nnlint.passes.probe.run import Probe

#: the input sample whose tokens are changed (as the gradient measurement's output sample)
SAMPLE = 1
#: two identical forwards may differ by this much (relative to one sample's output) at most
REPEAT_RTOL = 1e-5


def _per_sample(delta: torch.Tensor, axis: int, size: int) -> torch.Tensor:
    return delta.movedim(axis, 0).reshape(size, -1).sum(1).cpu()


def _other_tokens(row: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """Every token of ``row`` replaced by another value the input already holds (so it
    stays a valid id): the next larger distinct value, cyclically."""
    if row.dtype == torch.bool:
        return ~row
    vals = torch.unique(pool)
    if vals.numel() >= 2:
        idx = torch.searchsorted(vals, row.contiguous())
        return vals[(idx + 1) % vals.numel()]
    u = int(vals[0]) if vals.numel() else 0
    return torch.full_like(row, 0 if u != 0 else 1)


def measure_run(probe: Probe, inputs: Any) -> dict[str, Any]:
    """The measurement on the probe's eval-mode inputs: the first tensor (integer: there is
    no floating input) is perturbed; the output judged is the probe's first floating one."""
    x = first_tensor(inputs, floating=False)
    if x is None:
        return {"measured": False, "wrt": "tokens", "reason": "no input tensor"}

    def forward(t: torch.Tensor) -> torch.Tensor | None:
        reseed()
        return first_tensor(probe.forward(map_tensors(inputs, lambda u: t if u is x else u.detach())))

    return measure(x.detach(), forward, probe.model, probe.path, lambda n, d: find_view(probe, inputs, n, d))


def measure(
    x: torch.Tensor,
    forward: Callable[[torch.Tensor], torch.Tensor | None],
    model: nn.Module,
    user_path: str | None,
    find_view: Callable[[int, int], dict[str, Any] | None],
) -> dict[str, Any]:
    """Mixing along input dims 0, 1, 2 of the token tensor ``x``. ``forward(t)`` runs the
    seeded eval-mode forward with ``t`` in place of ``x`` and returns the output tensor the
    probe judges (None: none). Keys: measured, wrt ('tokens'), dims (per input dim: input_dim,
    output_dim, sample (the perturbed input sample), self_change, other_change, other_sample
    (the output sample that moved most), mixed_samples, output_scale, output_shape,
    similarity_dims), view
    (the first view/reshape that moved dim 0), pivot (see ``_pivot``), reason."""
    res: dict[str, Any] = {"measured": False, "wrt": "tokens"}
    if x.ndim == 0:
        res["reason"] = "scalar input"
        return res
    watch = _Watch(model, user_path)
    with torch.no_grad():
        try:
            with watch:
                base = forward(x)
            base_calls, watch.calls = watch.calls, []
            again = forward(x)
        except Exception as exc:
            res["reason"] = f"{type(exc).__name__}: {exc}"
            return res
        if base is None or again is None:
            res["reason"] = "no floating output"
            return res
        base = base.detach().float()
        if not bool(torch.isfinite(base).all()):
            res["reason"] = "non-finite output"
            return res
        # a model that keeps state between calls (or a nondeterministic one) moves every
        # sample from one call to the next: then a change cannot be put down to the tokens
        scale = float(base.abs().sum()) / max(1, x.shape[0])
        if again.shape != base.shape or float((again.detach().float() - base).abs().sum()) > REPEAT_RTOL * scale:
            res["reason"] = "the same forward twice gave different outputs (state kept between calls?)"
            return res
        records: list[dict[str, Any]] = []
        for d in range(min(x.ndim, 3)):
            size = x.shape[d]
            if size <= SAMPLE:
                continue
            cands = [e for e in range(base.ndim) if base.shape[e] == size]
            if not cands:
                continue
            e = d if d in cands else (0 if 0 in cands else cands[0])
            new = x.clone()
            new.select(d, SAMPLE).copy_(_other_tokens(x.select(d, SAMPLE), x))
            try:
                with watch if d == 0 else _NoWatch():
                    out = forward(new)
            except Exception as exc:
                res["reason"] = f"{type(exc).__name__}: {exc}"
                break
            if out is None or out.shape != base.shape:
                res["reason"] = "the output's shape depends on the tokens"
                break
            delta = torch.nan_to_num((out.detach().float() - base).abs(), nan=float("inf"))
            per = _per_sample(delta, e, size)
            self_v = float(per[SAMPLE])
            others = per.clone()
            others[SAMPLE] = 0
            i = int(others.argmax())
            off = float(others[i])
            records.append(
                {
                    "input_dim": d,
                    "output_dim": e,
                    "sample": SAMPLE,
                    "self_change": self_v,
                    "other_change": off,
                    "other_sample": i,
                    "mixed_samples": int((others > 0).sum()),
                    # how large one output sample is (mean over samples of the sum of |output|):
                    # float32 round-off in other samples stays orders of magnitude below it
                    "output_scale": float(_per_sample(base.abs(), e, size).mean()),
                    "output_shape": list(base.shape),
                    "similarity_dims": [k for k in range(base.ndim) if k != e and base.shape[k] == size],
                }
            )
            if d == 0:
                res["pivot"] = _pivot(base_calls, watch.calls, x.shape[0])
    res["dims"] = records
    res["measured"] = bool(records)
    if not records and "reason" not in res:
        res["reason"] = "the output has no batch dimension"
    if records and records[0]["input_dim"] == 0 and records[0]["other_change"] > 0:
        res["view"] = find_view(x.shape[0], 0)
    return res


def _pivot(base: list[dict[str, Any]], moved: list[dict[str, Any]], n: int) -> dict[str, Any] | None:
    """The first watched call whose input changed when input sample ``SAMPLE`` changed,
    if it received that sample on an axis other than 0: exactly one axis of length ``n``
    holds every changed entry at index ``SAMPLE``. None when the first such call got it on
    dim 0, or when it cannot be told."""
    for a, b in zip(base, moved):
        if a["module"] != b["module"] or a["x"].shape != b["x"].shape:
            return None
        ta, tb = a["x"], b["x"]
        diff = ta != tb
        if ta.is_floating_point():
            diff &= ~(torch.isnan(ta) & torch.isnan(tb))
        if not bool(diff.any()):
            continue
        idx = diff.nonzero()
        axes = [k for k in range(ta.ndim) if ta.shape[k] == n and bool((idx[:, k] == SAMPLE).all())]
        if len(axes) != 1 or axes[0] == 0:
            return None
        return {k: a[k] for k in ("module", "type", "line")} | {"axis": axes[0], "shape": list(ta.shape)}
    return None


def _batch_first_library_model(mod: nn.Module) -> bool:
    """A transformers model: its inputs are batch-first by contract (no batch_first switch)."""
    return any(c.__name__ == "PreTrainedModel" and c.__module__.startswith("transformers") for c in type(mod).__mro__)


class _NoWatch:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


class _Watch:
    """Records the input of each outermost call of a batch-first library model below the
    root (the root's input is the user's own), with the user's line of the call."""

    def __init__(self, model: nn.Module, user_path: str | None) -> None:
        self.targets = [(q, m) for q, m in model.named_modules() if q and _batch_first_library_model(m)]
        self.user_real = os.path.realpath(user_path) if user_path else None
        self.calls: list[dict[str, Any]] = []
        self.depth = 0
        self.handles: list[Any] = []
        self._real: dict[str, bool] = {}

    def __enter__(self) -> _Watch:
        for q, m in self.targets:
            try:
                self.handles.append(m.register_forward_pre_hook(self._pre(q), with_kwargs=True))
                self.handles.append(m.register_forward_hook(self._post, always_call=True))
            except Exception:  # scripted modules cannot be hooked
                continue
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()
        self.depth = 0

    def _pre(self, name: str) -> Callable[..., None]:
        def hook(mod: nn.Module, args: tuple, kwargs: dict) -> None:
            self.depth += 1
            if self.depth > 1:
                return
            t = kwargs.get("input_ids")
            if not isinstance(t, torch.Tensor):
                t = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)
            if t is not None:
                self.calls.append(
                    {"module": name, "type": type(mod).__name__, "line": self._line(), "x": t.detach().clone()}
                )

        return hook

    def _post(self, *_: Any) -> None:
        self.depth = max(0, self.depth - 1)

    def _line(self) -> int | None:
        f: FrameType | None = sys._getframe(1)
        while f is not None:
            fname = f.f_code.co_filename
            hit = self._real.get(fname)
            if hit is None:
                hit = self._real[fname] = self.user_real is not None and os.path.realpath(fname) == self.user_real
            if hit:
                return f.f_lineno
            f = f.f_back
        return None
