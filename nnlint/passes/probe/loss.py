"""The probe's loss: the declared one, else one chosen from the output's shape, with its targets (``Loss``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nnlint.contexts.probe import LossInfo
from nnlint.example import Example
from nnlint.passes.probe.tensors import all_tensors, first_tensor, out_tensor


def _loss_kind(name: str) -> str:
    n = name.lower().replace("_", "").replace("loss", "")
    if "crossentropy" in n and "binary" not in n:
        return "cross_entropy"
    if n in ("nll", "nllloss", "nll2d") or n.startswith("nll"):
        return "nll"
    if "bcewithlogits" in n or "binarycrossentropywithlogits" in n:
        return "bce_logits"
    if n in ("bce", "binarycrossentropy"):
        return "bce"
    if n in ("mse", "l1", "smoothl1", "huber", "meansquarederror"):
        return "mse"
    return "declared"


def _class_dim(out: torch.Tensor, k: int | None) -> int | None:
    if out.ndim < 2:
        return None
    if k is None:
        return out.ndim - 1
    if out.shape[-1] == k:
        return out.ndim - 1
    if out.shape[1] == k:
        return 1
    return None


def _over_targets(kind: str, cdim: int) -> Callable[[Any], torch.Tensor]:
    """The cross-entropy (or NLL) averaged over every possible class target: what a batch
    of uniformly random targets estimates, exactly (label smoothing averages out too)."""

    def over_targets(o: Any) -> torch.Tensor:
        p = out_tensor(o).detach().double()
        if kind == "nll":
            per = -p.mean(cdim)
        else:  # shifted by the max first: huge equal logits would round logsumexp - mean to 0
            z = p - p.amax(cdim, keepdim=True)
            per = torch.logsumexp(z, cdim) - z.mean(cdim)
        return per.mean()

    return over_targets


class Loss:
    """A loss closure with a fixed target, built once from the first output. ``fn`` is the
    loss whose value is reported; ``total`` adds, when nnlint chose the loss, the mean
    square of the model's other outputs (a detection model's box head, a VAE's mu/logvar)
    so that every output's parameters get a gradient, as in the user's real training."""

    def __init__(self, example: Example, out: Any, gen: torch.Generator, integer_inputs: bool) -> None:
        self.example = example
        self.gen = gen
        self.fn: Callable[[Any], torch.Tensor]
        self.info: LossInfo
        self.expected_fn: Callable[[Any], torch.Tensor] | None = None
        self._build(out, integer_inputs)

    def total(self, out: Any) -> torch.Tensor:
        loss = self.fn(out)
        if not isinstance(loss, torch.Tensor):
            loss = torch.as_tensor(loss)
        if loss.numel() != 1:
            loss = loss.float().mean()
        if self.example.loss is not None or self.info.kind == "sum":
            return loss
        prim = first_tensor(out)
        extra = [
            t for t in all_tensors(out) if t is not prim and t.requires_grad and t.is_floating_point() and t.numel()
        ]
        for t in extra:
            loss = loss + t.float().pow(2).mean()
        return loss

    def _target(self, kind: str, prim: torch.Tensor, k: int | None, cdim: int | None) -> torch.Tensor:
        dev = prim.device
        if kind in ("cross_entropy", "nll"):
            assert k is not None and cdim is not None
            shape = tuple(s for i, s in enumerate(prim.shape) if i != cdim)
            return torch.randint(0, k, shape, generator=self.gen).to(dev)
        if kind in ("bce", "bce_logits"):
            return (torch.rand(tuple(prim.shape), generator=self.gen) < 0.5).to(dev, prim.dtype)
        return torch.randn(tuple(prim.shape), generator=self.gen).to(dev, prim.dtype)

    def _build(self, out: Any, integer_inputs: bool) -> None:
        ex = self.example
        F = torch.nn.functional
        prim = first_tensor(out)
        declared = ex.loss
        classes = ex.classes
        if declared is not None:
            name = (
                type(declared).__name__
                if isinstance(declared, nn.Module)
                else getattr(declared, "__name__", type(declared).__name__)
            )
            kind = _loss_kind(name)
            k = classes
            cdim = None
            if kind in ("cross_entropy", "nll") and prim is not None:
                cdim = _class_dim(prim, k) if k else (1 if prim.ndim >= 2 else None)
                if cdim is not None and k is None:
                    k = int(prim.shape[cdim])
            target = ex.target
            if target is None and prim is not None:
                if kind in ("cross_entropy", "nll") and cdim is None:
                    kind = "declared"
                if kind in ("cross_entropy", "nll") and cdim is not None and getattr(declared, "weight", None) is None:
                    self.expected_fn = _over_targets(kind, cdim)  # (cdim is None made the kind "declared")
                target = self._target(kind if kind != "declared" else "mse", prim, k, cdim)
            elif isinstance(target, torch.Tensor) and prim is not None:
                target = target.to(prim.device)
            self.info = LossInfo(
                value=float("nan"),
                kind=kind,
                source="declared",
                classes=k if kind in ("cross_entropy", "nll") else None,
            )
            tgt = target
            self.fn = lambda o: declared(o, tgt)
            return
        loss_name = ex.meta.get("loss_name") if isinstance(ex.meta, dict) else None
        if prim is None:
            self.info = LossInfo(
                value=float("nan"),
                kind="sum",
                source="fallback",
                note="the model returned no floating tensor; loss = sum of all outputs",
            )
            self.fn = lambda o: sum((t.float().sum() for t in all_tensors(o) if t.requires_grad), torch.zeros(()))
            return
        neutral = isinstance(ex.meta, dict) and ex.meta.get("objective") == "neutral"
        if neutral and not loss_name:
            # not a classifier (Q-values, a generator, an autoencoder): no cross-entropy assumption
            kind, source = (
                "mean_square",
                f"not a classifier ({ex.meta.get('objective_why') or 'no loss applied to it'})",
            )
            classes = None
        elif loss_name:
            kind = _loss_kind(str(loss_name))
            source = "file"
        elif classes:
            kind, source = "cross_entropy", "declared classes"
        elif prim.is_floating_point() and prim.ndim == 2 and prim.shape[1] >= 2:
            kind, source = "cross_entropy", f"inferred from the output shape {tuple(prim.shape)}"
        elif prim.is_floating_point() and prim.ndim == 3 and prim.shape[2] >= 2 and integer_inputs:
            kind, source = "cross_entropy", f"inferred from the output shape {tuple(prim.shape)} (token ids in)"
        else:
            kind, source = "mean_square", "no classification head found"
        target = ex.target
        if kind in ("cross_entropy", "nll"):
            cdim = _class_dim(prim, classes)
            if cdim is None:
                kind, source = "mean_square", f"the output {tuple(prim.shape)} has no dimension of {classes} classes"
            else:
                k = int(prim.shape[cdim])
                tgt = target.to(prim.device) if isinstance(target, torch.Tensor) else self._target(kind, prim, k, cdim)
                fn = F.cross_entropy if kind == "cross_entropy" else F.nll_loss

                def ce(o: Any, fn=fn, cdim=cdim, tgt=tgt) -> torch.Tensor:
                    p = out_tensor(o)
                    if cdim == p.ndim - 1 and p.ndim > 2:
                        return fn(p.reshape(-1, p.shape[-1]), tgt.reshape(-1))
                    return fn(p, tgt)

                self.fn = ce
                if not isinstance(target, torch.Tensor):
                    self.expected_fn = _over_targets(kind, cdim)
                self.info = LossInfo(value=float("nan"), kind=kind, source=source, classes=k)
                return
        if kind in ("bce", "bce_logits", "mse"):
            tgt = target.to(prim.device) if isinstance(target, torch.Tensor) else self._target(kind, prim, None, None)
            pointwise = {
                "bce": F.binary_cross_entropy,
                "bce_logits": F.binary_cross_entropy_with_logits,
                "mse": F.mse_loss,
            }[kind]

            def against_target(o: Any, fn=pointwise, tgt=tgt) -> torch.Tensor:
                return fn(out_tensor(o), tgt)

            self.fn = against_target
            self.info = LossInfo(value=float("nan"), kind=kind, source=source)
            return
        self.fn = lambda o: out_tensor(o).float().pow(2).mean()
        self.info = LossInfo(
            value=float("nan"), kind="mean_square", source=source, note="loss = mean of the squared outputs"
        )
