"""Turn the recorder's measurements into the ProbeContext rules read (modules, parameters, activations, layers, output)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from nnlint.contexts.probe import ActivationStat, Layer, LossInfo, OutputStat, ParamStat, ProbeContext
from nnlint.passes.probe.classes import EMBEDDINGS, INSTANCE_NORM_BASE, NORM_BASE, WEIGHT_LAYERS
from nnlint.passes.probe.recorder import Recorder
from nnlint.passes.probe.tensors import all_tensors, dense, fans, first_tensor, is_bad, mean_std, tolist

if TYPE_CHECKING:
    from nnlint.passes.probe.run import Probe


def collect(probe: Probe, rec: Recorder, out: Any, info: LossInfo, grads_available: bool) -> ProbeContext:
    model = probe.model
    names = [n for n, _, _ in rec.calls]
    values = [mean_std(a, b, n) for (a, b), (_, _, n) in zip(tolist([s for _, s, _ in rec.calls]), rec.calls)]
    mods = rec.mods
    for name, (mean, std) in zip(names, values):
        st = mods[name]
        if st.out_mean is None:
            st.out_mean, st.out_std = mean, std
        # NaN or +inf; a mean of -inf means only -inf values: a mask, not a fault
        if math.isnan(mean) or mean == math.inf:
            st.nonfinite = True
    for name, shape in rec.out_shapes.items():
        if name in mods:
            mods[name].out_shape = shape
    in_names = list(rec.in_stats)
    for name, (a, b) in zip(in_names, tolist([rec.in_stats[n][0] for n in in_names])):
        mods[name].in_std = mean_std(a, b, rec.in_stats[name][1])[1]
    g_names = list(rec.grad_norms)
    for name, g in zip(g_names, tolist([rec.grad_norms[n] for n in g_names])):
        mod_st = mods.get(name)
        if mod_st is not None:
            mod_st.grad_norm = g
            mod_st.grad_order = rec.grad_order.get(name)
            mod_st.grad_nonfinite = not math.isfinite(g)

    # parameters
    ran = set(mods)
    params: dict[str, ParamStat] = {}
    plist = list(model.named_parameters())
    owner: dict[str, str] = {}
    for mname, m in model.named_modules():
        for pname, _ in m.named_parameters(recurse=False):
            owner.setdefault(f"{mname}.{pname}" if mname else pname, mname)
    w_norms = tolist(
        [
            torch.linalg.vector_norm(p.detach().float()) if p.numel() else p.new_zeros((), dtype=torch.float32)
            for _, p in plist
        ]
    )
    g_list = [(n, p.grad) for n, p in plist if p.grad is not None]
    g_norms = dict(
        zip(
            [n for n, _ in g_list],
            tolist([torch.linalg.vector_norm(dense(g.detach()).float()) for _, g in g_list]),
        )
    )
    for (name, p), wn in zip(plist, w_norms):
        mname = owner.get(name, name.rsplit(".", 1)[0] if "." in name else "")
        gn = g_norms.get(name)
        if not p.requires_grad:
            state = "frozen"
        elif gn is None:
            state = "none"
        elif not math.isfinite(gn):
            state = "nonfinite"
        elif gn == 0:
            state = "zero"
        else:
            state = "ok"
        numel = max(p.numel(), 1)
        params[name] = ParamStat(
            name=name,
            module=mname,
            shape=tuple(p.shape),
            requires_grad=p.requires_grad,
            ran=mname in ran,
            used=name in rec.used_params if rec.track_params else mname in ran,
            grad=state,
            grad_norm=gn,
            weight_norm=wn,
            weight_rms=wn / math.sqrt(numel),
            zero_weight=wn == 0 and p.numel() > 0,
        )
    if any(s.grad == "zero" for s in params.values()):
        named_p = dict(plist)
        for s in params.values():
            p = named_p[s.name]
            # a matrix (two or more axes longer than 1): a per-channel scale such as a
            # norm's gamma of shape (1, C, 1, 1) has no units to make identical
            if sum(d > 1 for d in p.shape) >= 2 and not s.zero_weight:
                flat = p.detach().reshape(-1)
                s.constant = bool((flat == flat[0]).all())

    # activations
    acts: list[ActivationStat] = []
    measured = [(st, m) for st, m in rec.acts if m is not None]
    vals = tolist([m for _, m in measured])
    for (act, _), (hit, valid, total) in zip(measured, vals):
        if valid > 0:
            frac = hit / valid
            if act.kind in ("relu", "relu6"):
                act.dead_frac = frac
            else:
                act.saturated_frac = frac
        act.masked_frac = 1 - valid / total if total else 0.0
    acts = [st for st, _ in rec.acts]

    # weight layers
    layers: list[Layer] = []
    named = dict(model.named_modules())
    feeds: dict[str, str] = {}
    for act in acts:
        if act.producer is not None:
            feeds.setdefault(act.producer, act.kind)
    for name, st in sorted(mods.items(), key=lambda kv: kv[1].order):
        m = named.get(name)
        if m is None or not isinstance(m, WEIGHT_LAYERS):
            continue
        ws = [(pn, p) for pn, p in m.named_parameters(recurse=False) if p.ndim >= 2]
        if not ws:
            continue
        found = [params.get(f"{name}.{pn}" if name else pn) for pn, _ in ws]
        stats = [s for s in found if s is not None]
        wn = math.sqrt(sum(s.weight_norm**2 for s in stats))
        numel = sum(max(math.prod(s.shape), 1) for s in stats)
        gs = [s.grad_norm for s in stats if s.grad_norm is not None]
        gn = math.sqrt(sum(g * g for g in gs)) if gs else None
        fi, fo = fans(ws[0][1])
        layers.append(
            Layer(
                module=name,
                type=st.type,
                order=st.order,
                embedding=isinstance(m, EMBEDDINGS),
                fan_in=fi,
                fan_out=fo,
                weight_rms=wn / math.sqrt(max(numel, 1)),
                weight_norm=wn,
                grad_norm=gn,
                rel=(gn / wn if gn is not None and wn > 0 else None),
                zero_init=any(s.zero_weight for s in stats),
                zero_grad=all(s.grad in ("none", "zero", "frozen") for s in stats),
                in_std=st.in_std,
                out_std=st.out_std,
                feeds=feeds.get(name),
                batch_normed=name in rec.batch_normed,
            )
        )

    # output
    prim = first_tensor(out)
    output = None
    final_layer = None
    if prim is not None:
        ref = rec.produced.get(id(prim))
        producer = ref[1] if ref is not None and ref[0]() is prim else None
        d = prim.detach()
        d = d if d.dtype in (torch.float32, torch.float64) else d.float()
        b = 0 if prim.ndim >= 1 and prim.shape[0] == probe.batch else None
        finite = not is_bad(d)
        dd = d if finite and not bool(torch.isneginf(d).any()) else torch.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0)
        batch_std = (
            float(dd.std(dim=0, correction=0).max())
            if b == 0 and d.shape[0] > 1 and d.numel() > d.shape[0] - 1
            else None
        )
        output = OutputStat(
            shape=tuple(prim.shape),
            producer=producer,
            abs_max=float(dd.abs().max()) if dd.numel() else 0.0,
            mean_abs=float(dd.abs().mean()) if dd.numel() else 0.0,
            batch_std_max=batch_std,
            batch_dim=b,
            nonfinite=not finite,
        )
        if producer is not None and producer in {l.module for l in layers}:
            final_layer = producer
    if final_layer is None:
        non_emb = [l for l in layers if not l.embedding]
        if non_emb:
            final_layer = max(non_emb, key=lambda l: l.order).module
            # the layer that *finished* last is the head: use hook order of outputs
            finished = [n for n in names if n in {l.module for l in non_emb}]
            if finished:
                final_layer = finished[-1]

    first_in = first_tensor(probe.inputs)
    input_std = None
    if first_in is not None and first_in.numel() > 1:
        input_std = float(first_in.detach().float().std())
    any_in = first_tensor(probe.inputs, floating=False)
    input_varies = None
    if any_in is not None and any_in.ndim and any_in.shape[0] == probe.batch and probe.batch > 1:
        input_varies = bool((any_in.detach() != any_in.detach()[:1]).any())

    ctx = ProbeContext(
        model=model,
        model_name=probe.model_name,
        path=probe.path,
        device=str(probe.device),
        batch_size=probe.batch,
        modules=mods,
        params=params,
        layers=layers,
        activations=acts,
        loss=info,
        output=output,
        final_layer=final_layer,
        input_std=input_std,
        grads_available=grads_available,
        input_varies=input_varies,
        discarded_modules=frozenset((probe.example.meta or {}).get("unused_modules") or ()),
        input_shapes=[(tuple(t.shape), str(t.dtype).replace("torch.", "")) for t in all_tensors(probe.orig_inputs)],
        batch_stat_layers=[
            n
            for n, m in model.named_modules()
            if isinstance(m, NORM_BASE)
            and not isinstance(m, INSTANCE_NORM_BASE)
            and getattr(m, "running_mean", None) is None
            and n in mods
        ],
    )
    # non-finite anywhere?
    bad_fwd = next((n for n in names if mods[n].nonfinite), None)
    bad_grad = [s for s in params.values() if s.grad == "nonfinite"]
    if bad_fwd is not None or not math.isfinite(info.value) or bad_grad or (output and output.nonfinite):
        if bad_fwd is not None:
            first = bad_fwd
            ctx.nonfinite = {
                "phase": "forward",
                "module": first,
                "leaf": mods[first].leaf,
                "count_modules": sum(1 for s in mods.values() if s.nonfinite),
            }
        elif not math.isfinite(info.value):
            ctx.nonfinite = {"phase": "loss", "module": final_layer, "leaf": True, "loss": info.value}
        else:
            # backward: the module whose output gradient went non-finite first
            cands = [s for s in mods.values() if s.grad_nonfinite and s.grad_order is not None]
            first_mod = min(cands, key=lambda s: s.grad_order or 0).name if cands else None  # never None here
            first_param = (
                max(bad_grad, key=lambda s: mods[s.module].order if s.module in mods else -1) if bad_grad else None
            )
            ctx.nonfinite = {
                "phase": "backward",
                "module": first_mod if first_mod is not None else (first_param.module if first_param else None),
                "leaf": False,
                "params": [s.name for s in bad_grad][:10],
            }
    return ctx
