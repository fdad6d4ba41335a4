"""The command line: exit codes, selection, formats, colour, files and folders, errors.

Most tests call ``nnlint.cli.main([...], stdout=..., stderr=...)`` in-process with
``--static`` (the source pass only); a few at the end run the installed ``nnlint``
command in a subprocess, as a user or CI would.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nnlint
from nnlint import registry
from nnlint.cli import main

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
BUG_LINE = 11
CLEAN = BUGGY.replace("F.dropout(x, p=0.5)", "F.dropout(x, p=0.5, training=self.training)")


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(*argv: str, stdout: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = stdout if stdout is not None else io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch):
    for var in ("NO_COLOR", "FORCE_COLOR", "NNLINT_DEBUG", "CLICOLOR_FORCE", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def proj(tmp_path, monkeypatch):
    """A folder with one buggy and one clean model file; cwd is the folder."""
    (tmp_path / "buggy.py").write_text(BUGGY, encoding="utf-8")
    (tmp_path / "clean.py").write_text(CLEAN, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def has_line(out: str, prefix: str) -> bool:
    return any(line.startswith(prefix) for line in out.splitlines())


def codes(out: str, only: tuple[str, ...] = ("NN001", "NN109")) -> list[str]:
    """The codes of the text report's finding lines (``path:line:col: CODE severity: ...``),
    keeping only those these tests are about, so that rules added later (which may well
    have something to say about these small files) do not break them."""
    found = [m.group(1) for m in re.finditer(r"^.+?:\d+:\d+: (NN\d{3}) ", out, re.MULTILINE)]
    return [c for c in found if c in only]


# --- exit codes ------------------------------------------------------------------------


def test_clean_file_exits_0(proj):
    code, out, err = run("--static", "clean.py")
    assert code == 0, err
    assert out.strip() == "All checks passed: 1 file in " + out.strip().rsplit(" in ", 1)[1]
    assert err == ""


def test_findings_exit_1_with_path_line_col_code(proj):
    code, out, err = run("--static", "buggy.py", "clean.py")
    assert code == 1, err
    assert has_line(out, f"buggy.py:{BUG_LINE}:13: NN109 error: F.dropout without training=")
    assert re.match(r"Found \d+ problems? \(\d+ errors?, .*\): 2 files in ", out.splitlines()[-1])


def test_explicit_check_subcommand(proj):
    assert run("check", "--static", "buggy.py")[0] == 1


def test_default_path_is_cwd(proj):
    code, out, _ = run("--static")
    assert code == 1 and "buggy.py:" in out and "2 files" in out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--bogus", "x.py"], "unrecognized arguments: --bogus"),
        (["--select", "NN999", "x.py"], "unknown rule code or prefix 'NN999'"),
        (["--ignore", "XX1", "x.py"], "unknown rule code or prefix 'XX1'"),
        (["--extend-select", "NN9", "x.py"], "unknown rule code or prefix 'NN9'"),
        (["--format", "xml", "x.py"], "invalid choice: 'xml'"),
        (["-j", "0", "x.py"], "--jobs must be at least 1"),
        (["--color", "sometimes", "x.py"], "invalid choice: 'sometimes'"),
        (["--timeout", "0", "x.py"], "--timeout must be positive"),
        (["--input-shape", "8,3,32,32", "x.py"], "name it with --model"),
        (["--memory-limit-mb", "-5", "x.py"], "--memory-limit-mb must be positive"),
        (["--model", "Nope", "x.py"], "--model Nope: no linted file defines a class, function or variable of that name"),
    ],
)
def test_usage_errors_exit_2(proj, argv, needle):
    code, out, err = run(*argv)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err + out


def test_missing_path_exits_2_and_still_lints_the_rest(proj):
    code, out, err = run("--static", "nope.py", "buggy.py")
    assert code == 2
    assert "nope.py: no such file or directory" in err
    assert f"buggy.py:{BUG_LINE}:" in out


def test_bad_config_exits_2(proj):
    (proj / "pyproject.toml").write_text("[tool.nnlint]\nselcet = ['NN1']\n")
    code, out, err = run("--static", "buggy.py")
    assert code == 2
    assert "unknown key 'selcet'" in err and "pyproject.toml" in err
    assert out == ""


def test_exit_zero_keeps_findings(proj):
    code, out, _ = run("--static", "--exit-zero", "buggy.py")
    assert code == 0
    assert "NN109" in out


def test_exit_zero_does_not_hide_usage_errors(proj):
    assert run("--static", "--exit-zero", "nope.py")[0] == 2


def test_version_and_help():
    code, out, err = run("--version")
    assert (code, out, err) == (0, f"nnlint {nnlint.__version__}\n", "")
    code, out, _ = run("--help")
    assert code == 0 and "check" in out and "rules" in out
    code, out, _ = run("check", "--help")
    assert code == 0 and "--select" in out and "--static" in out


def test_output_file(proj):
    code, out, _ = run("--static", "--format", "json", "-o", "report.json", "buggy.py")
    assert code == 1 and out == ""
    doc = json.loads((proj / "report.json").read_text())
    assert [d["code"] for d in doc["diagnostics"]] == ["NN109"]


def test_output_file_in_missing_folder_is_a_clear_error(proj):
    code, _, err = run("--static", "-o", "no/such/dir/report.txt", "buggy.py")
    assert code == 2
    assert "cannot write the report to no/such/dir/report.txt" in err and "internal error" not in err


def test_internal_error_is_a_message_not_a_traceback(proj, monkeypatch):
    from nnlint import engine

    def boom(*a, **k):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(engine, "lint", boom)
    code, out, err = run("--static", "buggy.py")
    assert code == 2
    assert "internal error: RuntimeError: engine exploded" in err and "NNLINT_DEBUG" in err
    assert "Traceback" not in err


# --- selection -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,reported",
    [
        ([], True),
        (["--select", "ALL"], True),
        (["--select", "NN1"], True),
        (["--select", "NN10"], True),
        (["--select", "NN109"], True),
        (["--select", "NN0"], False),
        (["--ignore", "NN1"], False),
        (["--ignore", "NN109"], False),
        (["--ignore", "ALL"], False),
        (["--select", "NN0", "--extend-select", "NN109"], True),
        (["--select", "ALL", "--ignore", "NN1", "--extend-select", "NN109"], True),
        (["--select", "NN109", "--ignore", "NN1"], True),  # the more specific selector wins
        (["--select", "NN1", "--ignore", "NN109"], False),
        (["--select", "NN0,NN109"], True),
        (["--select", " NN0 , NN109 "], True),
    ],
)
def test_select_ignore_prefixes(proj, argv, reported):
    code, out, err = run("--static", *argv, "buggy.py")
    assert code == (1 if reported else 0), err
    assert ("NN109" in codes(out)) is reported


def test_syntax_errors_are_reported_even_when_not_selected(proj):
    (proj / "broken.py").write_text("def f(:\n    pass\n")
    code, out, _ = run("--static", "--select", "NN109", "broken.py", "buggy.py")
    assert code == 1
    assert codes(out) == ["NN001", "NN109"]


# --- rule / rules ------------------------------------------------------------------------


@pytest.mark.parametrize("ident", ["NN109", "nn109", "functional-dropout-always-on"])
def test_rule_prints_docs(ident):
    code, out, err = run("rule", ident)
    assert code == 0, err
    assert out.startswith("# NN109 functional-dropout-always-on (error, source pass)")
    for heading in ("What it does", "Why is this bad?", "Example", "Use instead", "References"):
        assert f"## {heading}" in out


def test_rule_unknown_exits_2():
    code, out, err = run("rule", "NN999")
    assert code == 2 and "unknown rule 'NN999'" in err and out == ""


def test_rules_lists_every_rule():
    code, out, _ = run("rules")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines()]
    assert listed == list(registry.all_rules())


def test_rules_json_and_markdown():
    code, out, _ = run("rules", "--format", "json")
    assert code == 0
    table = json.loads(out)
    assert [r["code"] for r in table] == list(registry.all_rules())
    assert {"code", "name", "severity", "pass", "summary"} <= set(table[0])
    code, out, _ = run("rules", "--format", "markdown")
    assert code == 0 and out.startswith("| code | name |") and "| NN109 | functional-dropout-always-on |" in out


# --- formats and colour --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_every_format(proj, fmt):
    code, out, err = run("--static", "--format", fmt, "buggy.py")
    assert code == 1, err
    if fmt in ("json", "sarif"):
        json.loads(out)
    if fmt == "github":
        assert has_line(out, f"::error file=buggy.py,line={BUG_LINE},col=13,")
    assert "\x1b" not in out


def test_no_colour_when_not_a_tty(proj):
    _, out, _ = run("--static", "buggy.py")
    assert "\x1b[" not in out


def test_colour_on_a_tty(proj):
    _, out, _ = run("--static", "buggy.py", stdout=TTY())
    assert "\x1b[1;31mNN109" in out


def test_color_always_when_not_a_tty(proj):
    _, out, _ = run("--static", "--color", "always", "buggy.py")
    assert "\x1b[1;31mNN109" in out


def test_color_never_on_a_tty_has_no_escapes_at_all(proj):
    _, out, _ = run("--static", "--color", "never", "buggy.py", stdout=TTY())
    assert "\x1b" not in out


def test_no_color_env_on_a_tty(proj, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    _, out, _ = run("--static", "buggy.py", stdout=TTY())
    # no-color.org bans colour, not emphasis: no SGR colour parameter (30-37, 90-97, 38;...)
    sgr = re.findall(r"\x1b\[([0-9;]*)m", out)
    assert not [s for s in sgr if any(p.startswith(("3", "9")) for p in s.split(";"))], sgr


def test_color_always_beats_no_color(proj, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    _, out, _ = run("--static", "--color", "always", "buggy.py")
    assert "\x1b[1;31mNN109" in out


# --- files: broken, odd, missing ------------------------------------------------------------


def test_syntax_error_gives_nn001_and_others_are_linted(proj):
    (proj / "broken.py").write_text("import torch\n\ndef forward(self, x)\n    return x\n")
    (proj / "broken_plain.py").write_text("x = (1,\n")
    code, out, err = run("--static", ".")
    assert code == 1, err
    lines = out.splitlines()
    assert any(line.startswith("broken.py:3:21: NN001 error: syntax error: expected ':'") for line in lines), out
    assert any(line.startswith("broken_plain.py:") and "NN001" in line for line in lines), out
    assert any(line.startswith(f"buggy.py:{BUG_LINE}:") for line in lines), out


def test_suppression_cannot_hide_a_syntax_error(proj):
    (proj / "broken.py").write_text("# nnlint: noqa\nimport torch\ndef f(:  # noqa\n    pass\n")
    code, out, _ = run("--static", "broken.py")
    assert code == 1 and codes(out) == ["NN001"]


def test_invalid_identifier_character(proj):
    """libcst raises CSTValidationError (no line number) here; CPython's message and line win."""
    (proj / "odd.py").write_text("import torch\nx = 1\n\U00013460 = 2\n", encoding="utf-8")
    code, out, _ = run("--static", "odd.py")
    assert code == 1
    assert has_line(out, "odd.py:3:1: NN001 error: syntax error: invalid non-printable character U+13460")


