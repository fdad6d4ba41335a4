"""The warm worker against one fresh process per file, in the same run (issue 9).

1. Many files: ``nnlint --no-cache --format json -j J`` over the shipped small model files
   (fixtures/seed and fixtures/probe, at least 30 that the dynamic passes run on), once
   with ``NNLINT_WARM_WORKER=0`` (a fresh ``python -m nnlint.passes.worker`` per file) and
   once with the warm worker (one zygote imports torch, one fork per file), interleaved
   ``--repeat`` times. Per-file cost = the run's wall time / files, and its CPU time (the
   nnlint process and all its descendants: the steadier figure on a shared machine) / files.
   Target: fresh / warm >= 4x.
2. One file: ``nnlint --no-cache FILE`` (warm worker, the default) against the floor, a bare
   ``python -c "import torch; <one tiny forward+backward>"``. Target: <= 1.2x.

Both runs must find the same diagnostics (checked). A script that prints figures, never a test.

    python benchmarks/warm_worker.py                # -j 2, --repeat 1
    python benchmarks/warm_worker.py -j 4 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NNLINT = [sys.executable, "-m", "nnlint"]
FLOOR = ("import torch; m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), "
         "torch.nn.Linear(8 * 30 * 30, 10)); m(torch.randn(8, 3, 32, 32)).sum().backward()")


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall s, CPU s of the process and every descendant it waited for, result)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def files() -> list[str]:
    out = sorted(str(p.relative_to(ROOT)) for d in ("fixtures/seed", "fixtures/probe") for p in (ROOT / d).glob("*.py"))
    return [f for f in out if not Path(f).name.startswith("_")]


def findings(proc: subprocess.CompletedProcess) -> tuple[list, int]:
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(f"nnlint failed ({proc.returncode}): {proc.stderr[-2000:]}")
    diags = sorted((d["path"], d["line"], d["code"]) for d in data["diagnostics"])
    return diags, data["summary"]["models"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    base = dict(os.environ, NNLINT_NO_CACHE="1")
    fresh_env = dict(base, NNLINT_WARM_WORKER="0")
    warm_env = dict(base, NNLINT_WARM_WORKER="1")
    targets = files()
    n = len(targets)
    cmd = [*NNLINT, "--no-cache", "--format", "json", "-j", str(args.jobs), *targets]
    print(f"{n} files (fixtures/seed + fixtures/probe), -j {args.jobs}, {os.cpu_count()} CPUs, torch run in "
          f"{sys.executable}")
    results: dict[str, list[tuple[float, float]]] = {"fresh": [], "warm": []}
    seen = {}
    for i in range(args.repeat):
        for mode, env in (("fresh", fresh_env), ("warm", warm_env)) if i % 2 == 0 else \
                (("warm", warm_env), ("fresh", fresh_env)):
            wall, cpu, proc = timed(cmd, env)
            seen[mode] = findings(proc)
            results[mode].append((wall, cpu))
            print(f"  run {i + 1} {mode:5}: {wall:6.1f} s wall, {cpu:6.1f} s CPU, {seen[mode][1]} models")
    if seen["fresh"] != seen["warm"]:
        a, b = set(seen["fresh"][0]), set(seen["warm"][0])
        print(f"  DIFFERENT FINDINGS: only fresh {sorted(a - b)[:5]}, only warm {sorted(b - a)[:5]}")
    else:
        print(f"  same findings in both modes ({len(seen['warm'][0])} diagnostics, {seen['warm'][1]} models)")
    med = {m: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r)) for m, r in results.items()}
    print(f"\n{'mode':<28}{'per file (wall)':>16}{'per file (CPU)':>16}")
    print(f"{'fresh process per file':<28}{med['fresh'][0] / n:>14.2f} s{med['fresh'][1] / n:>14.2f} s")
    print(f"{'warm worker (zygote+fork)':<28}{med['warm'][0] / n:>14.2f} s{med['warm'][1] / n:>14.2f} s")
    print(f"{'ratio fresh / warm':<28}{med['fresh'][0] / med['warm'][0]:>15.1f}x{med['fresh'][1] / med['warm'][1]:>15.1f}x"
          "   (target >= 4x)")

    one = "fixtures/seed/copy_paste_conv.py"
    single: list[tuple[float, float]] = []
    floor: list[tuple[float, float]] = []
    for _ in range(max(3, args.repeat)):
        wall, cpu, _p = timed([sys.executable, "-c", FLOOR], base)
        floor.append((wall, cpu))
        wall, cpu, _p = timed([*NNLINT, "--no-cache", one], warm_env)
        single.append((wall, cpu))
    fw, fc = statistics.median(w for w, _ in floor), statistics.median(c for _, c in floor)
    sw, sc = statistics.median(w for w, _ in single), statistics.median(c for _, c in single)
    print(f"\none file ({one}), median of {len(single)}:")
    print(f"  bare python -c 'import torch; tiny fwd+bwd': {fw:5.2f} s wall, {fc:5.2f} s CPU")
    print(f"  nnlint (warm worker)                       : {sw:5.2f} s wall, {sc:5.2f} s CPU")
    print(f"  ratio                                      : {sw / fw:5.2f}x wall, {sc / fc:5.2f}x CPU   (target <= 1.2x)")


if __name__ == "__main__":
    main()
