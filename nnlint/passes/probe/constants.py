"""The probe's fixed numbers: seed, batch sizes, thresholds of what counts as a mask or saturation."""

from __future__ import annotations

import math

from nnlint.passes.state import SEED

__all__ = ["SEED", "MIN_BATCH", "MASK_ABS", "SAT_INPUT", "MAX_DATA_BATCHES", "EVAL_BATCH", "OVERFIT_LR"]

MIN_BATCH = 4
#: pre-activation values this large (or non-finite) are mask constants (-1e9, -inf,
#: finfo.min), not learned values: they are left out of dead/saturated fractions
MASK_ABS = 1e4
#: |x| beyond which sigmoid / tanh outputs lie within 1% of their bounds
SAT_INPUT = {"sigmoid": math.log(0.99 / 0.01), "tanh": math.atanh(0.99)}
MAX_DATA_BATCHES = 8
EVAL_BATCH = 3
OVERFIT_LR = 1e-2
