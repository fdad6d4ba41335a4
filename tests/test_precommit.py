"""The real pre-commit running nnlint's hooks from (a snapshot of) this checkout.

pre-commit builds nnlint into an isolated virtualenv with only its required dependencies
from PyPI, then runs the hook on a temporary git repository. ``pre-commit try-repo`` always
builds that environment afresh in a temporary store (it ignores PRE_COMMIT_HOME), so the
test that inspects the environment uses ``pre-commit run`` with a config naming the same
repository instead; its environment is cached in one PRE_COMMIT_HOME for the session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests._repo_snapshot import snapshot

pytestmark = pytest.mark.slow

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
CLEAN = BUGGY.replace("p=0.5)", "p=0.5, training=self.training)")
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@nnlint.invalid", "-c", "commit.gpgsign=false",
       "-c", "init.defaultBranch=main"]


def pre_commit_exe() -> str:
    exe = Path(sys.executable).parent / "pre-commit"
    if exe.exists():
        return str(exe)
    found = shutil.which("pre-commit")
    if found is None:
        pytest.skip("pre-commit is not installed (pip install -e .[dev])")
    return found


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    return snapshot(tmp_path_factory.mktemp("hook") / "nnlint", commit=True)


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def user_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir()
    subprocess.run([*GIT, "init", "-q"], cwd=path, check=True)
    for name, body in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(body)
    subprocess.run([*GIT, "add", "-A"], cwd=path, check=True)
    return path


def _env(home: Path, extra_path: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRE_COMMIT", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(PRE_COMMIT_HOME=str(home), NO_COLOR="1")
    if extra_path:
        env["PATH"] = extra_path + os.pathsep + env.get("PATH", "")
    return env


def try_repo(repo: Path, hook_repo: Path, home: Path, hook: str = "nnlint-static",
             extra_path: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [pre_commit_exe(), "try-repo", str(hook_repo), hook, "--all-files", "--color", "never"],
        cwd=repo, env=_env(home, extra_path), capture_output=True, text=True, timeout=600,
    )


def run_configured(repo: Path, hook_repo: Path, home: Path) -> subprocess.CompletedProcess:
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=hook_repo, capture_output=True, text=True,
                         check=True).stdout.strip()
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {hook_repo}\n  rev: {rev}\n  hooks:\n  - id: nnlint-static\n"
    )
    subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True)
    return subprocess.run(
        [pre_commit_exe(), "run", "--all-files", "--color", "never"],
        cwd=repo, env=_env(home), capture_output=True, text=True, timeout=600,
    )


def test_hook_fails_on_a_buggy_file(tmp_path, hook_repo, pre_commit_home):
    repo = user_repo(tmp_path / "user", {"model.py": BUGGY, "notes.txt": "F.dropout(x)\n"})
    proc = try_repo(repo, hook_repo, pre_commit_home)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "nnlint (static)" in output and "Failed" in output
    assert "model.py:11:13: NN109 error: F.dropout without training=" in output, output
    assert "notes.txt" not in output.split("nnlint (static)", 1)[1]


def test_hook_passes_on_a_clean_file(tmp_path, hook_repo, pre_commit_home):
    repo = user_repo(tmp_path / "user", {"pkg/model.py": CLEAN})
    proc = try_repo(repo, hook_repo, pre_commit_home)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Passed" in output


def test_hook_environment_has_no_torch(tmp_path, hook_repo, pre_commit_home):
    repo = user_repo(tmp_path / "user", {"m.py": BUGGY})
    proc = run_configured(repo, hook_repo, pre_commit_home)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "m.py:11:13: NN109" in output, output
    pythons = sorted(pre_commit_home.glob("repo*/py_env-*/bin/python"))
    assert pythons, f"no hook virtualenv under {pre_commit_home}"
    for python in pythons:
        probe = subprocess.run(
            [str(python), "-c",
             "import importlib.util as u, sys; import nnlint, libcst, rich; "
             "print(u.find_spec('torch') is None, 'torch' in sys.modules, u.find_spec('nnlint.rules.source') is not None)"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,  # not the checkout: import the installed nnlint
        )
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.split() == ["True", "False", "True"], f"torch in {python.parent.parent}: {probe.stdout}"


def test_system_hook_runs_the_full_command(tmp_path, hook_repo, pre_commit_home):
    """The `nnlint` hook is language: system: it runs whatever `nnlint` is on PATH (here
    the one installed in this test's environment, torch included)."""
    repo = user_repo(tmp_path / "user", {"model.py": BUGGY})
    proc = try_repo(repo, hook_repo, pre_commit_home, hook="nnlint", extra_path=str(Path(sys.executable).parent))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "model.py:11:13: NN109" in output
