"""The source side's layout stays as issue 8 left it: source and training rules and their shared
analyses import the public context (nnlint.contexts.source), never a pass module, and no module
there imports another module's private (underscore) names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AREA = [
    *sorted((ROOT / "rules" / "source").glob("*.py")),
    *sorted((ROOT / "rules" / "training").glob("*.py")),
    *sorted((ROOT / "nnlint" / "analysis").glob("*.py")),
    ROOT / "nnlint" / "contexts" / "source.py",
]


def imports(path: Path) -> list[ast.ImportFrom | ast.Import]:
    return [
        n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, (ast.Import, ast.ImportFrom))
    ]


@pytest.mark.parametrize("path", AREA, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pass_module_and_no_private_name_is_imported(path: Path):
    for node in imports(path):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        assert not any(m == "nnlint.passes" or m.startswith("nnlint.passes.") for m in modules), (
            f"{path.name}:{node.lineno} imports a pass module; use nnlint.contexts.source"
        )
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{path.name}:{node.lineno} imports private names {private}"


def test_source_rules_receive_the_typed_context():
    from nnlint import registry
    from nnlint.contexts.source import SourceContext

    for code, rule in registry.all_rules().items():
        if code[:3] in ("NN1", "NN4"):
            hint = rule.check.__annotations__.get("ctx")
            assert hint in ("SourceContext", SourceContext), f"{code}: check(self, ctx: SourceContext)"