def test_non_utf8_file(proj):
    (proj / "latin.py").write_bytes(b"import torch\nname = 'caf\xe9'\n")
    code, out, err = run("--static", "latin.py", "buggy.py")
    assert code == 1, err
    line = next(x for x in out.splitlines() if x.startswith("latin.py"))
    assert line.startswith("latin.py:2:1: NN001") and "not UTF-8" in line and "0xe9" in line


def test_declared_encoding_is_honoured(proj):
    body = "# -*- coding: latin-1 -*-\n" + BUGGY.replace("import torch.nn as nn", "import torch.nn as nn  # caf\xe9")
    (proj / "declared.py").write_bytes(body.encode("latin-1"))
    code, out, err = run("--static", "declared.py")
    assert code == 1, err
    assert codes(out) == ["NN109"] and has_line(out, f"declared.py:{BUG_LINE + 1}:13: NN109")


def test_utf8_bom_file(proj):
    (proj / "bom.py").write_bytes(b"\xef\xbb\xbf" + BUGGY.encode())
    code, out, _ = run("--static", "bom.py")
    assert code == 1 and has_line(out, f"bom.py:{BUG_LINE}:13: NN109")


def test_empty_and_blank_files_are_clean(proj):
    (proj / "empty.py").write_bytes(b"")
    (proj / "blank.py").write_text("\n\n   \n")
    code, out, err = run("--static", "empty.py", "blank.py")
    assert (code, err) == (0, "")
    assert "All checks passed: 2 files" in out


