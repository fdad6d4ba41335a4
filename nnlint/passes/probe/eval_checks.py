"""The eval-mode measurements (Extra.BATCH_JACOBIAN, SECOND_FORWARD, CAUSAL_JACOBIAN): seeded eval forwards, then each measurement."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import torch

from nnlint.contexts.probe import BatchJacobian, CausalJacobian, Extra, ProbeContext, SecondForward
from nnlint.passes.probe import batch_jacobian, causal, second_forward, token_mixing
from nnlint.passes.probe.classes import EMBEDDINGS
from nnlint.passes.probe.constants import EVAL_BATCH
from nnlint.passes.probe.recorder import Recorder
from nnlint.passes.probe.tensors import first_tensor, map_tensors, tolist
from nnlint.passes.state import ModelState, reseed

if TYPE_CHECKING:
    from nnlint.passes.probe.run import Probe


def measure(probe: Probe, ctx: ProbeContext, saved: ModelState) -> None:
    probe.set_mode(False)
    for p in saved.params:
        p.requires_grad_(False)
    want_jac = Extra.BATCH_JACOBIAN in probe.needs
    want_twice = Extra.SECOND_FORWARD in probe.needs
    want_causal = Extra.CAUSAL_JACOBIAN in probe.needs
    # eval-mode checks need only a few samples: 3 (an odd size, so it rarely collides
    # with other dimensions) costs well under the main step; the full batch if the
    # model insists on its own batch size
    inputs = probe.inputs
    if probe.batch > EVAL_BATCH:
        inputs = map_tensors(probe.inputs, lambda t: t[:EVAL_BATCH] if t.ndim and t.shape[0] == probe.batch else t)
    try:
        try:
            run1 = eval_forward(probe, want_jac or want_causal, inputs)
        except Exception:
            if inputs is probe.inputs:
                raise
            inputs = probe.inputs
            run1 = eval_forward(probe, want_jac or want_causal, inputs)
        if want_causal:
            ctx.causal_jacobian = cast(CausalJacobian, causal.measure_run(probe, run1))
        if want_jac:
            jac = (
                batch_jacobian.measure(probe, run1)
                if run1["leaf_kind"] == "input"
                else token_mixing.measure_run(probe, inputs)
            )
            ctx.batch_jacobian = cast(BatchJacobian, jac)
        # drop run 1's autograd graph before run 2 builds its own: peak memory stays
        # that of one forward
        run1["out"] = map_tensors(run1["out"], lambda t: t.detach())
        run1["leaf"] = None
        if want_twice:
            run2 = eval_forward(probe, want_jac, inputs)
            run2["out"] = map_tensors(run2["out"], lambda t: t.detach())
            run2["leaf"] = None
            ctx.second_forward = cast(SecondForward, second_forward.compare(run1, run2))
    except Exception as exc:
        ctx.notes.append(f"eval-mode checks failed: {type(exc).__name__}: {exc}")
    finally:
        for p, rg in zip(saved.params, saved.requires_grad):
            p.requires_grad_(rg)


def eval_forward(probe: Probe, grad: bool, inputs: Any) -> dict[str, Any]:
    """One seeded eval-mode forward. With ``grad``, the first floating input (or the
    first embedding's output, for token inputs) is a leaf that requires grad."""
    leaf: dict[str, Any] = {}  # "x": the leaf tensor, "kind": "input" or "embedding"
    handles = []
    if grad:
        x = first_tensor(inputs)
        if x is not None:

            def swap(t: torch.Tensor) -> torch.Tensor:
                if t is x:
                    y = t.detach().clone().requires_grad_(True)
                    leaf.setdefault("x", y)
                    return y
                return t

            inputs = map_tensors(inputs, swap)
            leaf["kind"] = "input"
        else:
            emb = next((m for m in probe.model.modules() if isinstance(m, EMBEDDINGS)), None)
            if emb is not None:

                def hook(mod, args, out):
                    if "x" in leaf:
                        return None
                    y = out.detach().requires_grad_(True)
                    leaf["x"] = y
                    return y

                handles.append(emb.register_forward_hook(hook))
                leaf["kind"] = "embedding"
    rec = Recorder(
        probe.model,
        probe.path,
        probe.batch,
        stats=False,
        activations=False,
        grad_hooks=False,
        track_params=False,
        output_sums=True,
    )
    try:
        ctx_grad = torch.enable_grad() if grad else torch.no_grad()
        with ctx_grad, torch.inference_mode(False):
            reseed()
            with rec:
                out = probe.forward(inputs)
    finally:
        rec.close()
        for h in handles:
            h.remove()
    sums = [(n, v) for (n, _), v in zip(rec.sums, tolist([s for _, s in rec.sums]))]
    return {"out": out, "leaf": leaf.get("x"), "leaf_kind": leaf.get("kind"), "sums": sums, "inputs": inputs}
