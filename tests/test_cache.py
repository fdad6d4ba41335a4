"""The result cache (nnlint.cache): hits on an unchanged tree, and each part of the key
invalidates exactly the entries it affects. The passes are replaced by recorders here (what
is re-linted is the question, not what it finds); one slow test runs the real thing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from nnlint import cache, engine
from nnlint.cli import main
from nnlint.diagnostics import Diagnostic
from nnlint.passes import runner

MODEL = """import torch
from torch import nn
from helpers import width


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(width(), 2)

    def forward(self, x):
        return torch.softmax(self.fc(x), dim=1)
"""
OTHER = """import torch
from torch import nn


class Other(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("NNLINT_NO_CACHE", raising=False)
    monkeypatch.delenv("NNLINT_CACHE_DIR", raising=False)
    (tmp_path / "pyproject.toml").write_text("[tool.nnlint]\ntimeout = 60\n")
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "other.py").write_text(OTHER)
    (tmp_path / "helpers.py").write_text("def width():\n    return 4\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


class Recorder:
    """Stands in for the source pass and the dynamic pass; records which files ran."""

    def __init__(self, monkeypatch, project: Path) -> None:
        self.static: list[str] = []
        self.dynamic: list[str] = []
        self.project = project
        real_source = engine.run_source_pass

        def source(files, rules, cfg, jobs):
            self.static.extend(files)
            return real_source(files, rules, cfg, jobs)

        def dynamic(files, texts, cfg, opts, rules):
            self.dynamic.extend(files)
            result = runner.DynamicResult()
            for f in files:
                r = runner.DynamicResult(models=1)
                r.diagnostics.append(Diagnostic(code="NN303", name="x", severity="warning", message="dyn",
                                                pass_="probe", path=f, line=1))
                r.imported = [str(project / "helpers.py")] if "model" in f else []
                result.per_file[f] = r
                result.diagnostics.extend(r.diagnostics)
                result.models += 1
            return result

        monkeypatch.setattr(engine, "run_source_pass", source)
        monkeypatch.setattr(runner, "run_dynamic", dynamic)
        monkeypatch.setattr(runner, "torch_available", lambda: True)
        monkeypatch.setenv("NNLINT_WARM_WORKER", "0")

    def run(self, *args: str) -> tuple[int, dict]:
        self.static.clear()
        self.dynamic.clear()
        out, err = io.StringIO(), io.StringIO()
        code = main(["check", "--format", "json", *args, "."], stdout=out, stderr=err)
        assert code in (0, 1), err.getvalue()
        return code, json.loads(out.getvalue())


def _names(paths):
    return sorted(Path(p).name for p in paths)


def test_second_run_is_served_from_the_cache(project, monkeypatch):
    rec = Recorder(monkeypatch, project)
    _, first = rec.run()
    assert _names(rec.static) == ["helpers.py", "model.py", "other.py"]
    assert _names(rec.dynamic) == ["model.py", "other.py"]
    _, second = rec.run()
    assert rec.static == [] and rec.dynamic == []
    assert second["diagnostics"] == first["diagnostics"]
    assert second["summary"]["models"] == first["summary"]["models"]
    tag = project / ".nnlint_cache" / "CACHEDIR.TAG"
    assert tag.read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert (project / ".nnlint_cache" / ".gitignore").read_text().strip().endswith("*")


def test_changed_file_invalidates_only_itself(project, monkeypatch):
    rec = Recorder(monkeypatch, project)
    rec.run()
    (project / "other.py").write_text(OTHER + "\n# edited\n")
    rec.run()
    assert _names(rec.static) == ["other.py"] and _names(rec.dynamic) == ["other.py"]


def test_changed_imported_file_invalidates_the_dynamic_entries_that_imported_it(project, monkeypatch):
    rec = Recorder(monkeypatch, project)
    rec.run()
    (project / "helpers.py").write_text("def width():\n    return 8\n")
    rec.run()
    assert _names(rec.static) == ["helpers.py"]  # its own source entry
    assert _names(rec.dynamic) == ["model.py"]  # model.py imported it; other.py did not


def test_changed_sibling_class_module_invalidates_the_static_entries_that_import_a_class_from_it(
    project, monkeypatch
):
    # NN403 reads a class imported from a module beside the file (never importing it): the
    # static key holds that module's content hash; helpers.py (no class imported) does not count
    (project / "trainer.py").write_text("import torch\nfrom other import Other\n\nmodel = Other()\n")
    rec = Recorder(monkeypatch, project)
    rec.run()
    (project / "other.py").write_text(OTHER + "\n# edited\n")
    rec.run()
    assert _names(rec.static) == ["other.py", "trainer.py"]


def test_changed_config_invalidates(project, monkeypatch):
    rec = Recorder(monkeypatch, project)
    rec.run()
    (project / "pyproject.toml").write_text("[tool.nnlint]\ntimeout = 30\n")
    rec.run()
    assert _names(rec.static) == ["helpers.py", "model.py", "other.py"]
    assert _names(rec.dynamic) == ["model.py", "other.py"]
    rec.run()
    assert rec.static == [] and rec.dynamic == []


def test_changed_rule_selection_invalidates(project, monkeypatch):
    rec = Recorder(monkeypatch, project)
    rec.run()
    rec.run("--ignore", "NN101")
    assert len(rec.static) == 3 and len(rec.dynamic) == 2
    rec.run("--ignore", "NN101")
    assert rec.static == [] and rec.dynamic == []


def test_changed_nnlint_version_invalidates(project, monkeypatch):
    rec = Recorder(monkeypatch, project)
    rec.run()
    monkeypatch.setattr(cache, "_FINGERPRINT", "another-nnlint")
    rec.run()
    assert len(rec.static) == 3 and len(rec.dynamic) == 2


def test_changed_torch_version_invalidates_dynamic_entries_only(project, monkeypatch):
    rec = Recorder(monkeypatch, project)
    rec.run()
    monkeypatch.setattr(cache, "torch_version", lambda: "9.9.9")
    rec.run()
    assert rec.static == [] and _names(rec.dynamic) == ["model.py", "other.py"]


def test_no_cache_flag_and_env(project, monkeypatch):
    rec = Recorder(monkeypatch, project)
    rec.run("--no-cache")
    assert not (project / ".nnlint_cache").exists()
    monkeypatch.setenv("NNLINT_NO_CACHE", "1")
    rec.run()
    assert not (project / ".nnlint_cache").exists()


def test_cache_dir_option_and_config(project, monkeypatch, tmp_path_factory):
    rec = Recorder(monkeypatch, project)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    rec.run("--cache-dir", str(elsewhere / "c"))
    assert (elsewhere / "c" / "CACHEDIR.TAG").is_file() and not (project / ".nnlint_cache").exists()
    (project / "pyproject.toml").write_text('[tool.nnlint]\ncache-dir = "build/lintcache"\n')
    rec.run()
    assert (project / "build" / "lintcache" / "CACHEDIR.TAG").is_file()


def test_corrupt_or_unreadable_entries_are_misses(project, monkeypatch):
    rec = Recorder(monkeypatch, project)
    _, first = rec.run()
    entries = list((project / ".nnlint_cache").rglob("*.json"))
    assert entries
    for i, e in enumerate(entries):
        e.write_bytes([b"{not json", b"\xff\xfe", b"[]", b'{"key": "other"}'][i % 4])
    _, again = rec.run()
    assert len(rec.static) == 3 and len(rec.dynamic) == 2
    assert again["diagnostics"] == first["diagnostics"]
    rec.run()
    assert rec.static == [] and rec.dynamic == []


def test_unwritable_cache_folder_is_not_fatal(project, monkeypatch):
    rec = Recorder(monkeypatch, project)
    (project / "blocked").write_text("a file where the folder would be")
    code, _ = rec.run("--cache-dir", str(project / "blocked" / "cache"))
    assert code in (0, 1)


def test_transient_failures_are_not_cached(tmp_path):
    c = cache.Cache(tmp_path / "c", None, None, ["NN005"])
    f = tmp_path / "m.py"
    f.write_text("x = 1\n")
    nn005 = {"code": "NN005", "evidence": {"reason": "timeout"}}
    c.put_dynamic(str(f), [nn005], 0, 1, [], [])
    assert c.get_dynamic(str(f)) is None
    c.put_dynamic(str(f), [], 1, 0, [], None)  # imports unknown
    assert c.get_dynamic(str(f)) is None
    c.put_dynamic(str(f), [], 1, 0, [], [])
    assert c.get_dynamic(str(f)) is not None


def test_clean_removes_only_an_nnlint_cache(project, monkeypatch):
    rec = Recorder(monkeypatch, project)
    rec.run()
    out, err = io.StringIO(), io.StringIO()
    assert main(["clean"], stdout=out, stderr=err) == 0
    assert not (project / ".nnlint_cache").exists() and "removed" in out.getvalue()
    assert main(["clean"], stdout=out, stderr=err) == 0  # nothing to remove: fine
    (project / "mine").mkdir()
    (project / "mine" / "keep.txt").write_text("user data")
    assert main(["clean", "--cache-dir", "mine"], stdout=out, stderr=err) == 2
    assert (project / "mine" / "keep.txt").exists()


@pytest.mark.slow
def test_real_dynamic_run_records_imported_project_files(project, monkeypatch):
    """End to end: the worker says which project files the model imported, and editing
    one of them re-runs the dynamic pass for that model only."""
    calls: list[list[str]] = []
    real = runner.run_dynamic

    def spy(files, *a, **k):
        calls.append(list(files))
        return real(files, *a, **k)

    monkeypatch.setattr(runner, "run_dynamic", spy)

    def run():
        out, err = io.StringIO(), io.StringIO()
        code = main(["check", "--format", "json", "-j", "1", "."], stdout=out, stderr=err)
        assert code in (0, 1), err.getvalue()
        return json.loads(out.getvalue())

    first = run()
    assert first["summary"]["models"] == 2
    second = run()
    assert calls[-1] == [] or len(calls) == 1
    assert second["diagnostics"] == first["diagnostics"]
    drop = lambda s: {k: v for k, v in s.items() if k != "duration_s"}  # noqa: E731
    assert drop(second["summary"]) == drop(first["summary"])
    (project / "helpers.py").write_text("def width():\n    return 4  # same\n")
    run()
    assert _names(calls[-1]) == ["model.py"]
