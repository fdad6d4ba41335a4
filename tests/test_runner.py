"""The parent side of the dynamic passes: which files run, the child protocol, and the
time/memory guards on hostile user code."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nnlint import cli, config, engine, registry
from nnlint.config import Config
from nnlint.passes import runner

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "fixtures" / "hostile"


class Opts:
    model = None


@pytest.mark.parametrize("text,wanted", [
    ("import torch.nn as nn\nclass Net(nn.Module):\n    pass\n", True),
    ("from torch import nn\nclass Net(\n    nn.Module,\n):\n    pass\n", True),  # bases over lines
    ("import torch\nfrom torch.nn import Module\nclass Net(Module): pass\n", True),
    ("import lightning as L\nclass Lit(L.LightningModule): pass\n", True),
    ("import torch\nclass Base(object): pass\nclass Net(Base): pass\n", True),
    ("import torch\ndef nnlint_examples():\n    return []\n", True),
    ("import torch\nmodel = torch.load('x.pt')\n", False),
    ("class Net(Module): pass\n", False),  # no torch at all
])
def test_wants_is_a_cheap_text_test(text, wanted):
    assert runner.wants("m.py", text, Config(), Opts()) is wanted


def test_wants_model_flag_and_declarations(tmp_path):
    class WithModel:
        model = "Net"

    assert runner.wants("m.py", "def Net(): ...\n", Config(), WithModel())
    assert not runner.wants("m.py", "import torch\nclass Other(torch.nn.Module): ...\n", Config(), WithModel())
    cfg = Config(models=[{"target": "pkg/m.py:build"}], root=tmp_path)
    assert runner.wants(str(tmp_path / "pkg" / "m.py"), "x = 1\n", cfg, Opts())
    assert runner.declared_for(str(tmp_path / "pkg" / "m.py"), cfg) == [{"target": "pkg/m.py:build"}]
    assert runner.declared_for(str(tmp_path / "other.py"), cfg) == []


def test_missing_torch_is_one_note(monkeypatch):
    monkeypatch.setattr(runner, "torch_available", lambda: False)
    res = runner.run_dynamic(["a.py", "b.py"], {}, Config(), engine.Options(), registry.select(["NN2"]))
    assert res.notes == [runner.TORCH_MISSING] and not res.diagnostics and not res.errors


def _child(tmp_path: Path, path: str = "m.py") -> runner.Child:
    class Proc:
        pid = 0
        returncode = -11

    return runner.Child(path=path, proc=Proc(), folder=str(tmp_path), started=0.0, timeout=5.0, memory_limit=1 << 30)


def test_replies_survive_stray_and_truncated_lines(tmp_path):
    diag = {"path": "m.py", "line": 3, "column": 1, "code": "NN202", "name": "dead-submodule", "severity": "warning",
            "message": "m", "pass": "graph"}
    (tmp_path / "out.jsonl").write_text("\n".join([
        "some user print that reached the wrong stream",
        json.dumps({"event": "step", "step": "forward", "model": "Net", "line": 7}),
        json.dumps({"event": "diagnostic", "diagnostic": diag}),
        '{"event": "diagnostic", "diagno',  # cut short by SIGKILL
    ]))
    (tmp_path / "fault.txt").write_text(textwrap.dedent(f"""\
        Fatal Python error: Segmentation fault

        Current thread 0x00007f (most recent call first):
          File "/usr/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1739 in _call_impl
          File "{os.path.realpath(tmp_path / 'm.py')}", line 12 in forward
          File "{os.path.realpath(tmp_path / 'm.py')}", line 30 in <module>
        """))
    result = runner.DynamicResult()
    child = _child(tmp_path, str(tmp_path / "m.py"))
    runner.finish_child(child, result, registry.all_rules(), "x\n" * 11 + "        boom()\n")
    codes = [(d.code, d.line) for d in result.diagnostics]
    assert codes == [("NN202", 3), ("NN005", 12)]
    nn005 = result.diagnostics[1]
    assert "segmentation fault" in nn005.message and "step 'forward' of model Net" in nn005.message
    assert nn005.column == 9 and nn005.evidence["reason"] == "signal"


def test_memory_helpers():
    assert runner.tree_rss(os.getpid()) > 10 << 20
    assert runner.default_memory_limit() >= 1 << 30


def _codes_by_file(result) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for d in result.diagnostics:
        out.setdefault(Path(d.path).name, []).append((d.code, d.line))
    return out


@pytest.mark.slow
def test_hostile_user_code_is_reported_in_bounded_time():
    """Each hostile file ends the way its own code makes it end: an exception, a segfault,
    an exit, the memory limit (the memory hog grows 256 MiB per step, forever) and a model
    whose prints do not corrupt the protocol. The hang is left out (its own test below), so
    this run's time limit can be long: none of these files meets it on any machine, however
    loaded, and the memory hog meets its memory limit before its time limit."""
    cfg = config.load(HOSTILE / "pyproject.toml")  # timeout 10 s, memory limit 1500 MB
    assert cfg.timeout == 10 and cfg.memory_limit_mb == 1500
    cfg.timeout = 600
    files = sorted(str(p) for p in HOSTILE.glob("*.py") if p.name != "forever.py")
    result = engine.lint(files, cfg, engine.Options(jobs=2), registry.select(["NN0", "NN2"]))
    assert not result.errors, result.errors
    assert _codes_by_file(result) == {
        "import_raises.py": [("NN003", 4)],
        "segfault.py": [("NN005", 14)],
        "memory_hog.py": [("NN005", 14)],
        "exits.py": [("NN005", 7)],
    }
    msgs = {Path(d.path).name: d for d in result.diagnostics}
    assert "ValueError: invalid literal for int()" in msgs["import_raises.py"].message
    assert "segmentation fault (SIGSEGV) in step 'forward' of model Crasher" in msgs["segfault.py"].message
    assert "memory limit of 1.5 GiB" in msgs["memory_hog.py"].message
    assert msgs["memory_hog.py"].evidence["reason"] == "memory"
    assert "exited with status 0" in msgs["exits.py"].message
    assert result.models == 1  # noisy.py: its prints did not corrupt the protocol


@pytest.mark.slow
def test_hostile_hang_is_cut_at_the_time_limit():
    """A forward that never returns is killed at the configured time limit and named at its
    line. What is asserted is the runner's own record (killed for the time limit, which
    limit, in which step), not the wall clock: a loaded machine may take longer to get there
    (import, build and trace count against the limit too), never shorter."""
    cfg = config.load(HOSTILE / "pyproject.toml")
    cfg.timeout = 30  # the forward is reached well within it, however loaded the machine
    started = time.monotonic()
    result = engine.lint([str(HOSTILE / "forever.py")], cfg, engine.Options(jobs=1), registry.select(["NN0", "NN2"]))
    elapsed = time.monotonic() - started
    assert not result.errors, result.errors
    assert _codes_by_file(result) == {"forever.py": [("NN005", 12)]}
    d = result.diagnostics[0]
    assert "time limit of 30 s in step 'forward' of model Refiner" in d.message
    assert d.evidence == {"reason": "timeout", "timeout_s": 30.0, "step": "forward"}
    # the run ends once the child is killed (no hang): a bound for a broken kill, not a timing
    assert cfg.timeout <= elapsed < cfg.timeout + 300


PROJECT_PYPROJECT = """
[tool.nnlint]
select = ["NN0", "NN2"]

