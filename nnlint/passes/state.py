"""Saving and restoring what a check changes on a user's model (``ModelState``) and the seeded torch RNG (``seeded_rng``).

Shared by the Python API, the graph pass and the probe.
"""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Iterator

import torch
from torch import nn

SEED = 0


class ModelState:
    """Everything a check may change on the user's model, restored by ``restore`` (or on
    leaving ``with ModelState(model) as state:``): train/eval mode of every submodule,
    ``.grad`` (cleared on entry), ``requires_grad``, buffers (BatchNorm running stats),
    parameters (after ``snapshot_params``), the device (set ``state.device`` to the
    original one before moving the model), and the Python and NumPy RNG states. The torch
    RNG is ``seeded_rng``'s job."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.modes = [(m, m.training) for m in model.modules()]
        self.params = [p for _, p in model.named_parameters()]
        self.grads = [p.grad for p in self.params]
        self.requires_grad = [p.requires_grad for p in self.params]
        self.buffers: list[tuple[nn.Module, str, torch.Tensor, torch.Tensor]] = []
        for mod in model.modules():
            for name, buf in mod._buffers.items():
                if buf is not None:
                    self.buffers.append((mod, name, buf, buf.detach().clone()))
        self.param_data: list[torch.Tensor] | None = None
        self.device: torch.device | None = None
        self.py_random = random.getstate()
        np = sys.modules.get("numpy")
        self.np_random = np.random.get_state() if np is not None else None
        for p in self.params:
            p.grad = None

    def snapshot_params(self) -> None:
        if self.param_data is None:
            self.param_data = [p.detach().clone() for p in self.params]

    def restore_params(self) -> None:
        """Put the parameters back as ``snapshot_params`` saw them, with no gradient and their
        ``requires_grad`` (after a measurement that trains them: the overfit and zero-init checks)."""
        for p, data in zip(self.params, self.param_data or []):
            _copy_into(p, data)
        for p, rg in zip(self.params, self.requires_grad):
            p.grad = None
            p.requires_grad_(rg)

    def __enter__(self) -> ModelState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def restore(self) -> None:
        for m, mode in self.modes:  # first: the cheapest to restore and the one users notice
            m.training = mode
        for p in self.params:
            p.grad = None
        if self.device is not None:
            self.model.to(self.device)
        if self.param_data is not None:
            for p, data in zip(self.params, self.param_data):
                _copy_into(p, data)
        for mod, name, original, clone in self.buffers:
            if mod._buffers.get(name) is not original:
                mod._buffers[name] = original
            if original.shape == clone.shape:
                _copy_into(original, clone)
            else:
                original.data = clone.to(original.device)
        for p, g, rg in zip(self.params, self.grads, self.requires_grad):
            p.grad = g
            p.requires_grad_(rg)
        random.setstate(self.py_random)
        np = sys.modules.get("numpy")
        if np is not None and self.np_random is not None:
            np.random.set_state(self.np_random)


def _copy_into(dst: torch.Tensor, src: torch.Tensor) -> None:
    """``dst.copy_(src)`` without autograd; a tensor made under ``torch.inference_mode()`` (a
    buffer registered there) can only be written in inference mode."""
    with torch.inference_mode() if dst.is_inference() else torch.no_grad():
        dst.copy_(src.to(dst.device))


_SEED_DEVICE: list[torch.device] = [torch.device("cpu")]


@contextlib.contextmanager
def seeded_rng(device: torch.device) -> Iterator[None]:
    """Fork the torch RNG (CPU, and the CUDA device in use) and seed it; the caller's
    states come back on exit."""
    devices = (
        [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    )
    with torch.random.fork_rng(devices=devices):
        _SEED_DEVICE[0] = device
        reseed()
        yield


def reseed() -> None:
    """Seed the torch RNG again (before each forward, so that dropout draws the same masks)."""
    # torch.manual_seed would also queue lazy seeding of every accelerator backend
    # (formatting a stack trace each time: ~2 ms per call); seed only what the probe uses
    torch.default_generator.manual_seed(SEED)
    device = _SEED_DEVICE[0]
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(SEED)
