"""The torch vocabulary every pass and rule shares: which ``torch.nn`` classes and functions
are affine layers, norms, activations, dropouts, losses, pass-through ops, and so on, by name.

Names only (strings), so the source pass can import it without importing torch; a pass that
needs the classes looks them up with ``getattr(torch.nn, name)``. One name means one thing here:
a set of module class names is ``*_MODULES``, of functional names ``*_FUNCTIONS``, of tensor
method names ``*_METHODS``; a table that maps a name to a kind says so in its name
(``*_KIND``).
"""

from __future__ import annotations

# --- layers (graph side) ----------------------------------------------------------------


# --- activations, norms, dropout (probe side) ---------------------------------------------


# --- source side (losses, resampling, dtypes, call helpers' tables) -------------------------
