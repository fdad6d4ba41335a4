"""The shipped fixtures are the product's acceptance test: every planted bug is reported
at its line (marked in the file with ``# expect: CODE[, CODE]``) and nothing else is, in
particular nothing on the clean twins (``*_fixed.py``)."""

from __future__ import annotations

import io
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from nnlint.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXPECT_RE = re.compile(r"#\s*expect:\s*(NN\d{3}(?:\s*,\s*NN\d{3})*)")
#: what `--static` reports: the source rules and NN001 (a file that does not parse)
STATIC_PREFIXES = ("NN001", "NN1", "NN4")


def expected_markers(folder: Path) -> dict[tuple[str, int], set[str]]:
    out: dict[tuple[str, int], set[str]] = defaultdict(set)
    for path in sorted(folder.rglob("*.py")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            m = EXPECT_RE.search(line)
            if m:
                rel = path.relative_to(ROOT).as_posix()
                out[(rel, lineno)] |= {c.strip() for c in m.group(1).split(",")}
    return out


def run_json(args: list[str]) -> tuple[int, dict]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--format", "json", *args], stdout=out, stderr=err)
    assert code in (0, 1), err.getvalue()
    return code, json.loads(out.getvalue())


def reported(report: dict, codes_filter=lambda c: True) -> dict[tuple[str, int], set[str]]:
    out: dict[tuple[str, int], set[str]] = defaultdict(set)
    for d in report["diagnostics"]:
        if d["severity"] != "info" and codes_filter(d["code"]):
            out[(Path(d["path"]).as_posix(), d["line"])].add(d["code"])
    return out


def test_seed_fixtures_static(monkeypatch):
    monkeypatch.chdir(ROOT)
    _, report = run_json(["--static", "fixtures/seed"])
    want = {k: {c for c in v if c.startswith(STATIC_PREFIXES)} for k, v in expected_markers(ROOT / "fixtures/seed").items()}
    want = {k: v for k, v in want.items() if v}
    got = reported(report)
    missing = {k: v - got.get(k, set()) for k, v in want.items() if v - got.get(k, set())}
    extra = {k: v - want.get(k, set()) for k, v in got.items() if v - want.get(k, set())}
    assert not missing, f"planted bugs not reported: {missing}"
    assert not extra, f"unexpected findings (false positives): {extra}"
    twins = [p for p in (ROOT / "fixtures/seed").glob("*_fixed.py")]
    assert len(twins) == 11
    assert not [k for k in got if k[0].endswith("_fixed.py")]


@pytest.mark.slow
def test_all_fixtures_all_passes(monkeypatch):
    """`nnlint fixtures/` as a user runs it (every pass, fixtures/pyproject.toml's limits):
    every marked finding at its line, infos included, and nothing unmarked: no finding on a
    twin or clean model, the hostile files cut off within the time limit.

    The models are linted with a generous time limit (a loaded machine can take more than
    30 s for nanoGPT's probe) and the hostile folder with fixtures/pyproject.toml's own, so
    the result does not depend on the machine's speed."""
    monkeypatch.chdir(ROOT)
    folders = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "fixtures").iterdir()
                     if p.is_dir() and p.name != "hostile")
    code, report = run_json([*folders, "--timeout", "600"])
    hostile_code, hostile = run_json(["fixtures/hostile", "--config", "fixtures/pyproject.toml"])
    report["diagnostics"] += hostile["diagnostics"]
    want = {(path, line, c) for (path, line), codes in expected_markers(ROOT / "fixtures").items() for c in codes}
    got = {(Path(d["path"]).as_posix(), d["line"], d["code"]) for d in report["diagnostics"]}
    details = {(Path(d["path"]).as_posix(), d["line"], d["code"]): d["message"] for d in report["diagnostics"]}
    assert not want - got, f"planted bugs not reported: {sorted(want - got)}"
    assert not got - want, "unexpected findings: " + "; ".join(f"{k}: {details[k]}" for k in sorted(got - want))
    assert code == 1 and hostile_code == 1
    clean = [p for p in (ROOT / "fixtures").rglob("*.py") if p.stem.endswith("_fixed") or p.stem.startswith("clean_")]
    assert len(clean) >= 8 + 6
    # the hang is cut at fixtures/pyproject.toml's limit, not the 60 s default
    assert "time limit of 30 s" in details[("fixtures/hostile/forever.py", 12, "NN005")]
