"""Byte sizes in words for messages (``gb``: 350 MiB, 1.2 GiB)."""

from __future__ import annotations


def gb(n: float) -> str:
    """``n`` bytes as GiB (one decimal) from 1 GiB up, else as whole MiB."""
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    return f"{n / (1 << 20):.0f} MiB"
