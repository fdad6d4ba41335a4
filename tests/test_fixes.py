"""Fixes, generic over the registry: every rule that offers a fix gets its INVALID examples
fixed; the fixed text parses, the fixed findings are gone, and a second run changes nothing
(convergence, as ruff's harness checks). Then the command line: --fix, --unsafe-fixes,
--diff, --add-noqa on .py files and notebooks, atomic writes that keep encoding, line
endings and permissions, and a hypothesis test on mutated sources."""

from __future__ import annotations

import ast
import io
import json
import os
import stat
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnlint import fixes, notebook, registry
from nnlint.cli import main

FIXABLE = [r for r in registry.all_rules().values() if r.fix_applicability]
EXAMPLES = [pytest.param(rule, ex, id=f"{rule.code}-{i}") for rule in FIXABLE for i, ex in enumerate(rule.INVALID)]


def _src(example) -> str:
    return textwrap.dedent(example.source).lstrip("\n")


def test_fixable_rules_are_source_rules_with_an_applicability():
    assert FIXABLE, "no rule offers a fix"
    for rule in FIXABLE:
        assert rule.fix_applicability in ("safe", "unsafe"), rule.code
        assert rule.pass_ == "source", f"{rule.code}: only source rules can rewrite text"


@pytest.mark.parametrize("rule", FIXABLE, ids=lambda r: r.code)
def test_every_fixable_rule_fixes_an_invalid_example(rule):
    fixed = [ex for ex in rule.INVALID if fixes.fix_text("example.py", _src(ex), [rule()], unsafe=True, force=True).changed]
    assert fixed, f"{rule.code} offers no fix for any of its INVALID examples"


@pytest.mark.parametrize("rule,example", EXAMPLES)
def test_fix_converges(rule, example):
    text = _src(example)
    before, _ = fixes.lint_text("example.py", text, [rule()], None, force=True)
    offered = [d for d in before if d.fix is not None]
    for d in offered:
        assert d.fix.safe == (rule.fix_applicability == "safe")
    out = fixes.fix_text("example.py", text, [rule()], unsafe=True, force=True)
    assert out.error is None, out.error
    if not offered:
        assert not out.changed
        return
    assert out.changed
    ast.parse(out.after)
    after, _ = fixes.lint_text("example.py", out.after, [rule()], None, force=True)
    assert not [d for d in after if d.fix is not None], f"{rule.code} still fires after its fix:\n{out.after}"
    assert len(after) == len(before) - len(offered), out.after
    again = fixes.fix_text("example.py", out.after, [rule()], unsafe=True, force=True)
    assert not again.changed, f"a second fix changed:\n{out.after}\n->\n{again.after}"


@pytest.mark.parametrize("rule,example", [p for p in EXAMPLES if p.values[0].fix_applicability == "unsafe"])
def test_unsafe_fixes_need_the_flag(rule, example):
    assert not fixes.fix_text("example.py", _src(example), [rule()], unsafe=False, force=True).changed


# ---------------------------------------------------------------------------------------
# the command line

BUGGY = textwrap.dedent(
    """\
    import torch.nn as nn
    import torch.nn.functional as F


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 4)

        def forward(self, x):
            x = F.dropout(x, p=0.5)
            return self.fc(x)
    """
)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_fix_writes_and_reports_what_is_left(tmp_path):
    p = tmp_path / "m.py"
    p.write_text(BUGGY)
    code, out, err = run("--static", "--fix", str(p))
    assert "training=self.training" in p.read_text()
    assert code == 0, out + err
    assert "Fixed 1 problem" in err


def test_diff_writes_nothing(tmp_path):
    p = tmp_path / "m.py"
    p.write_text(BUGGY)
    code, out, _ = run("--static", "--diff", str(p))
    assert code == 1
    assert out.startswith(f"--- a/{p}") and "+        x = F.dropout(x, p=0.5, training=self.training)" in out
    assert p.read_text() == BUGGY


