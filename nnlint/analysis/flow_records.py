"""What the value-flow analysis reports to the rules: loss calls, argmax predictions, softmax over dim 0 (``Flow``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from nnlint.analysis.values import Val


@dataclass(eq=False)
class LossUse:
    kind: str  # ce nll bce bcewl mse
    display: str  # how the user spelled it: "CrossEntropyLoss", "F.cross_entropy"
    call: cst.Call
    input_expr: cst.BaseExpression
    input: Val
    target_expr: cst.BaseExpression | None
    target: Val
    ctor: Any = None  # a loss module: the call that built it (nn.BCELoss()), for fixes


@dataclass(eq=False)
class PredUse:
    """An argmax-style prediction (``out.argmax(1)``, ``torch.max(out, 1)``) on ``val``;
    ``compared``: the predicted indices are compared with something (``pred == y``,
    ``pred.eq(target)``, ``accuracy(pred, y)``), i.e. used as single-label predictions."""

    val: Val
    node: cst.Call
    compared: bool = False


@dataclass(eq=False)
class DimUse:
    """A softmax over ``dim=0``: ``node`` is where dim=0 is written, ``val`` its input,
    ``cls`` the class whose ``forward`` applies it (for ``batched == "input"``)."""

    node: cst.CSTNode
    val: Val
    cls: str | None
    display: str


@dataclass(eq=False)
class Records:
    losses: list[LossUse] = field(default_factory=list)
    preds: list[PredUse] = field(default_factory=list)
    dims: list[DimUse] = field(default_factory=list)
    batched_calls: set[str] = field(default_factory=set)
    edges: set[tuple[str, str]] = field(default_factory=set)
    compared: set[int] = field(default_factory=set)  # ids of argmax calls whose result is compared
    callsites: list[tuple[cst.FunctionDef, dict[str, Val]]] = field(default_factory=list)


@dataclass(eq=False)
class Flow:
    losses: list[LossUse]
    preds: list[PredUse]
    dims: list[DimUse]
    batched_classes: set[str]

    def dim0_on_batch(self, d: DimUse) -> bool:
        return d.val.batched == "yes" or (d.val.batched == "input" and d.cls in self.batched_classes)


EMPTY = Flow([], [], [], set())


@dataclass(eq=False)
class Result:
    ret: Val
    records: Records
    nested: list[tuple[cst.FunctionDef, dict[str, Val]]]
