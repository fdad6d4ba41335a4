"""A throwaway copy of this checkout, for tests that build or install it (wheel,
pre-commit). Building in the real checkout would write build/ and *.egg-info into a tree
other people are working in, and `pre-commit try-repo` only carries committed and staged
changes, not new files; a copy of the working tree as it is now has neither problem."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def working_tree_files(root: Path = ROOT) -> list[str]:
    """Tracked and untracked-but-not-ignored files, as git sees them."""
    proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                          cwd=root, capture_output=True, check=True)
    return sorted({f for f in proc.stdout.decode().split("\0") if f and (root / f).is_file()})


def snapshot(dest: Path, *, commit: bool = False, root: Path = ROOT) -> Path:
    """Copy the working tree into ``dest`` (a new folder); with ``commit``, make it a git
    repository with one commit holding those files."""
    dest.mkdir(parents=True)
    for rel in working_tree_files(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    if commit:
        git = ["git", "-c", "user.name=nnlint-tests", "-c", "user.email=tests@nnlint.invalid",
               "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]
        subprocess.run([*git, "init", "-q"], cwd=dest, check=True)
        subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
        subprocess.run([*git, "commit", "-q", "-m", "snapshot"], cwd=dest, check=True)
    return dest
