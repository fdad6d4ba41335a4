"""The probe's recorder: forward hooks, gradient hooks and a TorchFunctionMode that measure one run."""

from __future__ import annotations

import os
import sys
import weakref
from types import FrameType
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nnlint.contexts.probe import ActivationStat, ModuleStat
from nnlint.passes.probe.classes import ACTIVATION_MODULES, ACTIVATIONS, BATCH_NORMS, VIEW_NAMES, WEIGHT_LAYERS
from nnlint.passes.probe.constants import MASK_ABS, SAT_INPUT
from nnlint.passes.probe.tensors import all_tensors, batch_dim, first_tensor, flat_values, is_bad, moments


class _Mode(TorchFunctionMode):
    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        rec = self.rec
        if rec.busy:
            return func(*args, **kwargs)
        rec.busy = True
        try:
            # reading an attribute (`p.device`, `p.dtype`: a property's __get__) is not
            # using the parameter: `self.dummy = nn.Parameter(torch.empty(0))` read for
            # its device gets no gradient by design
            if rec.track_params and getattr(func, "__name__", "") != "__get__":
                rec.note_params(args, kwargs)
            kind = ACTIVATIONS.get(func) if rec.track_activations else None
            if kind is not None and args and isinstance(args[0], torch.Tensor):
                rec.activation(kind, func, args, kwargs)
            if rec.check_ops or rec.watch_views:
                before = [a for a in all_tensors(args) if a.is_floating_point()] if rec.check_ops else None
        finally:
            rec.busy = False
        out = func(*args, **kwargs)
        if rec.check_ops or rec.watch_views:
            rec.busy = True
            try:
                if rec.check_ops:
                    rec.check_op(func, before or [], out)
                if rec.watch_views:
                    rec.check_view(func, args, out)
            finally:
                rec.busy = False
        return out


