"""What the value-flow interpreter's parts share: the frame of one function and the interpreter's fields.

``Frame`` is one function's state; ``InterpreterBase`` declares the fields of ``Interpreter`` and
the methods one part (interpreter.py, flow_classes.py, torch_semantics.py) calls on another.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import libcst as cst

from nnlint.analysis.flow_records import Records, Result
from nnlint.analysis.values import Val
from nnlint.contexts.source import SourceContext


class Frame:
    def __init__(self, cls: str | None = None, forward: bool = False, closure: dict[str, Val] | None = None) -> None:
        self.env: dict[str, Val] = {}
        self.cls = cls
        self.forward = forward
        self.self_name: str | None = None
        self.closure = closure or {}
        self.returns: list[Val] = []
        self.rec = Records()
        self.mute = 0
        self.nested: list[tuple[cst.FunctionDef, dict[str, Val]]] = []
        self.generator = False


class InterpreterBase:
    """What the parts of ``Interpreter`` share: its fields (set in ``Interpreter.__init__``) and the
    methods one part calls on another (implemented by ``Interpreter``, ``ClassModel`` or
    ``TorchSemantics``)."""

    ctx: SourceContext
    mod: Frame | None
    mod_result: Result | None
    top_funcs: dict[str, cst.FunctionDef]
    attr_memo: dict[str, dict[str, Val]]
    fwd_memo: dict[str, Result | None]
    method_memo: dict[tuple[str, int], Result]
    func_memo: dict[tuple[int, tuple], Result]
    in_progress: set[Any]
    bindings: dict[cst.FunctionDef, tuple]
    has_sites: set[cst.FunctionDef]
    _sites: dict[str, list[cst.Call]] | None
    _candidate: str | None | Literal[False]
    _callee_params: dict[int, set[str]]
    _calls_by_fn: dict[int, list[cst.Call]] | None
    _collate: bool | None
    _mutated_attrs: dict[str, set[str]]
    _subclassed: set[str]

    def _top_statements(self) -> Iterable[tuple[cst.CSTNode, None]]:
        raise NotImplementedError

    def _bind_other_params(self, frame: Frame, fn: cst.FunctionDef) -> None:
        raise NotImplementedError

    def _const(self, e: cst.BaseExpression | None) -> int | None:
        raise NotImplementedError

    def _block(self, frame: Frame, body: Any) -> bool:
        raise NotImplementedError

    def _invalidate(self, frame: Frame, base: cst.BaseExpression) -> None:
        raise NotImplementedError

    def _lookup(self, frame: Frame, name: str) -> Val:
        raise NotImplementedError

    def _torch_name(self, e: cst.BaseExpression) -> str | None:
        raise NotImplementedError

    def _first(self, pos: list[Val], kw: dict[str, Val], name: str = "input") -> Val:
        raise NotImplementedError

    def _apply(self, frame: Frame, e: cst.Call, callee: Val, pos: list[Val], kw: dict[str, Val], star: bool) -> Val:
        raise NotImplementedError
