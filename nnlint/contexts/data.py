"""What data rules (NN5) read: summaries of the first batches of the user's data (``DataContext``).

Torch-free: the probe pass fills it (nnlint/passes/probe/data.py); rules never iterate the data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TensorSummary:
    position: str  # "inputs", "inputs[1]", "inputs['mask']"
    dtype: str
    shape: tuple[int, ...]
    count: int
    nonfinite: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    feature_std: list[float] | None = None  # per feature (dim 1) for float inputs


@dataclass
class DataContext:
    model_name: str
    path: str
    batches: int
    samples: int
    inputs: list[TensorSummary]
    target: TensorSummary | None
    target_integer: bool
    class_counts: dict[int, int]  # labels >= 0
    negative_labels: dict[int, int]  # labels < 0 (e.g. ignore_index -100) and their counts
    classes: int | None  # the head's class count, when known
    classes_source: str
    line: int | None  # where the data is declared (nnlint_examples), for findings
