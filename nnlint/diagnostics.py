"""The one result type every pass produces and every reporter consumes.

Diagnostics are frozen, JSON-safe values: no CST or fx nodes, no tensors. They cross
process boundaries (the parallel source pass, the child process that runs user code)
as plain dicts via ``to_dict``/``from_dict``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any


# not StrEnum (UP042): str(Severity.ERROR) would become "error" instead of "Severity.ERROR"
class Severity(str, Enum):  # noqa: UP042
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


PASSES = ("source", "graph", "probe", "data", "tool")


@dataclass(frozen=True)
class Edit:
    line: int
    column: int
    end_line: int
    end_column: int
    replacement: str
    cell: int | None = None  # notebooks: the cell the edit applies to (positions cell-relative)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.cell is None:
            del out["cell"]
        return out


@dataclass(frozen=True)
class Fix:
    """Edits that resolve a finding. ``safe`` fixes keep the program's meaning where the
    finding is right and are applied by ``--fix``; unsafe ones change behaviour the user
    must review and need ``--unsafe-fixes`` (ruff's applicability)."""

    description: str
    edits: tuple[Edit, ...] = ()
    safe: bool = False

    @property
    def applicability(self) -> str:
        return "safe" if self.safe else "unsafe"


@dataclass(frozen=True)
class Location:
    path: str
    line: int
    column: int = 1
    message: str = ""


@dataclass(frozen=True)
class Diagnostic:
    code: str
    name: str
    severity: Severity
    message: str
    pass_: str
    path: str
    line: int
    column: int = 1
    end_line: int | None = None
    end_column: int | None = None
    model: str | None = None
    module: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    fix: Fix | None = None
    related: tuple[Location, ...] = ()
    cell: int | None = None  # notebooks: 1-based cell; line/column are then cell-relative
    #: where the settings a dynamic finding rests on came from, e.g.
    #: {"input": "guessed", "loss": "file", "target": "guessed"}; values declared | file | guessed
    guesses: dict[str, str] | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        # Normalise so every consumer can rely on 1-based, ordered spans.
        line = max(1, int(self.line or 1))
        column = max(1, int(self.column or 1))
        end_line = max(line, int(self.end_line or line))
        end_column = int(self.end_column or column + 1)
        if end_line == line and end_column <= column:
            end_column = column + 1
        object.__setattr__(self, "line", line)
        object.__setattr__(self, "column", column)
        object.__setattr__(self, "end_line", end_line)
        object.__setattr__(self, "end_column", end_column)
        object.__setattr__(self, "severity", Severity(self.severity))
        object.__setattr__(self, "evidence", json_safe(self.evidence))

    @property
    def sort_key(self) -> tuple:
        return (self.path, self.cell or 0, self.line, self.column, self.code, self.message)

    def with_(self, **changes: Any) -> Diagnostic:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract (the schema in docs/diagnostics.schema.json), key order included."""
        out: dict[str, Any] = {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "message": self.message,
            "pass": self.pass_,
            "model": self.model,
            "module": self.module,
            "evidence": self.evidence,
            "fix": None,
        }
        if self.fix is not None:
            out["fix"] = {
                "description": self.fix.description,
                "safe": self.fix.safe,
                "edits": [e.to_dict() for e in self.fix.edits],
                "applicability": self.fix.applicability,
            }
        if self.cell is not None:
            out["cell"] = self.cell
        if self.related:
            out["related"] = [asdict(r) for r in self.related]
        if self.guesses:
            out["guesses"] = dict(self.guesses)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Diagnostic:
        fix = d.get("fix")
        return cls(
            code=d["code"],
            name=d["name"],
            severity=Severity(d["severity"]),
            message=d["message"],
            pass_=d["pass"],
            path=d["path"],
            line=d["line"],
            column=d.get("column", 1),
            end_line=d.get("end_line"),
            end_column=d.get("end_column"),
            model=d.get("model"),
            module=d.get("module"),
            evidence=d.get("evidence") or {},
            fix=None
            if not fix
            else Fix(
                description=fix["description"],
                edits=tuple(Edit(**e) for e in fix.get("edits", [])),
                safe=bool(fix.get("safe", fix.get("applicability") == "safe")),
            ),
            cell=d.get("cell"),
            related=tuple(Location(**r) for r in d.get("related", [])),
            guesses=dict(d["guesses"]) if d.get("guesses") else None,
        )


def json_safe(value: Any) -> Any:
    """Coerce evidence to JSON-safe data: finite floats (NaN/Inf become strings), tuples
    to lists, unknown objects (tensors, shapes) to their repr/number."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return float(f"{value:.6g}")
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return json_safe(item())
        except Exception:  # a multi-element tensor: fall through to its repr
            pass
    try:
        return [json_safe(v) for v in value]  # torch.Size and friends
    except TypeError:
        return repr(value)
