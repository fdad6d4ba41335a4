"""What a rule is. A rule is one small class in ``rules/``: identity, docs, examples and a
``check(ctx)`` generator. It never parses, traces, runs or prints: its pass hands it a
context and turns the ``Finding`` objects it yields into ``Diagnostic`` values.
"""

from __future__ import annotations

import enum
import inspect
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nnlint.diagnostics import Fix, Severity

DOC_HEADINGS = ("What it does", "Why is this bad?", "Example", "Use instead", "References")


@dataclass
class Finding:
    """What a rule yields: the pass fills in code, name, path and default severity.

    Position: a libcst ``node`` (source pass) or an explicit ``line``/``column``; graph and
    probe findings may instead give ``module`` (a qualified submodule path) and let the
    pass find the user's line that creates or calls it.
    """

    message: str
    node: Any = None
    line: int | None = None
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None
    module: str | None = None
    model: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    severity: Severity | None = None
    fix: Fix | None = None
    #: other places that explain the finding: (node or line, message) pairs
    related: tuple[tuple[Any, str], ...] = ()


@dataclass(frozen=True)
class Valid:
    """An example that must stay silent. ``config`` holds extra settings for the run
    (e.g. ``{"inputs": ...}`` for graph/probe examples)."""

    source: str
    config: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Invalid:
    """An example that must fire this rule at ``line`` (1-based, within the dedented
    snippet); ``contains`` is a substring the message must include."""

    source: str
    line: int
    contains: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    note: str = ""


class Rule:
    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    severity: ClassVar[Severity] = Severity.WARNING
    pass_: ClassVar[str] = ""
    #: default thresholds, overridable under [tool.nnlint.thresholds.CODE]
    thresholds: ClassVar[dict[str, float]] = {}
    #: extra measurements this rule needs from its pass (probe: ``Extra`` members of
    #: nnlint.contexts.probe, e.g. ``frozenset({Extra.BATCH_JACOBIAN})``)
    needs: ClassVar[frozenset[enum.Enum]] = frozenset()
    #: rules that are off unless selected by exact code or an opt-in flag
    opt_in: ClassVar[bool] = False
    #: "safe" or "unsafe" when the rule offers a fix (``yield Finding(..., fix=self.make_fix(...))``)
    fix_applicability: ClassVar[str | None] = None
    #: codes this rule's finding replaces at the same line: one finding per cause (NN310's
    #: measured batch mixing at a `view` line says what NN209's shape algebra would say)
    supersedes: ClassVar[tuple[str, ...]] = ()
    #: what the fix does, for the README's fix table
    fix_summary: ClassVar[str] = ""
    VALID: ClassVar[list[Valid | str]] = []
    INVALID: ClassVar[list[Invalid]] = []

    def __init__(self, thresholds: dict[str, float] | None = None) -> None:
        self.threshold = dict(self.thresholds)
        if thresholds:
            self.threshold.update(thresholds)

    def check(self, ctx: Any) -> Iterable[Finding]:  # pragma: no cover - interface
        raise NotImplementedError

    def make_fix(self, description: str, *edits: Any) -> Fix:
        """A fix of this rule's applicability; ``edits`` from the helpers in ``nnlint.fixes``."""
        assert self.fix_applicability in ("safe", "unsafe"), f"{self.code}: set fix_applicability"
        return Fix(description, tuple(edits), safe=self.fix_applicability == "safe")

    @classmethod
    def docs(cls) -> str:
        return textwrap.dedent(inspect.getdoc(cls) or "").strip()

    @classmethod
    def summary(cls) -> str:
        """First sentence of 'What it does', for tables and SARIF."""
        doc = cls.docs()
        body = doc.split("## What it does", 1)[-1].strip().split("\n\n", 1)[0]
        first = re.split(r"(?<=[.!?])\s+(?=[A-Z`(])", " ".join(body.split()), maxsplit=1)[0]
        return first

    @classmethod
    def valid_examples(cls) -> list[Valid]:
        return [v if isinstance(v, Valid) else Valid(v) for v in cls.VALID]


class SourceRule(Rule):
    pass_ = "source"


class GraphRule(Rule):
    pass_ = "graph"


class ProbeRule(Rule):
    pass_ = "probe"


class DataRule(Rule):
    pass_ = "data"


class ToolRule(Rule):
    """Rules the engine itself raises (syntax errors, crashed user code). Their
    ``check`` is never called; they exist so codes, docs and selection are uniform."""

    pass_ = "tool"

    def check(self, ctx: Any) -> Iterable[Finding]:
        return ()
