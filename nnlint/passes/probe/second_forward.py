"""Extra.SECOND_FORWARD: two seeded eval-mode forwards compared, and the first module whose output differs."""

from __future__ import annotations

import math
from typing import Any

import torch

from nnlint.passes.probe.tensors import all_tensors


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    ta = [t for t in all_tensors(a["out"]) if t.is_floating_point()]
    tb = [t for t in all_tensors(b["out"]) if t.is_floating_point()]
    res: dict[str, Any] = {"compared": bool(ta) and len(ta) == len(tb)}
    if not res["compared"]:
        return res
    diff = 0.0
    scale = 0.0
    for x, y in zip(ta, tb):
        if x.shape != y.shape:
            diff = float("inf")
            continue
        if not x.numel():
            continue
        x, y = x.detach(), y.detach()
        scale = max(scale, float(torch.nan_to_num(x.abs().amax().double())))
        if torch.equal(x, y):  # the common case, without allocating a difference
            continue
        dx = (x - y).abs()
        dx = dx.masked_fill(torch.isnan(x) & torch.isnan(y), 0.0)
        diff = max(diff, float(torch.nan_to_num(dx.amax().double(), nan=float("inf"))))
    res.update(max_abs_diff=diff, max_abs_output=scale, rel_diff=diff / scale if scale > 0 else diff)
    first = None
    for (na, va), (nb, vb) in zip(a["sums"], b["sums"]):
        if na != nb:
            break
        if va != vb and not (math.isnan(va) and math.isnan(vb)):
            first = na
            break
    res["first_module"] = first
    return res
