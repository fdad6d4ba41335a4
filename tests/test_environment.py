"""The environment nnlint runs in is not the user's bug: the child's private folders for the
usual cache writers (matplotlib), and NN007 for an import that failed because of the
environment (a package not installed where nnlint runs, a variable a launcher sets)."""

from __future__ import annotations

import io
import os
import textwrap
from pathlib import Path

import pytest

from nnlint import cli
from nnlint.passes import sandbox

pytest.importorskip("torch")


def _lint(tmp_path: Path, src: str, *extra: str) -> tuple[int, str, str]:
    path = tmp_path / "proj" / "train.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(src))
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main([str(path), "--isolated", "-v", *extra], stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def test_the_private_environment_points_every_writer_into_the_folder(tmp_path):
    env = sandbox.private_env(str(tmp_path))
    assert {"TMPDIR", "MPLCONFIGDIR"} <= set(env)
    assert all(v.startswith(str(tmp_path) + os.sep) for v in env.values())
    # torch hub and Hugging Face keep the user's folders: downloaded weights are read there
    assert not {"TORCH_HOME", "HF_HOME", "XDG_CACHE_HOME"} & set(env)


def test_importing_matplotlib_is_quiet_and_writes_nothing_in_home(tmp_path, monkeypatch):
    # time_sequence_prediction/train.py: `import matplotlib` tried ~/.config/matplotlib and
    # ~/.cache/matplotlib and printed two refusals
    pytest.importorskip("matplotlib")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NNLINT_WARM_WORKER", "0")  # the zygote's environment was fixed at its start
    rc, out, err = _lint(tmp_path, """
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                return self.fc(x)
    """)
    assert "refused while linting" not in err, err
    assert "checked Net" in err, err
    assert list(home.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "proj").iterdir()) == ["train.py"]
