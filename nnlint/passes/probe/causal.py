"""Extra.CAUSAL_JACOBIAN (NN314): which input positions one output position depends on, and where the attention is.

On the eval-mode forward the probe already ran with a differentiable input (the first floating input, or the first embedding's
output for token inputs), backpropagate one output position and see which input
positions along the sequence axis it depends on. A causal model's position t depends on
positions ≤ t only.

One function that measures, one that finds the user's attention line, and
``measure_run`` that applies both to the probe's eval-mode run. None knows any rule.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

import torch
from torch.overrides import TorchFunctionMode

from nnlint.passes.probe.tensors import map_tensors
from nnlint.passes.state import reseed

if TYPE_CHECKING:
    from nnlint.passes.probe.run import Probe

#: relative gradient below which a position counts as independent (float32 round-off)
RTOL = 1e-6


def _first_tensor(obj: Any) -> torch.Tensor | None:
    if isinstance(obj, torch.Tensor):
        return obj if obj.is_floating_point() else None
    if isinstance(obj, dict) or hasattr(obj, "values") and callable(obj.values):
        items = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        items = list(obj)
    else:
        return None
    for it in items:
        t = _first_tensor(it)
        if t is not None:
            return t
    return None


def _per_position(g: torch.Tensor | None, axis: int, size: int) -> torch.Tensor:
    if g is None:
        return torch.zeros(size)
    return g.detach().float().movedim(axis, 0).reshape(size, -1).abs().sum(1).cpu()


def measure(out: Any, leaf: torch.Tensor | None, leaf_kind: str | None) -> dict[str, Any]:
    """Which input positions output position t depends on, along the first axis (1, then
    0) on which the output and the input have the same length and positions mix (t
    depends on some other position; a batch axis does not mix). Keys: measured, axis, length, t, per_position
    (gradient size per input position), leak (first future position with a gradient, or
    None), wrt ('input' | 'embedding'), reason (when not measured)."""
    res: dict[str, Any] = {"measured": False, "wrt": leaf_kind}
    y = _first_tensor(out)
    if y is None or leaf is None or not y.requires_grad:
        res["reason"] = "no differentiable path from the input to the output"
        return res
    if leaf.ndim < 2 or y.ndim < 2:
        res["reason"] = "no sequence axis"
        return res
    for axis in (1, 0):
        if axis >= leaf.ndim or axis >= y.ndim:
            continue
        n = leaf.shape[axis]
        if n < 3 or y.shape[axis] != n:
            continue
        t = n // 2
        try:
            (g,) = torch.autograd.grad(y.select(axis, t).float().sum(), leaf, retain_graph=True, allow_unused=True)
        except RuntimeError as exc:
            res["reason"] = f"{type(exc).__name__}: {exc}"
            return res
        per = _per_position(g, axis, n)
        scale = float(per.max())
        others = per.clone()
        others[t] = 0
        if scale == 0 or float(others.max()) <= RTOL * scale:
            continue  # positions do not mix along this axis (a batch axis), or no gradient at all
        res.update(measured=True, axis=axis, length=n)
        future = [k for k in range(t + 1, n) if float(per[k]) > RTOL * scale]
        if future:
            # the first leaking position: from position 0 when it leaks there too
            (g0,) = torch.autograd.grad(y.select(axis, 0).float().sum(), leaf, retain_graph=True, allow_unused=True)
            per0 = _per_position(g0, axis, n)
            scale0 = float(per0.max())
            fut0 = [k for k in range(1, n) if scale0 > 0 and float(per0[k]) > RTOL * scale0]
            if fut0:
                t, per, future = 0, per0, fut0
        res.update(
            t=t,
            per_position=[float(v) for v in per],
            leak=future[0] if future else None,
            leak_grad=float(per[future[0]]) if future else 0.0,
            self_grad=float(per[t]),
            leaking_positions=len(future),
        )
        return res
    res.setdefault("reason", "no sequence axis on which positions mix")
    return res


ATTENTION_FUNCS = (
    "scaled_dot_product_attention",
    "multi_head_attention_forward",
    "masked_fill",
    "masked_fill_",
    "softmax",
    "_transformer_encoder_layer_fwd",
    "_native_multi_head_attention",
)


class _Finder(TorchFunctionMode):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.real = os.path.realpath(path) if path else None
        self.hits: dict[str, tuple[int, str]] = {}
        self._cache: dict[str, bool] = {}

    def _user_frame(self) -> tuple[int, str] | None:
        f: FrameType | None = sys._getframe(2)
        while f is not None:
            name = f.f_code.co_filename
            hit = self._cache.get(name)
            if hit is None:
                hit = self._cache[name] = self.real is not None and os.path.realpath(name) == self.real
            if hit:
                return f.f_lineno, f.f_code.co_name
            f = f.f_back
        return None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in ATTENTION_FUNCS and name not in self.hits:
            if name not in ("softmax",) or (args and isinstance(args[0], torch.Tensor) and args[0].ndim >= 3):
                where = self._user_frame()
                if where is not None:
                    self.hits[name] = where
        return func(*args, **(kwargs or {}))


def attention_line(forward: Callable[[], Any], path: str) -> dict[str, Any] | None:
    """The user's line of the first attention in a forward: a masked_fill (where a mask
    is applied), else a scaled_dot_product_attention / MultiheadAttention call, else the
    softmax of a ≥3-d score tensor."""
    finder = _Finder(path)
    try:
        with torch.no_grad(), finder:
            forward()
    except Exception:
        return None
    for name in (
        "masked_fill",
        "masked_fill_",
        "scaled_dot_product_attention",
        "multi_head_attention_forward",
        "_native_multi_head_attention",
        "_transformer_encoder_layer_fwd",
        "softmax",
    ):
        if name in finder.hits:
            line, func = finder.hits[name]
            return {"op": name.rstrip("_") if name.startswith("masked") else name, "line": line, "function": func}
    return None


def measure_run(probe: Probe, run: dict[str, Any]) -> dict[str, Any]:
    """Extra.CAUSAL_JACOBIAN on the probe's eval-mode run, and where the attention is."""
    res = measure(run["out"], run["leaf"], run["leaf_kind"])
    if res.get("leak") is not None:
        detached = map_tensors(run["inputs"], lambda t: t.detach())

        def forward() -> Any:
            reseed()
            return probe.forward(detached)

        res["attention"] = attention_line(forward, probe.path)
    return res
