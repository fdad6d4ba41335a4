"""The probe run (``Probe``): one short, seeded forward + backward of a built model, then the extra measurements its rules need.

Measured with forward hooks and tensor hooks, turned into numbers rules can judge.

The graph pass (in its child process) and the Python API call ``run_probe`` for each model
built for real. The pass never knows rule codes: rules declare ``needs`` (extra
measurements) and read a ``ProbeContext`` (or a ``DataContext`` for NN5 data rules); the
pass turns their ``Finding`` objects into ``Diagnostic`` values at the user's lines.

What is measured (always):
- per module, in execution order: output mean/std and whether it was non-finite; the std
  of the first input of weight layers; the norm of the gradient w.r.t. the output (a
  tensor hook, so in-place ops such as ``ReLU(inplace=True)`` are fine; module backward
  hooks are never used: they break on in-place ops);
- per activation call (nn.ReLU & co. *and* functional ``F.relu``/``torch.sigmoid``/
  ``x.tanh()``, seen through a ``TorchFunctionMode``): which layer produced its input, the
  fraction of units negative for every sample (ReLU family), the fraction of outputs
  within 1% of the bounds (sigmoid/tanh), padding-mask values excluded;
- per parameter after backward: gradient None / zero / norm, weight norm and RMS, whether
  its module ran and whether the forward used it;
- the loss: the declared one, else CrossEntropy on random targets for a k-class head,
  else the mean of the squared outputs (``evidence`` says which).

Extra measurements (``nnlint.contexts.probe.Extra``), only when a selected rule needs them: ``batch_jacobian`` (eval mode:
gradient of one sample's output w.r.t. the whole input batch; for token inputs, which output
samples move when one sample's tokens change: ``token_mixing``), ``second_forward`` (two
seeded eval forwards compared), ``overfit`` (optimizer steps on one tiny batch; only with
``settings["overfit"]``), ``zero_init_check`` (re-measure zero gradients with the
zero-initialised weights perturbed, so zero-init-residual is not reported),
``nonfinite_origin`` (after a NaN/Inf is seen: re-run checking every op, and
``detect_anomaly`` for the backward).

Everything touched is restored in ``finally``: train/eval mode of every submodule, hooks,
``.grad``, ``requires_grad``, buffers (BatchNorm running stats), parameters (after the
overfit probe), the device, and the torch (CPU and CUDA), Python and NumPy RNG states.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nnlint.contexts.data import DataContext
from nnlint.contexts.probe import Extra, ProbeContext
from nnlint.example import Example
from nnlint.passes.probe import data, eval_checks, nonfinite, overfit, zero_init
from nnlint.passes.probe.collect import collect
from nnlint.passes.probe.constants import MIN_BATCH, SEED
from nnlint.passes.probe.device import resolve_device
from nnlint.passes.probe.inputs import prepare_inputs
from nnlint.passes.probe.loss import Loss
from nnlint.passes.probe.recorder import Recorder
from nnlint.passes.probe.result import ProbeError
from nnlint.passes.probe.tensors import call_model, first_tensor, map_tensors
from nnlint.passes.state import ModelState, reseed, seeded_rng
from nnlint.rule import Rule

_EXTRA_VALUES = {e.value for e in Extra}


class Probe:
    """One probe of one built model: ``run()`` returns the ``ProbeContext`` (and the
    ``DataContext`` when data rules run); the measurement modules read its batch, loss and
    model through the public attributes and ``forward``/``set_mode``/``step``."""

    def __init__(
        self, example: Example, rules: list[Rule], settings: dict[str, Any], path: str, model_name: str
    ) -> None:
        self.example = example
        self.rules = rules
        self.settings = settings
        self.path = path
        self.model_name = model_name
        self.needs: set[Extra] = set()
        for r in rules:
            for need in getattr(r, "needs", ()) or ():
                if isinstance(need, Extra):
                    self.needs.add(need)
                elif need in _EXTRA_VALUES:  # a plain string (a rule written before Extra)
                    self.needs.add(Extra(need))
        self.model: nn.Module = example.model
        self.gen = torch.Generator().manual_seed(SEED)

    def step(self, name: str) -> None:
        """Tell the caller (the worker's progress events) which step runs, so that a crash
        or a hang in user code can be named."""
        progress = self.settings.get("progress")
        if callable(progress):
            progress(name)

    # -- the whole run
    def run(self) -> tuple[ProbeContext | None, DataContext | None]:
        model = self.model
        device, note = resolve_device(self.settings.get("device"), model)
        probe_rules = [r for r in self.rules if r.pass_ == "probe"]
        data_rules = [r for r in self.rules if r.pass_ == "data"]
        ctx: ProbeContext | None = None
        data_ctx: DataContext | None = None
        with seeded_rng(device), ModelState(model) as saved:
            orig_device = self._model_device()
            if orig_device is not None and orig_device != device and not (orig_device.type == device.type == "cuda"):
                saved.device = orig_device
                model.to(device)
            elif orig_device is not None:
                device = orig_device
            self.device = device
            inputs = map_tensors(self.example.inputs, lambda t: t.to(device))
            n_wanted = max(MIN_BATCH, int(self.settings.get("batch_size") or 0) or MIN_BATCH)
            batched, n, b0 = prepare_inputs(inputs, n_wanted, self.gen)
            self.inputs, self.batch = batched, n or 1
            self.orig_inputs, self.orig_batch = inputs, b0 or 1
            if probe_rules or (data_rules and self.example.data is not None):
                ctx = self._main(saved)
                if note:
                    ctx.notes.append(note)
            if data_rules and self.example.data is not None:
                self.step("data probe")
                data_ctx = data.measure(self, ctx)
        return ctx, data_ctx

    def _model_device(self) -> torch.device | None:
        for t in self.model.parameters():
            return t.device
        for b in self.model.buffers():
            return b.device
        return None

    def forward(self, inputs: Any) -> Any:
        return call_model(self.model, inputs)

    def set_mode(self, training: bool) -> None:
        for m in self.model.modules():
            m.training = training

    def _main(self, saved: ModelState) -> ProbeContext:
        integer_inputs = first_tensor(self.inputs) is None and first_tensor(self.inputs, floating=False) is not None
        self.set_mode(True)
        rec, out = self._recorded_forward()
        try:
            try:
                self.loss = Loss(self.example, out, self.gen, integer_inputs)
                main = self.loss.fn(out)
                if not isinstance(main, torch.Tensor):
                    main = torch.as_tensor(main)
                if main.numel() != 1:
                    main = main.float().mean()
                loss = self.loss.total(out)
            except Exception as exc:
                raise ProbeError("loss", exc) from exc
            loss_value = float(main.detach().float().item())
            del main
            grads_available = bool(loss.requires_grad)
            if grads_available:
                self.step("probe backward")
                try:
                    loss.backward()
                except Exception as exc:
                    raise ProbeError("backward", exc) from exc
        finally:
            rec.close()
        info = self.loss.info
        info.value = loss_value
        if self.loss.expected_fn is not None:
            try:
                info.expected = float(self.loss.expected_fn(out).item())
            except Exception:
                info.expected = None
        ctx = collect(self, rec, out, info, grads_available)
        del out, loss
        # zero grads now read: free them before the extra runs
        for p in saved.params:
            p.grad = None
        if Extra.ZERO_INIT_CHECK in self.needs and grads_available:
            self.step("probe zero-init check")
            zero_init.measure(self, ctx, saved)
        if Extra.NONFINITE_ORIGIN in self.needs and ctx.nonfinite is not None:
            self.step("probe non-finite search")
            nonfinite.measure(self, ctx)
        if self.needs & {Extra.BATCH_JACOBIAN, Extra.SECOND_FORWARD, Extra.CAUSAL_JACOBIAN}:
            self.step("probe eval-mode checks")
            eval_checks.measure(self, ctx, saved)
        if Extra.OVERFIT in self.needs and self.settings.get("overfit"):
            self.step("probe overfit")
            overfit.measure(self, ctx, saved, integer_inputs)
        return ctx

    def _recorded_forward(self) -> tuple[Recorder, Any]:
        """The main forward (train mode), falling back to the caller's own batch when the
        re-batched one does not fit the model."""
        attempts = [(self.inputs, self.batch)]
        if self.orig_batch != self.batch:
            attempts.append((self.orig_inputs, self.orig_batch))
        last: BaseException | None = None
        self.step("probe forward")
        for inputs, n in attempts:
            rec = Recorder(self.model, self.path, n)
            try:
                with torch.enable_grad(), torch.inference_mode(False):
                    reseed()
                    with rec:
                        out = self.forward(inputs)
                    rec.close()
                self.inputs, self.batch = inputs, n
                return rec, out
            except Exception as exc:
                rec.close()
                last = exc
                for p in self.model.parameters():
                    p.grad = None
        assert last is not None
        raise ProbeError("forward", last) from last