def test_binary_file(proj):
    (proj / "blob.py").write_bytes(b"\x7fELF\x00\x01\x02" + bytes(range(256)))
    code, out, _ = run("--static", "blob.py")
    assert code == 1
    assert out.startswith("blob.py:1:1: NN001 error: binary file")


def test_crashing_rule_is_a_clear_message(proj, monkeypatch):
    rule = registry.all_rules()["NN109"]

    def crash(self, ctx):
        raise KeyError("boom")
        yield  # pragma: no cover - makes this a generator like a real check

    monkeypatch.setattr(rule, "check", crash)
    (proj / "broken.py").write_text("import torch\ndef f(:\n")
    code, out, err = run("--static", "buggy.py", "broken.py")
    assert code == 2
    assert "buggy.py: internal error: rule NN109 crashed (KeyError: 'boom'" in err
    assert "Traceback" not in err + out
    assert codes(out) == ["NN001"]  # the other file was still linted


def test_parallel_run_matches_serial(proj):
    for i in range(6):
        (proj / f"m{i}.py").write_text(BUGGY if i % 2 else CLEAN)
    serial = run("--static", "-j", "1", "--format", "json", ".")
    parallel = run("--static", "-j", "2", "--format", "json", ".")
    assert serial[0] == parallel[0] == 1
    serial_diags, parallel_diags = json.loads(serial[1])["diagnostics"], json.loads(parallel[1])["diagnostics"]
    assert serial_diags == parallel_diags
    assert sum(d["code"] == "NN109" for d in serial_diags) == 4


