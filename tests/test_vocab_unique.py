"""nnlint/vocab.py: one name means one thing, and the vocabulary stays torch-free."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

VOCAB = Path(__file__).resolve().parents[1] / "nnlint" / "vocab.py"


def test_no_name_is_defined_twice():
    # each pass fills its own section: a name defined again in another section would
    # silently replace the first one's meaning
    tree = ast.parse(VOCAB.read_text(encoding="utf-8"))
    names = Counter(
        t.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    )
    assert not [n for n, k in names.items() if k > 1]


def test_vocab_and_graph_context_import_without_torch():
    code = "import sys, nnlint.vocab, nnlint.contexts.graph; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def _base_tables(tree: ast.Module) -> dict[str, list[str]]:
    """Top-level tables written out as literals (a set, dict, tuple or ``frozenset({...})`` of
    strings): the base tables. Everything else in vocab.py is derived from them."""
    tables: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        else:
            continue
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "frozenset":
            value = value.args[0] if value.args else value
        items = value.keys if isinstance(value, ast.Dict) else getattr(value, "elts", None)
        if isinstance(value, (ast.Set, ast.Dict, ast.Tuple, ast.List)) and items is not None:
            if all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in items):
                tables[target] = [k.value for k in items if isinstance(k, ast.Constant)]
    return tables


def test_no_torch_name_is_listed_in_two_base_tables():
    # one vocabulary: a torch name is listed once, in the base table of its concept; every
    # other set is derived from the base tables (unions, differences, comprehensions)
    tables = _base_tables(ast.parse(VOCAB.read_text(encoding="utf-8")))
    assert len(tables) > 20  # the parse found the base tables
    where: dict[tuple[str, str], list[str]] = {}
    for table, names in tables.items():
        # a method name (``Tensor.relu_``) and a function name (``F.relu_``) are two names
        namespace = "method" if "METHOD" in table else "name"
        for name in names:
            where.setdefault((namespace, name), []).append(table)
    repeated = {n: ts for n, ts in where.items() if len(ts) > 1}
    assert not repeated, repeated
