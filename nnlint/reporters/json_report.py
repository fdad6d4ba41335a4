"""``--format json``: the stable contract of the schema in docs/diagnostics.schema.json (version 1).
Fields are only ever added, never renamed or removed."""

from __future__ import annotations

import json
from typing import Any, TextIO

import nnlint
from nnlint.diagnostics import Severity

VERSION = 1


def as_dict(result: Any) -> dict[str, Any]:
    return {
        "version": VERSION,
        "nnlint_version": nnlint.__version__,
        "diagnostics": [d.to_dict() for d in result.diagnostics],
        "summary": {
            "files": result.files,
            "models": result.models,
            "models_not_checked": getattr(result, "models_not_checked", 0),
            "models_not_probed": result.models_not_probed,
            "errors": result.count(Severity.ERROR),
            "warnings": result.count(Severity.WARNING),
            "infos": result.count(Severity.INFO),
            "duration_s": round(result.duration_s, 3),
        },
    }


def write(result: Any, stream: TextIO, color: bool = False) -> None:
    json.dump(as_dict(result), stream, indent=2, allow_nan=False)
    stream.write("\n")