[[tool.nnlint.models]]
target = "models/factory.py:make_mlp"
kwargs = {width = 12}
inputs = [{shape = [4, 12]}]

[[tool.nnlint.models]]
target = "models/broken.py:Broken"
"""


@pytest.mark.slow
def test_declarations_pyproject_and_cli_flags(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(PROJECT_PYPROJECT)
    models = tmp_path / "models"
    models.mkdir()
    (models / "factory.py").write_text(textwrap.dedent("""\
        import torch.nn as nn


        def make_mlp(width):
            return nn.Sequential(nn.Linear(width, 8), nn.Linear(8, 2))
        """))
    (models / "broken.py").write_text(textwrap.dedent("""\
        import torch.nn as nn


        class Broken(nn.Module):
            def __init__(self):
                super().__init__()
                raise RuntimeError("checkpoint not found")

            def forward(self, x):
                return x
        """))
    (tmp_path / "needs_args.py").write_text(textwrap.dedent("""\
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.a = nn.Linear(n, n)
                self.b = nn.Linear(n, 1)

            def forward(self, x):
                return self.b(self.a(x))
        """))
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(["models", "--format", "json", "-j", "2"], stdout=out, stderr=err)
    report = json.loads(out.getvalue())
    got = sorted((d["path"], d["line"], d["code"]) for d in report["diagnostics"])
    assert got == [("models/broken.py", 7, "NN005"), ("models/factory.py", 5, "NN204")], err.getvalue()
    broken = next(d for d in report["diagnostics"] if d["code"] == "NN005")
    assert "building Broken failed: RuntimeError: checkpoint not found" in broken["message"]
    assert rc == 1
    out = io.StringIO()
    rc = cli.main(["needs_args.py", "--isolated", "--select", "NN2", "--model", "Net", "--kwargs", '{"n": 6}',
                   "--input-shape", "4,6", "--format", "json"], stdout=out, stderr=io.StringIO())
    report = json.loads(out.getvalue())
    assert [(d["code"], d["line"], d["model"]) for d in report["diagnostics"]] == [("NN204", 11, "Net")]
    assert report["summary"]["models"] == 1


@pytest.mark.slow
def test_worker_protocol_keeps_user_stdout_out_of_the_replies(tmp_path):
    path = tmp_path / "chatty.py"
    # a class body runs when the file is imported (module-level statements of a script do not)
    path.write_text("import os, torch\nclass Net(torch.nn.Module):\n    print('{\"event\": \"done\"}')\n"
                    "    os.write(1, b'raw fd write\\n')\n    def forward(self, x):\n        return x\n")
    req = {"path": str(path), "codes": ["NN002", "NN003"], "batch_size": 8}
    proc = subprocess.run([sys.executable, "-m", "nnlint.passes.worker"], input=json.dumps(req).encode(),
                          capture_output=True, timeout=120)
    replies = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [r["event"] for r in replies][-1] == "done" and all(r["event"] != "note" for r in replies)
    assert replies[-1]["models"] == 0  # Net has no layer: NN002 says how to declare its input
    assert any(r["event"] == "diagnostic" and r["diagnostic"]["code"] == "NN002" for r in replies)
    assert b"raw fd write" in proc.stderr and re.search(rb'\{"event": "done"\}', proc.stderr)
