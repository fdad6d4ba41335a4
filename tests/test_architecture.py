"""The house rules of issue 8, checked on the code itself: rules receive a context and never
reach into a pass, no module uses another module's private names, and every rule's ``check``
says which context it receives."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("nnlint", "rules")


def _modules() -> list[tuple[str, Path, ast.Module]]:
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[0] == "rules":
                parts = ["nnlint", *parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.append((".".join(parts), path, ast.parse(path.read_text(encoding="utf-8"))))
    return out


MODULES = _modules()


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path, tree: ast.Module):
    """(imported module, names) for every ``from X import ...`` and ``import X`` in the file,
    function-local ones included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            yield node.lineno, _absolute(module, path, node), [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, []


def test_rules_never_import_a_pass():
    bad = [
        f"{path.relative_to(ROOT)}:{line}: imports {target}"
        for module, path, tree in MODULES
        if module.startswith("nnlint.rules")
        for line, target, names in _imports(module, path, tree)
        if target == "nnlint.passes"
        or target.startswith("nnlint.passes.")
        or (target == "nnlint" and "passes" in names)
    ]
    assert not bad, "\n".join(bad)


def test_no_module_imports_another_modules_private_names():
    known = {m for m, _, _ in MODULES}
    bad = []
    for module, path, tree in MODULES:
        for line, target, names in _imports(module, path, tree):
            if target not in known or target == module:
                continue
            for name in names:
                if name.startswith("_") and not name.startswith("__"):
                    bad.append(f"{path.relative_to(ROOT)}:{line}: from {target} import {name}")
        aliases = {
            a.asname or a.name: _absolute(module, path, node) + "." + a.name
            if isinstance(node, ast.ImportFrom)
            else a.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for a in node.names
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and aliases.get(node.value.id) in known
                and aliases.get(node.value.id) != module
            ):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not bad, "\n".join(bad)


def _rule_classes():
    from nnlint.registry import all_rules

    # tool rules (NN0xx) are what a pass itself reports; their check is never called
    return sorted((r for r in all_rules().values() if r.pass_ != "tool"), key=lambda r: r.code)


@pytest.mark.parametrize("rule", _rule_classes(), ids=lambda r: r.code)
def test_every_rule_check_is_typed_with_its_context(rule):
    import inspect
    import typing

    hints = typing.get_type_hints(rule.check)
    ctx = hints.get("ctx")
    assert ctx is not None and ctx is not typing.Any, f"{rule.code}: check(self, ctx) has no context type"
    assert "return" in hints, f"{rule.code}: check has no return type"
    assert inspect.getmodule(ctx).__name__.startswith("nnlint.contexts"), (
        f"{rule.code}: check's context type {ctx!r} is not one of nnlint.contexts"
    )
