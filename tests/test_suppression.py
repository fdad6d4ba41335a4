"""``# noqa`` suppression: per line (codes, prefixes, bare), per file, never inside strings,
and applied by the engine to every pass's findings (here: the source pass and a synthetic
graph-pass finding)."""

from __future__ import annotations

import io
import textwrap

import pytest

from nnlint import suppression
from nnlint.cli import main
from nnlint.diagnostics import Diagnostic, Severity

HEADER = textwrap.dedent(
    """\
    import torch.nn as nn
    import torch.nn.functional as F


    class Net(nn.Module):
        def forward(self, x):
    """
)
LINE = HEADER.count("\n") + 1  # the line of the first statement in forward


def lint(tmp_path, monkeypatch, body: str, header: str = HEADER) -> list[int]:
    """Lines of NN109 findings for ``forward`` statements ``body`` (one per line)."""
    src = header + textwrap.indent(textwrap.dedent(body), " " * 8)
    (tmp_path / "m.py").write_text(src, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    main(["--static", "--format", "json", "m.py"], stdout=out, stderr=err)
    import json

    return [d["line"] for d in json.loads(out.getvalue())["diagnostics"] if d["code"] == "NN109"]


@pytest.mark.parametrize(
    "comment,suppressed",
    [
        ("", False),
        ("  # noqa", True),
        ("  # noqa: NN109", True),
        ("  #noqa:NN109", True),
        ("  # NOQA: nn109", True),
        ("  # noqa: NN1", True),
        ("  # noqa: NN10", True),
        ("  # noqa: NN", True),
        ("  # noqa: NN101, NN109", True),
        ("  # noqa: NN101 NN109", True),
        ("  # noqa: NN109 -- eval is never called on this net", True),
        ("  # noqa: NN2", False),
        ("  # noqa: NN108", False),
        ("  # noqa: NN1091", False),
        ("  # noqa: E501", False),
        ("  # some comment  # noqa: NN109", True),
        ("  # type: ignore  # noqa", True),
        ('  ;s = "# noqa: NN2"  # noqa: NN109', True),
        ('  ;s = "# noqa"', False),
        ("  # nnlint: noqa", False),  # the file-level form only counts on a line of its own
    ],
)
def test_line_noqa(tmp_path, monkeypatch, comment, suppressed):
    lines = lint(tmp_path, monkeypatch, f"return F.dropout(x, p=0.5){comment}\n")
    assert lines == ([] if suppressed else [LINE])


@pytest.mark.parametrize(
    "stmt",
    [
        'return F.dropout(x, p=float("0.5  # noqa"))',
        "return F.dropout(x, p=float('0.5 # noqa: NN109'))",
        'return F.dropout(x, p=float("\\" # noqa"))',
        "return F.dropout(x, p=len(f'{x} # noqa'))",
    ],
)
def test_noqa_inside_a_string_does_not_count(tmp_path, monkeypatch, stmt):
    assert lint(tmp_path, monkeypatch, stmt + "\n") == [LINE]


def test_noqa_applies_to_its_own_line_only(tmp_path, monkeypatch):
    body = """\
    x = F.dropout(x, p=0.5)  # noqa: NN109
    x = F.dropout(x, p=0.5)
    # noqa
    return F.dropout(x, p=0.5)
    """
    assert lint(tmp_path, monkeypatch, body) == [LINE + 1, LINE + 3]


def test_multi_line_call_is_suppressed_on_its_first_line(tmp_path, monkeypatch):
    body = """\
    x = F.dropout(  # noqa: NN109
        x, p=0.5)
    return F.dropout(
        x, p=0.5)  # noqa: NN109
    """
    assert lint(tmp_path, monkeypatch, body) == [LINE + 2]


@pytest.mark.parametrize(
    "first_line,suppressed",
    [
        ("# nnlint: noqa\n", True),
        ("#nnlint:noqa\n", True),
        ("  # NNLINT: NOQA\n", True),
        ("# nnlint: noqa: NN1\n", True),
        ("# nnlint: noqa: NN109, NN2\n", True),
        ("# nnlint: noqa: NN2\n", False),
        ("# noqa\n", False),  # a bare noqa on an otherwise empty line is not file-level
        ("x = 1  # nnlint: noqa\n", False),
        ('"""# nnlint: noqa"""\n', False),
    ],
)
def test_file_level_noqa(tmp_path, monkeypatch, first_line, suppressed):
    lines = lint(tmp_path, monkeypatch, "return F.dropout(x, p=0.5)\n", header=first_line + HEADER)
    assert lines == ([] if suppressed else [LINE + 1])


def test_file_level_noqa_anywhere_in_the_file(tmp_path, monkeypatch):
    header = HEADER.replace("class Net", "# nnlint: noqa: NN109\nclass Net")
    assert lint(tmp_path, monkeypatch, "return F.dropout(x, p=0.5)\n", header=header) == []


# --- the suppression module on its own: every pass's findings go through it ----------------


def diag(code: str, line: int, path: str = "m.py", pass_: str = "graph") -> Diagnostic:
    return Diagnostic(code=code, name="x", severity=Severity.WARNING, message="m", pass_=pass_, path=path, line=line)


def test_apply_to_graph_findings():
    text = "a = 1\nb = 2  # noqa: NN2\nc = 3  # noqa: NN301\n"
    kept = suppression.apply([diag("NN201", 2), diag("NN301", 2), diag("NN301", 3), diag("NN302", 3)], {"m.py": text})
    assert [(d.code, d.line) for d in kept] == [("NN301", 2), ("NN302", 3)]


def test_apply_keeps_findings_of_files_without_text_and_nn001():
    text = "# nnlint: noqa\n"
    nn001 = diag("NN001", 1, pass_="tool")
    kept = suppression.apply([diag("NN201", 1, path="other.py"), nn001, diag("NN201", 1)], {"m.py": text})
    assert kept == [diag("NN201", 1, path="other.py"), nn001]


def test_parse():
    sup = suppression.parse("x  # noqa\ny  # noqa: nn1, NN205\n'# noqa'\n# nnlint: noqa: NN3\n")
    assert sup.by_line == {1: None, 2: {"NN1", "NN205"}}
    assert sup.file_codes == {"NN3"}
    assert suppression.parse("no comments here").by_line == {}


def test_in_comment():
    assert suppression.in_comment("x = 1  # noqa", 7)
    assert not suppression.in_comment("x = '# noqa'", 5)
    assert suppression.in_comment("x = 1  # c '# noqa'", 12)  # inside a comment that started earlier
    assert suppression.in_comment("x = 'a\\'b'  # noqa", 12)
