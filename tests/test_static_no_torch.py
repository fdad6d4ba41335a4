"""``nnlint --static`` never imports torch (pre-commit speed, and the nnlint-static hook's
environment has no torch at all). Checked in a fresh interpreter, through ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.test_cli import BUGGY

PROBE = textwrap.dedent(
    """\
    import io, json, sys
    from nnlint.cli import main
    out, err = io.StringIO(), io.StringIO()
    code = main(sys.argv[1:], stdout=out, stderr=err)
    heavy = sorted(m for m in ("torch", "numpy", "networkx") if m in sys.modules)
    print(json.dumps({"code": code, "heavy": heavy, "out": out.getvalue(), "err": err.getvalue()}))
    """
)

TRAINING_SCRIPT = textwrap.dedent(
    """\
    import torch
    from torch.utils.data import DataLoader

    def train(model, loader: DataLoader, opt):
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
    """
)
NO_MODULE = "import os\n\n\ndef helper(path):\n    return os.path.basename(path)\n"


def probe(tmp_path: Path, *argv: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def files(tmp_path) -> Path:
    (tmp_path / "model.py").write_text(BUGGY)
    (tmp_path / "train.py").write_text(TRAINING_SCRIPT)
    (tmp_path / "pkg").mkdir()
    for i in range(5):
        (tmp_path / "pkg" / f"m{i}.py").write_text(BUGGY)
    (tmp_path / "pkg" / "broken.py").write_text("import torch\ndef f(:\n")
    (tmp_path / "util.py").write_text(NO_MODULE)
    return tmp_path


def test_static_on_a_model_file(files):
    res = probe(files, "--static", "model.py")
    assert res["code"] == 1 and "NN109" in res["out"], res
    assert res["heavy"] == []


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_static_on_a_folder(files, jobs):
    res = probe(files, "--static", "-j", jobs, ".")
    assert res["code"] == 1, res
    assert res["out"].count("NN109") == 6 and "NN001" in res["out"]
    assert res["heavy"] == []


@pytest.mark.parametrize("fmt", ["json", "sarif", "github"])
def test_static_with_every_reporter(files, fmt):
    assert probe(files, "--static", "--format", fmt, "model.py")["heavy"] == []


def test_rules_listing_and_docs_do_not_import_torch(tmp_path):
    assert probe(tmp_path, "rules")["heavy"] == []
    assert probe(tmp_path, "rule", "NN109")["heavy"] == []


def test_full_run_on_a_file_without_a_module_stays_torch_free(files):
    """No nn.Module, nothing for the graph and probe passes: the parent process must not
    pay for `import torch` (user code, when there is some, runs in a child process)."""
    res = probe(files, "util.py")
    assert res["code"] == 0, res
    assert res["heavy"] == []


def test_importing_every_rule_module_stays_torch_free(tmp_path):
    code = (
        "import sys; from nnlint import registry; rules = registry.all_rules(); "
        "print(len(rules), 'torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    count, has_torch = proc.stdout.split()
    assert int(count) > 0
    assert has_torch == "False", "a rule module imports torch at import time: import it inside check() instead"


def test_without_torch_the_dynamic_passes_say_so_in_one_line(files):
    """In an environment without torch (the nnlint-static hook's, or a plain `pip install
    nnlint`), a full run still gives the source findings and one line about the rest."""
    proc = subprocess.run([sys.executable, "-c", "import sys; sys.modules['torch'] = None\n" + PROBE, "model.py"],
                          cwd=files, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert res["code"] == 1 and "NN109" in res["out"], res
    assert res["err"].count("torch is not installed") == 1 and len(res["err"].strip().splitlines()) == 1, res["err"]
    assert "Traceback" not in res["err"]
