"""The shared source analyses stay on the rules' side of the line: nnlint/analysis and the source
context import no pass module (tests/test_architecture.py checks the rules themselves)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AREA = [*sorted((ROOT / "nnlint" / "analysis").glob("*.py")), ROOT / "nnlint" / "contexts" / "source.py"]


@pytest.mark.parametrize("path", AREA, ids=lambda p: str(p.relative_to(ROOT)))
def test_shared_source_analyses_import_no_pass_module(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        else:
            continue
        assert not any(m == "nnlint.passes" or m.startswith("nnlint.passes.") for m in modules), (
            f"{path.name}:{node.lineno} imports a pass module"
        )
