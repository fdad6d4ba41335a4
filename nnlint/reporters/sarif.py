"""``--format sarif``: SARIF 2.1.0, with ``driver.rules`` filled from the registry so code
scanning UIs show each rule's docs."""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any, TextIO
from urllib.parse import quote

import nnlint
from nnlint import registry

LEVEL = {"error": "error", "warning": "warning", "info": "note"}
SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/nnlint/nnlint"


def _uri(path: str) -> str:
    return quote(PurePath(path).as_posix(), safe="/:._-~")


def as_dict(result: Any) -> dict[str, Any]:
    rules = registry.all_rules()
    index = {code: i for i, code in enumerate(rules)}
    driver_rules = []
    for code, rule in rules.items():
        driver_rules.append(
            {
                "id": code,
                "name": rule.name,
                "shortDescription": {"text": f"{code} {rule.name}"},
                "fullDescription": {"text": rule.summary() or rule.name},
                "help": {"text": rule.docs() or rule.name, "markdown": rule.docs() or rule.name},
                "defaultConfiguration": {"level": LEVEL[rule.severity.value]},
                "properties": {"pass": rule.pass_},
            }
        )
    results = []
    for d in result.diagnostics:
        res: dict[str, Any] = {
            "ruleId": d.code,
            "level": LEVEL[d.severity.value],
            "message": {"text": f"cell {d.cell}: {d.message}" if d.cell else d.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(d.path)},
                        "region": {
                            "startLine": d.line,
                            "startColumn": d.column,
                            "endLine": d.end_line,
                            "endColumn": d.end_column,
                        },
                    }
                }
            ],
            "properties": {"pass": d.pass_, "model": d.model, "module": d.module, "evidence": d.evidence},
        }
        if d.cell:  # a notebook: the region is relative to this cell (1-based among all cells)
            res["properties"]["cell"] = d.cell
        if d.code in index:
            res["ruleIndex"] = index[d.code]
        if d.related:
            res["relatedLocations"] = [
                {
                    "id": i,
                    "message": {"text": r.message or "related"},
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(r.path)},
                        "region": {"startLine": r.line, "startColumn": r.column},
                    },
                }
                for i, r in enumerate(d.related)
            ]
        if d.fix is not None and d.fix.edits:
            res["fixes"] = [
                {
                    "description": {"text": d.fix.description},
                    "artifactChanges": [
                        {
                            "artifactLocation": {"uri": _uri(d.path)},
                            "replacements": [
                                {
                                    "deletedRegion": {
                                        "startLine": e.line,
                                        "startColumn": e.column,
                                        "endLine": e.end_line,
                                        "endColumn": e.end_column,
                                    },
                                    "insertedContent": {"text": e.replacement},
                                }
                                for e in d.fix.edits
                            ],
                        }
                    ],
                }
            ]
        results.append(res)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "nnlint",
                        "version": nnlint.__version__,
                        "semanticVersion": nnlint.__version__,
                        "informationUri": INFO_URI,
                        "rules": driver_rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def write(result: Any, stream: TextIO, color: bool = False) -> None:
    json.dump(as_dict(result), stream, indent=2, allow_nan=False)
    stream.write("\n")
