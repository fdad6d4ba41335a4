"""One finding per cause: a finding repeated for every instance of the same class at the
same line (``blocks.0`` … ``blocks.68``: one ``Block`` class, one line) becomes one
diagnostic that lists the instances and shows the worst measurement."""

from __future__ import annotations

import re
from typing import Any

#: evidence keys measured per instance, the worse the larger (first one present wins)
_LARGER_WORSE = (
    "ratio",
    "fraction",
    "dead_fraction",
    "saturated_fraction",
    "drift",
    "norm",
    "grad_norm",
    "max_abs",
    "std_ratio",
    "value",
    "score",
)


def _measure(d: Any) -> float | None:
    ev = d.evidence or {}
    for k in _LARGER_WORSE:
        v = ev.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return abs(float(v))
    return None


def _natural(s: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s or "")]


def instance_range(modules: list[str]) -> str:
    mods = sorted(modules, key=_natural)
    if len(mods) <= 3:
        return ", ".join(mods)
    return f"{mods[0]} … {mods[-1]}"


def group_instances(diags: list[Any]) -> list[Any]:
    groups: dict[tuple, list[Any]] = {}
    order: list[tuple] = []
    for d in diags:
        key = (d.code, d.path, d.line, d.model, d.pass_) if d.module else (id(d),)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(d)
    out = []
    for key in order:
        ds = groups[key]
        modules = [d.module for d in ds if d.module]
        if len(ds) < 2 or len(set(modules)) < 2:
            out.extend(ds)
            continue
        measured = [(m, d) for d in ds if (m := _measure(d)) is not None]
        worst = max(measured, key=lambda x: x[0])[1] if measured else ds[0]
        mods = sorted(set(modules), key=_natural)
        ev = dict(worst.evidence or {})
        ev["instances"] = mods
        ev["worst_instance"] = worst.module
        msg = f"{worst.message}; same in {len(mods)} instances ({instance_range(mods)})"
        if measured:
            msg += f", worst shown ({worst.module})"
        out.append(worst.with_(message=msg, module=instance_range(mods), evidence=ev))
    return out
