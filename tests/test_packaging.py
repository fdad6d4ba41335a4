"""Packaging: rules/ ships as nnlint.rules, never as a top-level ``rules`` package.

The wheel is built from a snapshot of the working tree (so the build writes nothing into
the checkout) with ``python -m build --wheel --no-isolation``.
"""

from __future__ import annotations

import email
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests._repo_snapshot import ROOT, snapshot

RULES_DIR = ROOT / "rules"


def rule_packages() -> list[str]:
    """Every folder under rules/ that is a package, as nnlint.rules.<...>."""
    out = []
    for init in sorted(RULES_DIR.rglob("__init__.py")):
        rel = init.parent.relative_to(RULES_DIR)
        if "__pycache__" in rel.parts:
            continue
        out.append(".".join(("nnlint", "rules", *rel.parts)))
    return out


def rule_modules() -> list[str]:
    return sorted(
        "nnlint/rules/" + p.relative_to(RULES_DIR).as_posix()
        for p in RULES_DIR.rglob("*.py")
        if "__pycache__" not in p.parts
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = snapshot(tmp_path_factory.mktemp("src") / "nnlint")
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(src)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheels = list(dist.glob("nnlint-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def names(wheel) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def test_every_rule_package_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"nnlint.rules": "rules"}
    missing = sorted(set(rule_packages()) - set(config["packages"]))
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_wheel_holds_every_rule_under_nnlint_rules(names):
    assert "nnlint/rules/__init__.py" in names
    for pkg in rule_packages():
        assert pkg.replace(".", "/") + "/__init__.py" in names, pkg
    missing = sorted(set(rule_modules()) - set(names))
    assert not missing, f"rule files missing from the wheel: {missing}"
    for required in ("nnlint/__init__.py", "nnlint/cli.py", "nnlint/engine.py", "nnlint/passes/source.py",
                     "nnlint/reporters/sarif.py", "nnlint/contexts/source.py", "nnlint/analysis/syntax.py"):
        assert required in names


def test_wheel_has_no_top_level_rules_or_tests(names):
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"nnlint", next(t for t in top if t.endswith(".dist-info"))}, top


def test_wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as zf:
        info = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(zf.read(info))
        entry_points = zf.read(info.replace("METADATA", "entry_points.txt")).decode()
    requires = meta.get_all("Requires-Dist") or []
    unconditional = [r for r in requires if "extra ==" not in r]
    assert sorted(r.split(">")[0].split("=")[0].split("<")[0].strip() for r in unconditional) == ["libcst", "rich"]
    assert any(r.startswith("torch") and 'extra == "torch"' in r for r in requires), requires
    assert "nnlint = nnlint.cli:main" in entry_points


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_import_rules_fails_outside_the_checkout(tmp_path):
    proc = _python("import rules", tmp_path)
    assert proc.returncode != 0 and "ModuleNotFoundError: No module named 'rules'" in proc.stderr, proc.stderr


def test_import_rules_fails_inside_the_checkout_with_a_hint():
    proc = _python("import rules", ROOT)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "import nnlint.rules instead" in proc.stderr, proc.stderr


def test_import_nnlint_rules_works_outside_the_checkout(tmp_path):
    proc = _python(
        "import nnlint.rules, nnlint.rules.source, nnlint.registry as r; print(len(r.all_rules()))", tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 0
