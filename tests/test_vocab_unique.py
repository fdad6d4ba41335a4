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
