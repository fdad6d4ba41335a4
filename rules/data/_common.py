"""Helpers shared by the data rules (NN5)."""

from __future__ import annotations

import math


def fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    a = abs(x)
    if 1e-3 <= a < 1e5:
        return f"{x:.3g}"
    return f"{x:.2e}"
