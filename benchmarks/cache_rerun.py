"""The result cache: a second run on an unchanged tree against the first (issue 9, target
>= 10x), then after editing one file that another imports.

Copies fixtures/seed and fixtures/probe into a temporary project (the cache lands there,
never in this checkout), runs ``nnlint --format json -j J`` three times: cold (empty
cache), warm (unchanged), and after touching one file. Prints wall and CPU time (the nnlint
process and every descendant) and checks that the findings are the same.
A script that prints figures, never a test.

    python benchmarks/cache_rerun.py [-j 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, list]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(f"nnlint failed ({proc.returncode}): {proc.stderr[-2000:]}")
    diags = sorted((d["path"], d["line"], d["code"], d["message"]) for d in data["diagnostics"])
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), diags


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-j", "--jobs", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nnlint-cache-bench-"))
    try:
        for d in ("seed", "probe"):
            shutil.copytree(ROOT / "fixtures" / d, work / d)
        (work / "pyproject.toml").write_text("[tool.nnlint]\n")
        files = sorted(str(p.relative_to(work)) for p in work.rglob("*.py"))
        env = dict(os.environ)
        env.pop("NNLINT_NO_CACHE", None)
        env.pop("NNLINT_CACHE_DIR", None)
        cmd = [sys.executable, "-m", "nnlint", "--format", "json", "-j", str(args.jobs), "seed", "probe"]
        cold = run(cmd, work, env)
        warm = run(cmd, work, env)
        target = work / files[0]
        target.write_text(target.read_text() + "\n# edited\n")
        one = run(cmd, work, env)
        print(f"{len(files)} files, -j {args.jobs}, cache in {work / '.nnlint_cache'}")
        print(f"  first run (empty cache)     : {cold[0]:6.2f} s wall, {cold[1]:6.2f} s CPU")
        print(f"  second run (unchanged tree) : {warm[0]:6.2f} s wall, {warm[1]:6.2f} s CPU")
        print(f"  one file edited             : {one[0]:6.2f} s wall, {one[1]:6.2f} s CPU")
        print(f"  ratio first / second        : {cold[0] / warm[0]:6.1f}x wall, {cold[1] / max(warm[1], 1e-3):6.1f}x CPU"
              "   (target >= 10x)")
        print(f"  same findings: {cold[2] == warm[2]} ({len(cold[2])} diagnostics)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
