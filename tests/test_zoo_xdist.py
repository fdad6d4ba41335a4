"""Scaling past one process (README "Linting a model zoo"): one pytest test per model
configuration with the Python API, spread over workers by pytest-xdist (``-n 2``), results
as JUnit XML and one JSON file per configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("xdist")
pytestmark = pytest.mark.slow

ZOO = '''
import json
import os

import pytest
import torch
from torch import nn

import nnlint

# the zoo: name -> constructor arguments (thousands of these in real life, read from a registry)
CONFIGS = {
    "mlp-4x16": dict(d_in=4, hidden=16),
    "mlp-8x32": dict(d_in=8, hidden=32),
    "mlp-16x64": dict(d_in=16, hidden=64),
    "mlp-8x32-copy-paste": dict(d_in=8, hidden=32, copy_paste=True),
}


class MLP(nn.Module):
    def __init__(self, d_in, hidden, copy_paste=False):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc1b = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, 3)
        self.copy_paste = copy_paste

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        if self.copy_paste:
            h = torch.relu(self.fc1b(x))  # the bug: fc1's output is thrown away
        else:
            h = h + torch.relu(self.fc1b(x))
        return self.fc2(h)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config(name):
    cfg = CONFIGS[name]
    report = nnlint.check(MLP(**cfg), torch.randn(8, cfg["d_in"]))
    out = os.environ.get("ZOO_RESULTS")
    if out:
        with open(os.path.join(out, f"{name}.json"), "w") as fh:
            json.dump({"config": name, "worker": os.environ.get("PYTEST_XDIST_WORKER"),
                       "diagnostics": [d.to_dict() for d in report]}, fh)
    report.assert_clean()
'''


def test_a_model_zoo_under_pytest_xdist(tmp_path):
    (tmp_path / "test_zoo.py").write_text(ZOO)
    results = tmp_path / "results"
    results.mkdir()
    junit = tmp_path / "zoo.xml"
    env = dict(os.environ, ZOO_RESULTS=str(results))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         f"--junitxml={junit}", "test_zoo.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]  # one configuration has the bug
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert int(suite.get("tests")) == 4 and int(suite.get("failures")) == 1, proc.stdout[-3000:]
    failed = [tc.get("name") for tc in suite.iter("testcase") if tc.find("failure") is not None]
    assert failed == ["test_config[mlp-8x32-copy-paste]"]
    data = [json.loads(p.read_text()) for p in results.glob("*.json")]
    assert all(str(d["worker"]).startswith("gw") for d in data)  # ran in xdist workers
    found = {p.stem: [d["code"] for d in json.loads(p.read_text())["diagnostics"]] for p in results.glob("*.json")}
    assert sorted(found) == ["mlp-16x64", "mlp-4x16", "mlp-8x32", "mlp-8x32-copy-paste"]
    assert found["mlp-8x32-copy-paste"] and not found["mlp-4x16"] and not found["mlp-8x32"]
