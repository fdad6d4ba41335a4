"""What both tracers read off tensors, torch calls and the model: shapes, sizes, op names, names of parameters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from nnlint.vocab import CONTROL_FUNCTIONS


def tensors_in(obj: Any) -> list[torch.Tensor]:
    flat, _ = tree_flatten(obj)
    return [t for t in flat if isinstance(t, torch.Tensor)]


def shape_of(t: Any) -> tuple[int, ...] | None:
    if isinstance(t, torch.Tensor):
        try:
            return tuple(int(s) for s in t.shape)
        except Exception:  # symbolic sizes
            return None
    return None


def nbytes_of(t: torch.Tensor) -> int:
    try:
        return int(t.numel()) * t.element_size()
    except Exception:
        return 0


def op_name(func: Any) -> str:
    name = getattr(func, "__name__", None) or str(func)
    if name == "__get__":  # a tensor property such as .shape / .T
        name = getattr(getattr(func, "__self__", None), "__name__", "getattr")
    if name.startswith("__") and name.endswith("__") and name not in CONTROL_FUNCTIONS:
        core = name[2:-2]
        if core.startswith("i") and core[1:] in ("add", "sub", "mul", "truediv", "floordiv", "matmul", "and", "or"):
            return core[1:] + "_"
        if core.startswith("r") and core[1:] in ("add", "sub", "mul", "truediv", "floordiv", "matmul", "pow"):
            core = core[1:]
        return {"truediv": "div", "floordiv": "floor_divide", "setitem": "setitem"}.get(core, core)
    return name


def scalar_args(kwargs: dict, names: Iterable[str] = ("dim", "p", "inplace", "negative_slope")) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k in names and isinstance(v, (int, float, bool, type(None)))}


def param_names(model: nn.Module) -> dict[int, str]:
    names: dict[int, str] = {}
    for q, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), q)
    for q, b in model.named_buffers(remove_duplicate=False):
        names.setdefault(id(b), q)
    return names


def module_names(model: nn.Module) -> dict[int, str]:
    names: dict[int, str] = {}
    for q, m in model.named_modules(remove_duplicate=False):
        names.setdefault(id(m), q)
    return names
