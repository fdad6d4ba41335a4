"""Precision on real-world styles (issue 11.7): tests/data/precision holds files written in
the styles of real PyTorch code (module-level training scripts that download data sets and
write checkpoints, GANs with two models and two losses, DQN and actor-critic heads,
autoencoders, RNN classifiers with module constants, factories, module-level Sequential and
transformers/torchvision models). Each is clean. One engine run over the folder, from an
empty working directory, must

- write nothing: not in the working directory, not beside the files, not in ``../data``;
- attempt no download (the child's guards would refuse it and say so in a note);
- report no error and no warning;
- find every model each file names in its header (``# models: ...`` checked,
  ``# nn002: ...`` reported with NN002 because it needs a value only the script computes).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from nnlint import cli

HERE = Path(__file__).resolve().parent
PRECISION = HERE / "data" / "precision"
HEADER = re.compile(r"^#\s*(models|nn002|either):\s*([^(\n]+)", re.M)


def expected() -> dict[str, dict[str, set[str]]]:
    out = {}
    for path in sorted(PRECISION.glob("*.py")):
        want = {"models": set(), "nn002": set(), "either": set()}
        for kind, names in HEADER.findall(path.read_text()):
            want[kind] |= {n.strip() for n in names.split(",") if n.strip()}
        out[path.name] = want
    return out


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_the_suite_has_at_least_30_files_each_naming_its_models():
    want = expected()
    assert len(want) >= 30
    assert all(w["models"] or w["nn002"] or w["either"] for w in want.values()), \
        [k for k, w in want.items() if not w["models"]]


@pytest.mark.slow
def test_precision_suite_is_clean_never_writes_or_downloads_and_finds_every_model(tmp_path, monkeypatch):
    # the files live two levels below an empty folder, as in a user's project, so that a
    # relative '../../data' of a script would land inside tmp_path, where we can see it
    project = tmp_path / "project" / "scripts"
    shutil.copytree(PRECISION, project)
    work = tmp_path / "cwd" / "sub"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = _snapshot(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main([str(project), "--isolated", "--format", "json", "-v", "-j", "2", "--timeout", "240"],
                  stdout=out, stderr=err)
    report = json.loads(out.getvalue())
    log = err.getvalue()
    assert _snapshot(tmp_path) == before, "nnlint wrote files"
    assert "refused while linting" not in log, log  # no download or outside write was even attempted
    bad = [(Path(d["path"]).name, d["line"], d["code"], d["message"][:160]) for d in report["diagnostics"]
           if d["severity"] in ("error", "warning")]
    assert not bad, bad
    assert rc == 0, log
    checked: dict[str, set[str]] = {}
    for line in log.splitlines():
        m = re.match(r"nnlint: (.+?):\d+: checked (\S+): ", line)
        if m:
            checked.setdefault(Path(m.group(1)).name, set()).add(m.group(2))
    nn002: dict[str, set[str]] = {}
    for d in report["diagnostics"]:
        if d["code"] == "NN002":
            nn002.setdefault(Path(d["path"]).name, set()).add(d.get("model") or "?")
    want = expected()
    for name, w in want.items():
        # `either`: a model whose guessed input may not fit (another helper's work): checked or NN002
        got_c, got_n = checked.get(name, set()), nn002.get(name, set())
        assert got_c - w["either"] == w["models"] and got_n - w["either"] == w["nn002"], (name, got_c, got_n)
        assert got_c | got_n == w["models"] | w["nn002"] | w["either"], (name, got_c, got_n)
        assert not got_c & got_n, name
    summary = report["summary"]
    found = sum(len(w["models"]) + len(w["nn002"]) + len(w["either"]) for w in want.values())
    assert summary["models"] + summary["models_not_checked"] == found
    assert os.listdir(work) == []
