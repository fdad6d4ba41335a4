"""Whose code is a graph finding about? Structural findings (NN202–NN207) inside a class
the user did not write (transformers, torchvision, timm, any installed package) are not
actionable: the user cannot edit ``site-packages``. Such findings are dropped; findings
about the user's own classes — including a library model the user's class holds and
never calls — stay.

(A module or parameter registered under several names is one object: see
``nnlint.contexts.graph.alias_groups``.)
"""

from __future__ import annotations

import inspect
import os
import sys
from functools import cache, lru_cache
from typing import Any

from torch import nn

from nnlint.contexts.graph import is_leaf

#: codes about the structure of a forward (which modules/ops run, what reaches the output)
STRUCTURAL = {"NN202", "NN203", "NN204", "NN205", "NN206", "NN207"}


@cache
def _library_roots() -> tuple[str, ...]:
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix) if p}
    return tuple(sorted(roots))


@lru_cache(maxsize=4096)
def library_class(cls: type) -> bool:
    """Defined in an installed package (or torch itself), not in the user's project."""
    mod = getattr(cls, "__module__", "") or ""
    if mod.split(".")[0] in ("torch", "torchvision", "torchaudio", "transformers", "timm"):
        return True
    try:
        path = inspect.getsourcefile(cls) or inspect.getfile(cls)
    except (TypeError, OSError):
        return False
    real = os.path.realpath(path).replace("\\", "/")
    if "/site-packages/" in real or "/dist-packages/" in real:
        return True
    return any(real.startswith(r.replace("\\", "/") + "/") for r in _library_roots())


def owner_path(modules: dict[str, nn.Module], q: str, submodule: bool) -> str | None:
    """The module whose code decides about ``q``: its parent for a submodule or
    parameter (the parent's forward calls it or not), ``q`` itself for ops in its forward."""
    if q not in modules:  # a parameter/buffer path: its owning module
        parts = q.split(".")
        while parts and ".".join(parts) not in modules:
            parts.pop()
        q, submodule = ".".join(parts), False
        if q not in modules:
            return None
    if submodule and q:
        return q.rsplit(".", 1)[0] if "." in q else ""
    return q


def is_library_finding(ctx: Any, code: str, module: str | None, line: int | None) -> bool:
    if code not in STRUCTURAL:
        return False
    modules = ctx.modules
    if module is None:
        # a finding about the model's own forward (NN207) or an op at its top level
        cls: type = type(ctx.model)  # type[Any] is not Hashable to mypy, a plain type is
        return line is None and library_class(cls)
    mod = modules.get(module)
    submodule = code in ("NN202", "NN206") or (mod is not None and is_leaf(mod))
    owner = owner_path(modules, module, submodule)
    if owner is None:
        return False
    owner_mod = modules.get(owner)
    # torch's containers (Sequential, ModuleList, ModuleDict) have no structure of their own:
    # whoever built them decides it, so look past them to the module that holds them; a
    # container at the root was built by the user's own code (a factory, a module-level model)
    while owner_mod is not None and isinstance(owner_mod, CONTAINERS):
        if not owner:
            return False
        owner = owner.rsplit(".", 1)[0] if "." in owner else ""
        owner_mod = modules.get(owner)
    owner_cls: type = type(owner_mod)
    return owner_mod is not None and library_class(owner_cls)


CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.ParameterList, nn.ParameterDict)
