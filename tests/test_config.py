"""``[tool.nnlint]`` in the nearest pyproject.toml: selection, per-file ignores,
thresholds, exclude; unknown keys and codes are errors (exit 2); CLI flags win."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from nnlint import config, registry
from nnlint.cli import main
from nnlint.config import ConfigError

from tests.test_cli import BUGGY, BUG_LINE, codes


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def proj(tmp_path, monkeypatch):
    """proj/pyproject.toml (written per test), proj/pkg/model.py and proj/tests/test_model.py,
    both buggy; cwd is proj."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "model.py").write_text(BUGGY)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_model.py").write_text(BUGGY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(folder: Path, body: str) -> Path:
    path = folder / "pyproject.toml"
    path.write_text("[project]\nname = 'demo'\n\n[tool.nnlint]\n" + textwrap.dedent(body))
    return path


def flagged(out: str) -> list[str]:
    return sorted(line.split(":", 1)[0] for line in out.splitlines() if codes(line))


# --- settings that change what is reported --------------------------------------------------


def test_no_config_reports_everything(proj):
    code, out, _ = run("--static", ".")
    assert code == 1 and flagged(out) == ["pkg/model.py", "tests/test_model.py"]


@pytest.mark.parametrize("body,reported", [
    ("select = ['NN0']\n", False),
    ("select = ['NN1']\n", True),
    ("select = ['ALL']\n", True),
    ("ignore = ['NN109']\n", False),
    ("ignore = ['NN10']\n", False),
    ("select = ['NN0']\nextend-select = ['NN109']\n", True),
    ("ignore = ['NN1']\nextend-select = ['NN109']\n", True),
])
def test_select_and_ignore(proj, body, reported):
    write_config(proj, body)
    code, out, err = run("--static", "pkg/model.py")
    assert code == (1 if reported else 0), err
    assert bool(codes(out)) is reported


def test_per_file_ignores(proj):
    write_config(proj, "[tool.nnlint.per-file-ignores]\n'tests/*' = ['NN109']\n")
    code, out, _ = run("--static", ".")
    assert code == 1 and flagged(out) == ["pkg/model.py"]


def test_per_file_ignores_by_basename_and_prefix(proj):
    write_config(proj, "[tool.nnlint.per-file-ignores]\n'model.py' = ['NN1']\n")
    code, out, _ = run("--static", ".")
    assert code == 1 and flagged(out) == ["tests/test_model.py"]


def test_per_file_ignores_are_relative_to_the_config_not_the_cwd(proj, monkeypatch):
    write_config(proj, "[tool.nnlint.per-file-ignores]\n'tests/*' = ['NN109']\n")
    monkeypatch.chdir(proj / "pkg")
    code, out, _ = run("--static", "..")
    assert code == 1 and flagged(out) == ["../pkg/model.py"]


def test_exclude_skips_folders_in_a_walk(proj):
    write_config(proj, "exclude = ['tests']\n")
    code, out, _ = run("--static", ".")
    assert code == 1 and flagged(out) == ["pkg/model.py"]
    assert "1 file " in out


def test_exclude_glob(proj):
    write_config(proj, "exclude = ['test_*.py', 'pkg/*']\n")
    code, out, _ = run("--static", ".")
    assert code == 0 and "0 files" in out


def test_thresholds_reach_the_rule(proj, monkeypatch):
    rule = registry.all_rules()["NN109"]
    monkeypatch.setattr(rule, "thresholds", {"max_ratio": 10.0})
    seen = []
    original = rule.check

    def spy(self, ctx):
        seen.append(dict(self.threshold))
        return original(self, ctx)

    monkeypatch.setattr(rule, "check", spy)
    write_config(proj, "[tool.nnlint.thresholds.NN109]\nmax_ratio = 3\n")
    assert run("--static", "pkg/model.py")[0] == 1
    assert seen == [{"max_ratio": 3.0}]
    seen.clear()
    write_config(proj, "[tool.nnlint.thresholds.functional-dropout-always-on]\nmax_ratio = 4.5\n")
    assert run("--static", "pkg/model.py")[0] == 1
    assert seen == [{"max_ratio": 4.5}]
    seen.clear()
    assert run("--static", "--isolated", "pkg/model.py")[0] == 1
    assert seen == [{"max_ratio": 10.0}]


# --- which pyproject.toml -------------------------------------------------------------------


def test_nearest_pyproject_from_the_linted_path(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "src" / "deep").mkdir(parents=True)
    (project / "src" / "deep" / "model.py").write_text(BUGGY)
    write_config(project, "ignore = ['NN109']\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_config(elsewhere, "select = ['NN1']\n")
    monkeypatch.chdir(elsewhere)
    code, out, _ = run("--static", str(project / "src" / "deep" / "model.py"))
    assert code == 0, out


def test_a_pyproject_without_nnlint_table_is_passed_over(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pyproject.toml").write_text("[project]\nname = 'sub'\n")
    (tmp_path / "sub" / "model.py").write_text(BUGGY)
    write_config(tmp_path, "ignore = ['NN109']\n")
    assert config.find_pyproject(tmp_path / "sub" / "model.py") == tmp_path / "pyproject.toml"
    monkeypatch.chdir(tmp_path)
    assert run("--static", "sub/model.py")[0] == 0


def test_explicit_config_and_isolated(proj, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text("[tool.nnlint]\nignore = ['NN1']\n")
    assert run("--static", "--config", str(other), "pkg/model.py")[0] == 0
    write_config(proj, "ignore = ['NN1']\n")
    assert run("--static", "--isolated", "pkg/model.py")[0] == 1


def test_missing_explicit_config_exits_2(proj):
    code, _, err = run("--static", "--config", "nope.toml", "pkg/model.py")
    assert code == 2 and "nope.toml: no such config file" in err


# --- errors: never silently ignored ----------------------------------------------------------


@pytest.mark.parametrize("body,needle", [
    ("selcet = ['NN1']\n", "unknown key 'selcet'"),
    ("per_file_ignores = {}\n", "did you mean 'per-file-ignores'?"),
    ("select = ['NN999']\n", "unknown rule code or prefix 'NN999'"),
    ("ignore = ['E501']\n", "unknown rule code or prefix 'E501'"),
    ("select = 'NN1'\n", "'select' must be a list"),
    ("[tool.nnlint.per-file-ignores]\n'*.py' = ['NN9']\n", "unknown rule code or prefix 'NN9'"),
    ("[tool.nnlint.per-file-ignores]\n'*.py' = 'NN109'\n", "must map to a list of codes"),
    ("[tool.nnlint.thresholds.NN999]\nx = 1\n", "thresholds: unknown rule 'NN999'"),
    ("[tool.nnlint.thresholds.NN109]\nmax_ratio = 1\n", "unknown threshold 'max_ratio'"),
    ("timeout = -1\n", "'timeout' must be positive"),
    ("timeout = true\n", "'timeout' must be int or float"),
    ("device = 'tpu'\n", "'device' must be auto, cpu or cuda"),
    ("select = [\n", "cannot read"),
])
def test_config_errors_exit_2_with_a_clear_message(proj, body, needle):
    path = write_config(proj, body)
    code, out, err = run("--static", "pkg/model.py")
    assert code == 2, (out, err)
    assert err.startswith("nnlint: configuration error: ")
    assert needle in err, err
    assert str(path) in err
    assert "Traceback" not in err and out == ""


def test_threshold_value_must_be_a_number(monkeypatch):
    monkeypatch.setattr(registry.all_rules()["NN109"], "thresholds", {"max_ratio": 10.0})
    with pytest.raises(ConfigError, match="max_ratio: must be a number"):
        config.from_table({"thresholds": {"NN109": {"max_ratio": "3"}}})


def test_unreadable_toml_elsewhere_in_the_tree(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("this is = = not toml\n")
    (tmp_path / "m.py").write_text(BUGGY)
    monkeypatch.chdir(tmp_path)
    code, _, err = run("--static", "m.py")
    assert code == 2 and "pyproject.toml: cannot read" in err


# --- CLI flags win -----------------------------------------------------------------------


def test_cli_select_beats_config_select(proj):
    write_config(proj, "select = ['NN0']\n")
    assert run("--static", "pkg/model.py")[0] == 0
    code, out, _ = run("--static", "--select", "NN1", "pkg/model.py")
    assert code == 1 and f"pkg/model.py:{BUG_LINE}:13: NN109" in out


def test_cli_ignore_beats_config_select(proj):
    write_config(proj, "select = ['NN109']\n")
    assert run("--static", "--ignore", "NN109", "pkg/model.py")[0] == 0


def test_cli_extend_select_beats_config_ignore(proj):
    write_config(proj, "ignore = ['NN1']\n")
    assert run("--static", "pkg/model.py")[0] == 0
    assert run("--static", "--extend-select", "NN109", "pkg/model.py")[0] == 1


def test_cli_and_config_errors_are_reported_before_linting(proj):
    write_config(proj, "select = ['NN1']\n")
    code, _, err = run("--static", "--select", "NN1,XX", "pkg/model.py")
    assert code == 2 and "--select: unknown rule code or prefix 'XX'" in err