def test_fix_keeps_crlf_bom_latin1_and_permissions(tmp_path):
    p = tmp_path / "m.py"
    p.write_bytes(b"\xef\xbb\xbf" + BUGGY.replace("\n", "\r\n").encode())
    os.chmod(p, 0o751)
    run("--static", "--fix", str(p))
    data = p.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"training=self.training" in data
    assert data.count(b"\r\n") == BUGGY.count("\n") and b"\n" not in data.replace(b"\r\n", b"")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o751
    q = tmp_path / "l.py"
    q.write_bytes(("# -*- coding: latin-1 -*-\n# café\n" + BUGGY).encode("latin-1"))
    run("--static", "--fix", str(q))
    assert "café" in q.read_bytes().decode("latin-1") and b"training=self.training" in q.read_bytes()
    assert not [x for x in os.listdir(tmp_path) if x.startswith(".nnlint")]


def test_add_noqa(tmp_path):
    p = tmp_path / "m.py"
    p.write_text(BUGGY)
    code, out, err = run("--static", "--add-noqa", str(p))
    assert "x = F.dropout(x, p=0.5)  # noqa: NN109" in p.read_text(), p.read_text()
    assert code == 0 and "Added 1 noqa" in err
    code, out, _ = run("--static", str(p))
    assert code == 0


def _nb(src_cells: list[str]) -> str:
    cells = [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {"tags": ["x"]}, "outputs": [],
              "source": s.splitlines(keepends=True)} for i, s in enumerate(src_cells)]
    return json.dumps({"cells": cells, "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4,
                       "nbformat_minor": 5}, indent=1, ensure_ascii=False) + "\n"


def test_fix_and_noqa_in_a_notebook_keep_its_json(tmp_path):
    head, _, body = BUGGY.partition("\n\n\n")
    raw = _nb(["%matplotlib inline\n" + head + "\n", body])
    p = tmp_path / "nb.ipynb"
    p.write_text(raw, encoding="utf-8")
    code, out, _ = run("--static", "--diff", str(p))
    assert f"--- a/{p}:cell 2" in out and "training=self.training" in out
    assert p.read_text(encoding="utf-8") == raw
    run("--static", "--fix", str(p))
    new = p.read_text(encoding="utf-8")
    assert new == raw.replace('x = F.dropout(x, p=0.5)\\n"', 'x = F.dropout(x, p=0.5, training=self.training)\\n"')
    p.write_text(raw, encoding="utf-8")
    run("--static", "--add-noqa", str(p))
    assert p.read_text(encoding="utf-8") == raw.replace('x = F.dropout(x, p=0.5)\\n"', 'x = F.dropout(x, p=0.5)  # noqa: NN109\\n"')


# ---------------------------------------------------------------------------------------
# hypothesis: fixes applied to mutated sources always leave code that parses

_SOURCES = [_src(ex) for rule in FIXABLE for ex in rule.INVALID]


def _mutate(text: str, data) -> str:
    lines = text.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(0, 3))):
        op = data.draw(st.sampled_from(["dup", "drop", "indent_blank", "comment", "swap_args", "paren"]))
        i = data.draw(st.integers(0, max(0, len(lines) - 1)))
        if not lines:
            break
        if op == "dup":
            lines.insert(i, lines[i])
        elif op == "drop":
            del lines[i]
        elif op == "indent_blank":
            lines.insert(i, "\n")
        elif op == "comment":
            lines[i] = lines[i].rstrip("\n") + "  # note\n"
        elif op == "swap_args":
            lines[i] = lines[i].replace("(x, ", "(\n    x,\n    ", 1)
        elif op == "paren":
            lines[i] = lines[i].replace(")", ",)", 1)
    return "".join(lines)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fixes_on_mutated_sources_always_parse(data):
    text = _mutate(data.draw(st.sampled_from(_SOURCES)), data)
    try:
        ast.parse(text)
    except SyntaxError:
        return
    out = fixes.fix_text("m.py", text, [r() for r in FIXABLE], unsafe=True, force=True)
    ast.parse(out.after)
    assert out.error is None or "invalid code" not in out.error, (text, out.after)


