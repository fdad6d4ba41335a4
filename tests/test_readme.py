"""README's rule table is generated from the registry; this test keeps it current.
Regenerate with NNLINT_REGEN_README=1."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest

from nnlint.cli import main, rules_table_markdown

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(<!-- rules:start -->\n)(.*?)(<!-- rules:end -->)", re.S)


def test_rule_table_is_current():
    text = README.read_text(encoding="utf-8")
    table = rules_table_markdown()
    if os.environ.get("NNLINT_REGEN_README"):
        README.write_text(BLOCK.sub(lambda m: m.group(1) + table + m.group(3), text), encoding="utf-8")
        text = README.read_text(encoding="utf-8")
    m = BLOCK.search(text)
    assert m, "README lacks the <!-- rules:start --> block"
    assert m.group(2) == table, "README rule table is stale: run NNLINT_REGEN_README=1 pytest tests/test_readme.py"


def test_readme_states_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci


CONSOLE = re.compile(r"```console\n\$ \.venv/bin/nnlint (?P<args>[^\n]*)\n(?P<out>.*?)```", re.S)


@pytest.mark.slow
@pytest.mark.parametrize("block", CONSOLE.findall(README.read_text(encoding="utf-8")), ids=lambda b: b[0])
def test_readme_sample_output_is_real(block, monkeypatch):
    """README's sample runs are what nnlint prints now (the run's duration aside)."""
    args, shown = block
    monkeypatch.chdir(README.parent)
    out, err = io.StringIO(), io.StringIO()
    main([*args.split(), "--color", "never"], stdout=out, stderr=err)
    strip = lambda text: re.sub(r" in [0-9.]+s\.$", "", text.strip(), flags=re.M)  # noqa: E731
    assert strip(out.getvalue()) == strip(shown), err.getvalue()