def test_crash_in_a_worker_process_is_reported(proj, monkeypatch):
    """With -j 2 the rules run in forked workers; a crash there still becomes a message."""
    rule = registry.all_rules()["NN109"]

    def crash(self, ctx):
        raise ValueError("worker boom")
        yield  # pragma: no cover

    monkeypatch.setattr(rule, "check", crash)
    for i in range(5):
        (proj / f"m{i}.py").write_text(BUGGY)
    code, _, err = run("--static", "-j", "2", ".")
    assert code == 2
    assert err.count("rule NN109 crashed (ValueError: worker boom") == 7


# --- folder walk ---------------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_folder_walk_skips_vcs_venvs_and_gitignored(tmp_path, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    for rel in ("src/model.py", ".git_like_but_not/model.py", ".venv/lib/model.py", "myenv/model.py",
                "node_modules/pkg/model.py", "generated/model.py", "src/__pycache__/model.py",
                "ignored_file.py", "src/notes.txt", "src/deep/er/model.py"):
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(BUGGY)
    (repo / "myenv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (repo / ".gitignore").write_text("generated/\nignored_file.py\n")
    _git(repo, "init", "-q")
    (repo / ".git" / "hooks" / "fake.py").write_text(BUGGY)
    monkeypatch.chdir(repo)
    code, out, err = run("--static", "--format", "json", ".")
    assert code == 1, err
    linted = sorted({Path(d["path"]).as_posix() for d in json.loads(out)["diagnostics"]})
    assert linted == [".git_like_but_not/model.py", "src/deep/er/model.py", "src/model.py"]
    # a file or folder named on the command line is linted even when git ignores it
    code, out, _ = run("--static", "--format", "json", "ignored_file.py", "generated")
    assert {d["path"] for d in json.loads(out)["diagnostics"]} == {"ignored_file.py", "generated/model.py"}
    # ... but what git ignores inside a named folder stays skipped
    code, out, _ = run("--static", "--format", "json", "src")
    assert {d["path"] for d in json.loads(out)["diagnostics"]} == {"src/model.py", "src/deep/er/model.py"}
    (repo / ".gitignore").write_text("generated/\nignored_file.py\ndeep/\n")
    code, out, _ = run("--static", "--format", "json", "src")
    assert {d["path"] for d in json.loads(out)["diagnostics"]} == {"src/model.py"}


def test_folder_walk_outside_git(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "m.py").write_text(BUGGY)
    (tmp_path / "a" / "m.pyi").write_text(BUGGY)
    (tmp_path / "a" / "m.txt").write_text(BUGGY)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run("--static", "a")
    assert code == 1 and codes(out) == ["NN109"] and "a/m.py:" in out.replace(os.sep, "/")


def test_a_subcommand_wins_over_a_path_of_the_same_name(tmp_path, monkeypatch):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "m.py").write_text(BUGGY)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run("rules")
    assert code == 0 and out.startswith("NN001")
    assert run("./rules", "--static")[0] == 1
    assert run("check", "--static", "rules")[0] == 1