def test_readme_fix_table_is_current():
    import re
    from pathlib import Path

    readme = Path(__file__).resolve().parents[1] / "README.md"
    m = re.search(r"<!-- fixes:start -->\n(.*?)<!-- fixes:end -->", readme.read_text(encoding="utf-8"), re.S)
    assert m, "README lacks the <!-- fixes:start --> block"
    assert m.group(1) == fixes.table_markdown(), "README fix table is stale: paste nnlint.fixes.table_markdown()"


def test_unsafe_fixes_need_the_flag_on_the_command_line(tmp_path):
    p = tmp_path / "train.py"
    src = "from torch.utils.data import DataLoader\n\ntrain_loader = DataLoader(train_ds, batch_size=32)\n"
    p.write_text(src)
    code, out, err = run("--static", "--select", "NN405", "--fix", str(p))
    assert p.read_text() == src and code == 1 and "NN405" in out
    code, out, err = run("--static", "--select", "NN405", "--unsafe-fixes", str(p))
    assert p.read_text() == src.replace("batch_size=32)", "batch_size=32, shuffle=True)")
    assert code == 0 and "Fixed 1 problem (NN405 x1)" in err


def test_json_carries_notebook_fix_edits_with_their_cell(tmp_path):
    head, _, body = BUGGY.partition("\n\n\n")
    p = tmp_path / "nb.ipynb"
    p.write_text(_nb([head + "\n", body]), encoding="utf-8")
    _, out, _ = run("--static", "--select", "NN109", "--format", "json", str(p))
    (d,) = json.loads(out)["diagnostics"]
    assert d["cell"] == 2 and d["fix"]["applicability"] == "safe"
    (edit,) = d["fix"]["edits"]
    assert edit["cell"] == 2 and edit["line"] == d["line"] == 7


def test_fixes_keep_the_layout_of_multiline_code():
    """Edits touch only what changes: a multi-line call or Sequential inside a method keeps
    its indentation and comments (regenerating the node would lose the block's indent)."""
    src = textwrap.dedent(
        """\
        import torch.nn as nn
        import torch.nn.functional as F
        from torch.utils.data import DataLoader


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(
                    nn.Linear(784, 256),  # first
                    nn.ReLU(),
                    nn.Linear(256, 10),
                    nn.Softmax(dim=1),
                )
                self.heads = [
                    nn.Linear(10, 2),  # a head
                    nn.Linear(10, 3),
                ]

            def forward(self, x):
                x = F.dropout(
                    x,
                    p=0.5,
                )
                return self.net(x)


        def train(train_ds):
            loader = DataLoader(
                train_ds,
                batch_size=32,
            )
            model = Net()
            criterion = nn.CrossEntropyLoss()
            for x, y in loader:
                loss = criterion(model(x), y)
        """
    )
    rules = [registry.all_rules()[c]() for c in ("NN104", "NN109", "NN110", "NN405")]
    out = fixes.fix_text("m.py", src, rules, unsafe=True)
    assert out.error is None and set(out.applied) == {"NN104", "NN109", "NN110", "NN405"}, out.applied
    expected = (src.replace("            nn.Linear(256, 10),\n            nn.Softmax(dim=1),\n",
                            "            nn.Linear(256, 10),\n")
                .replace("self.heads = [", "self.heads = nn.ModuleList([")
                .replace("            nn.Linear(10, 3),\n        ]\n", "            nn.Linear(10, 3),\n        ])\n")
                .replace("            p=0.5,\n", "            p=0.5, training=self.training,\n")
                .replace("        batch_size=32,\n", "        batch_size=32, shuffle=True,\n"))
    assert out.after == expected, out.after