class Recorder:
    """Registers hooks on every submodule and (optionally) a TorchFunctionMode; removes
    them on exit. What it records depends on its flags."""

    def __init__(
        self,
        model: nn.Module,
        user_path: str | None,
        batch: int,
        *,
        stats: bool = True,
        activations: bool = True,
        grad_hooks: bool = True,
        track_params: bool = True,
        check_ops: bool = False,
        view_dim: int | None = None,
        output_sums: bool = False,
    ) -> None:
        self.model = model
        self.user_real = os.path.realpath(user_path) if user_path else None
        self.batch = batch
        self.stats = stats
        self.track_activations = activations
        self.grad_hooks = grad_hooks
        self.track_params = track_params
        self.check_ops = check_ops
        self.view_dim = view_dim
        self.watch_views = view_dim is not None
        self.output_sums = output_sums
        self.busy = False
        # a module registered under two names (tied or aliased) is named by its first name,
        # as the layer table (named_modules()) names it
        self.names: dict[nn.Module, str] = {}
        for n, m in model.named_modules(remove_duplicate=False):
            self.names.setdefault(m, n)
        self.mods: dict[str, ModuleStat] = {}
        self.leaf_names = {n for n, m in model.named_modules() if next(iter(m.children()), None) is None}
        self.weight_names = {n for n, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)}
        self.act_module_names = {n for n, m in model.named_modules() if isinstance(m, ACTIVATION_MODULES)}
        self.stack: list[str] = []
        self.order = 0
        self.calls: list[tuple[str, torch.Tensor, int]] = []  # (module, [sum, norm], numel) per call, hook order
        self.in_stats: dict[str, tuple[torch.Tensor, int]] = {}
        self.out_shapes: dict[str, tuple[int, ...]] = {}
        self.grad_norms: dict[str, torch.Tensor] = {}
        self.grad_order: dict[str, int] = {}
        self.grad_counter = 0
        self.produced: dict[int, tuple[weakref.ref, str]] = {}
        self.batch_normed: set[str] = set()  # layers whose output goes straight into a BatchNorm
        self.acts: list[tuple[ActivationStat, torch.Tensor | None]] = []
        self.act_calls: dict[tuple[str, int | None], int] = {}
        self.param_ids = {id(p): n for n, p in model.named_parameters()}
        self.param_ptrs: dict[int, str] = {}
        for n, p in model.named_parameters():
            try:
                if p.numel():
                    self.param_ptrs.setdefault(p.data_ptr(), n)
            except Exception:
                pass
        self.used_params: set[str] = set()
        self.hooked: set[str] = set()
        self._last_summed: torch.Tensor | None = None
        self._last_t: torch.Tensor | None = None
        self._last_version = -1
        self._last_stats: torch.Tensor | None = None
        self._in_finite: dict[str, bool] = {}
        self.first_bad_op: dict[str, Any] | None = None
        self.first_bad_module: dict[str, Any] | None = None
        self.first_view: dict[str, Any] | None = None
        self.sums: list[tuple[str, torch.Tensor]] = []
        self.handles: list[Any] = []
        self.mode: _Mode | None = None
        self._line_cache: dict[str, bool] = {}

    # -- lifecycle
    def __enter__(self) -> Recorder:
        for mod, name in self.names.items():
            try:
                self.handles.append(mod.register_forward_pre_hook(self._pre(name)))
                self.handles.append(mod.register_forward_hook(self._post(name)))
            except Exception:  # scripted modules cannot be hooked
                continue
        if self.track_activations or self.track_params or self.check_ops or self.watch_views:
            self.mode = _Mode(self)
            self.mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.mode is not None:
            mode, self.mode = self.mode, None
            mode.__exit__(None, None, None)
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def stop_mode(self) -> None:
        if self.mode is not None:
            mode, self.mode = self.mode, None
            mode.__exit__(None, None, None)

    # -- source lines
    def _is_user(self, filename: str) -> bool:
        hit = self._line_cache.get(filename)
        if hit is None:
            hit = self.user_real is not None and os.path.realpath(filename) == self.user_real
            self._line_cache[filename] = hit
        return hit

    def user_line(self) -> int | None:
        f: FrameType | None = sys._getframe(2)
        while f is not None:
            if self._is_user(f.f_code.co_filename):
                return f.f_lineno
            f = f.f_back
        return None

    # -- hooks
    def _pre(self, name: str):
        def hook(mod: nn.Module, args: Any) -> None:
            if self.busy:
                return
            self.stack.append(name)
            st = self.mods.get(name)
            if st is None:
                st = self.mods[name] = ModuleStat(
                    name=name, type=type(mod).__name__, order=self.order, leaf=name in self.leaf_names
                )
                self.order += 1
            st.calls += 1
            if isinstance(mod, BATCH_NORMS):
                x = first_tensor(args)
                ref = self.produced.get(id(x)) if x is not None else None
                if ref is not None and ref[0]() is x:
                    self.batch_normed.add(ref[1])
            if self.stats and name in self.weight_names and name not in self.in_stats:
                x = first_tensor(args)
                if x is not None and x.numel():
                    if (
                        x is self._last_t and x._version == self._last_version and self._last_stats is not None
                    ):  # measured already
                        self.in_stats[name] = (self._last_stats, x.numel())
                    else:
                        self.busy = True
                        try:
                            self.in_stats[name] = (moments(x), x.numel())
                        finally:
                            self.busy = False
            if self.check_ops and self.first_bad_module is None:
                self._in_finite[name] = not any(is_bad(t) for t in all_tensors(args) if t.is_floating_point())

        return hook

    def _post(self, name: str):
        def hook(mod: nn.Module, args: Any, out: Any) -> None:
            if self.busy:
                return
            if self.stack and self.stack[-1] == name:
                self.stack.pop()
            first = first_tensor(out)
            if first is None:
                return
            t: torch.Tensor = first  # not Optional: `weakref() is t` below must not widen it
            self.busy = True
            try:
                if name not in self.out_shapes:
                    self.out_shapes[name] = tuple(t.shape)
                if self.stats and t.numel():
                    # a container returning its last child's output is measured once; an
                    # in-place op (ReLU(inplace=True)) bumps the version: measured again
                    if t is not self._last_t or t._version != self._last_version:
                        self._last_t, self._last_version, self._last_stats = t, t._version, moments(t)
                    if self._last_stats is not None:  # set with _last_t
                        self.calls.append((name, self._last_stats, t.numel()))
                if self.output_sums and (name in self.leaf_names or name == "") and t is not self._last_summed:
                    self._last_summed = t  # a container returning its last child's output: summed once
                    self.sums.append((name, t.detach().sum() if t.numel() else t.new_zeros(())))
                if name in self.leaf_names or name in self.weight_names:
                    key = id(t)
                    old = self.produced.get(key)
                    if old is None or old[0]() is not t:
                        self.produced[key] = (weakref.ref(t), name)
                if self.grad_hooks and t.requires_grad and name not in self.hooked:
                    self.hooked.add(name)
                    t.register_hook(self._grad_hook(name))
                if self.check_ops and self.first_bad_module is None and self._in_finite.get(name, True):
                    if is_bad(t):
                        self.first_bad_module = {"module": name, "leaf": name in self.leaf_names}
            finally:
                self.busy = False

        return hook

    def _grad_hook(self, name: str):
        def hook(g: torch.Tensor) -> None:
            if name not in self.grad_norms:
                self.grad_norms[name] = torch.linalg.vector_norm(flat_values(g.detach()).float())
                self.grad_order[name] = self.grad_counter
                self.grad_counter += 1
            return None

        return hook

    # -- function mode callbacks (run with self.busy set)
    def note_params(self, args: Any, kwargs: dict | None = None) -> None:
        for a in (*args, *(kwargs or {}).values()):
            if isinstance(a, torch.Tensor):
                self._note(a)
            elif isinstance(a, (list, tuple)):
                for b in a:
                    if isinstance(b, torch.Tensor):
                        self._note(b)

    def _note(self, t: torch.Tensor) -> None:
        n = self.param_ids.get(id(t))
        if n is None and not t.requires_grad and self.param_ptrs:
            try:
                n = self.param_ptrs.get(t.data_ptr())
            except Exception:
                n = None
        if n is not None:
            self.used_params.add(n)

    def activation(self, kind: str, func: Any, args: tuple, kwargs: dict) -> None:
        x = args[0]
        if kind == "hardtanh":
            lo = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
            kind = "relu6" if lo == 0 else "tanh_like"
        owner = self.stack[-1] if self.stack else ""
        is_module = owner in self.act_module_names
        line = None if is_module else self.user_line()
        ref = self.produced.get(id(x))
        producer = ref[1] if ref is not None and ref[0]() is x else None
        key = (owner, line)
        call = self.act_calls.get(key, 0)
        self.act_calls[key] = call + 1
        st = ActivationStat(
            kind=kind, module=owner, is_module=is_module, producer=producer, line=line, order=len(self.acts), call=call
        )
        measured = None
        if self.stats and x.is_floating_point() and x.numel() and kind in ("relu", "relu6", "sigmoid", "tanh"):
            d = x.detach()
            if d.dtype not in (torch.float32, torch.float64):
                d = d.float()
            b = batch_dim(d, self.batch)
            if b is None and d.ndim > 1 and self.batch and d.shape[0] % self.batch == 0:
                b = 0  # batch and sequence flattened into one dimension (OPT's FFN: (B*T, ffn))
            if kind in ("relu", "relu6"):
                m = d.amax(dim=b) if b is not None and d.ndim > 1 else d
                valid = m > -MASK_ABS  # units whose inputs are not all mask constants (NaN: False)
                dead = (m < 0) & valid
                measured = torch.stack(
                    [
                        dead.sum().double(),
                        valid.sum().double(),
                        torch.tensor(float(m.numel()), dtype=torch.float64, device=d.device),
                    ]
                )
            else:
                a = d.abs()
                valid = a < MASK_ABS
                sat = (a > SAT_INPUT[kind]) & valid
                measured = torch.stack(
                    [
                        sat.sum().double(),
                        valid.sum().double(),
                        torch.tensor(float(a.numel()), dtype=torch.float64, device=d.device),
                    ]
                )
            st.units = int(d.numel() // (d.shape[b] if b is not None and d.ndim > 1 else 1))
        self.acts.append((st, measured))

    def check_op(self, func: Any, before: list[torch.Tensor], out: Any) -> None:
        if self.first_bad_op is not None:
            return
        outs = [t for t in all_tensors(out) if t.is_floating_point()]
        if not outs or not any(is_bad(t) for t in outs):
            return
        if any(is_bad(t) for t in before):
            return
        self.first_bad_op = {
            "op": getattr(func, "__name__", repr(func)),
            "module": self.stack[-1] if self.stack else "",
            "line": self.user_line(),
        }

    def check_view(self, func: Any, args: tuple, out: Any) -> None:
        if self.first_view is not None or getattr(func, "__name__", "") not in VIEW_NAMES:
            return
        if not args or not isinstance(args[0], torch.Tensor) or not isinstance(out, torch.Tensor):
            return
        x, d = args[0], self.view_dim or 0
        if x.ndim > d and x.shape[d] == self.batch and (out.ndim <= d or out.shape[d] != self.batch):
            self.first_view = {
                "op": getattr(func, "__name__", ""),
                "module": self.stack[-1] if self.stack else "",
                "line": self.user_line(),
                "from_shape": list(x.shape),
                "to_shape": list(out.shape),
            }
