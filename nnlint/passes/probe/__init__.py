"""The probe pass: one seeded forward + backward of a built model, measured for the probe (NN3) and data (NN5) rules.

One job per module: ``entry`` (``run_probe``), ``run`` (the ``Probe`` run), ``recorder`` (hooks),
``inputs`` and ``loss`` (the batch and the loss), ``collect`` (recordings into a ``ProbeContext``),
one module per extra measurement (``zero_init``, ``nonfinite``, ``eval_checks`` with
``batch_jacobian``, ``token_mixing``, ``second_forward`` and ``causal``, ``overfit``), ``data`` (the NN5 data probe),
``stats`` (per-layer numbers for ``--report``) and ``convert`` (where a finding points; rules run
through ``nnlint.findings.run_rules``).
"""

from nnlint.contexts.data import DataContext, TensorSummary
from nnlint.contexts.probe import Extra, ProbeContext
from nnlint.passes.probe.convert import span_of
from nnlint.passes.probe.device import resolve_device
from nnlint.passes.probe.entry import run_probe
from nnlint.passes.probe.result import ProbeError, ProbeResult
from nnlint.passes.probe.run import Probe

__all__ = [
    "DataContext",
    "Extra",
    "Probe",
    "ProbeContext",
    "ProbeError",
    "ProbeResult",
    "TensorSummary",
    "resolve_device",
    "run_probe",
    "span_of",
]