def test_same_file_twice_is_linted_once(proj):
    code, out, _ = run("--static", "buggy.py", "./buggy.py", ".")
    assert code == 1 and codes(out) == ["NN109"]


# --- the installed command ------------------------------------------------------------------


def nnlint_exe() -> str:
    exe = Path(sys.executable).parent / "nnlint"
    if exe.exists():
        return str(exe)
    found = shutil.which("nnlint")
    if found is None:
        pytest.skip("the nnlint console script is not installed")
    return found


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "NNLINT_DEBUG")}
    env["COLUMNS"] = "200"
    return env


def test_console_script_end_to_end(proj):
    proc = subprocess.run([nnlint_exe(), "--static", "buggy.py", "clean.py"], capture_output=True, text=True,
                          env=_clean_env(), timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert has_line(proc.stdout, f"buggy.py:{BUG_LINE}:13: NN109 error:")
    assert "\x1b" not in proc.stdout  # a pipe is not a TTY
    assert proc.stderr == ""


def test_console_script_exit_codes(proj):
    exe = nnlint_exe()
    assert subprocess.run([exe, "--static", "clean.py"], capture_output=True, env=_clean_env(), timeout=120).returncode == 0
    bad = subprocess.run([exe, "--frobnicate"], capture_output=True, text=True, env=_clean_env(), timeout=120)
    assert bad.returncode == 2 and "unrecognized arguments" in bad.stderr and "Traceback" not in bad.stderr
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, env=_clean_env(), timeout=120)
    assert version.returncode == 0 and version.stdout.strip() == f"nnlint {nnlint.__version__}"


def test_python_dash_m(proj):
    proc = subprocess.run([sys.executable, "-m", "nnlint", "--static", "--format", "json", "buggy.py"],
                          capture_output=True, text=True, env=_clean_env(), timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["summary"]["errors"] == 1
