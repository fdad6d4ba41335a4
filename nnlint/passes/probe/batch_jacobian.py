"""Extra.BATCH_JACOBIAN: does one sample's eval-mode output depend on the other samples, and which view folded the batch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from nnlint.passes.probe.recorder import Recorder
from nnlint.passes.probe.tensors import first_tensor, map_tensors
from nnlint.passes.state import reseed

if TYPE_CHECKING:
    from nnlint.passes.probe.run import Probe


def measure(probe: Probe, run: dict[str, Any]) -> dict[str, Any]:
    out = first_tensor(run["out"])
    x = run["leaf"]
    res: dict[str, Any] = {"measured": False, "wrt": run["leaf_kind"]}
    if out is None or x is None or not out.requires_grad:
        res["reason"] = "no differentiable path from a floating input to the output"
        return res
    if x.ndim == 0:
        res["reason"] = "scalar input"
        return res
    dims = list(range(max(1, min(x.ndim - 1, 3))))
    records: list[dict[str, Any]] = []
    for d in dims:
        size = x.shape[d]
        if size < 2:
            continue
        cands = [e for e in range(out.ndim) if out.shape[e] == size]
        if not cands:
            continue
        e = d if d in cands else (0 if 0 in cands else cands[0])
        i = 1
        try:
            (g,) = torch.autograd.grad(out.select(e, i).float().sum(), x, retain_graph=True, allow_unused=True)
        except RuntimeError as exc:
            res["reason"] = f"{type(exc).__name__}: {exc}"
            break
        if g is None:
            per = torch.zeros(size)
        else:
            per = g.detach().float().movedim(d, 0).reshape(size, -1).abs().sum(1).cpu()
        self_v = float(per[i])
        others = per.clone()
        others[i] = 0
        j = int(others.argmax())
        off = float(others[j])
        similar = [k for k in range(out.ndim) if k != e and out.shape[k] == size]
        rec = {
            "input_dim": d,
            "output_dim": e,
            "sample": i,
            "self_grad": self_v,
            "other_grad": off,
            "other_sample": j,
            "mixed_samples": int((others > 0).sum()),
            "output_shape": list(out.shape),
            "similarity_dims": similar,
        }
        records.append(rec)
        if off == 0:
            break
    res["dims"] = records
    res["measured"] = bool(records)
    if not records and "reason" not in res:
        res["reason"] = "the output has no batch dimension"
    if records and all(r["other_grad"] > 0 for r in records):
        d = records[0]["input_dim"]
        res["view"] = find_view(probe, run["inputs"], x.shape[d], d)
    return res


def find_view(probe: Probe, inputs: Any, n: int, d: int) -> dict[str, Any] | None:
    """The first view/reshape of the forward on ``inputs`` that moved dim ``d`` (length ``n``)."""
    rec = Recorder(
        probe.model, probe.path, n, stats=False, activations=False, grad_hooks=False, track_params=False, view_dim=d
    )
    try:
        with torch.no_grad():
            reseed()
            with rec:
                probe.forward(map_tensors(inputs, lambda t: t.detach()))
    except Exception:
        return None
    finally:
        rec.close()
    return rec.first_view
