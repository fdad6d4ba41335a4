"""How fast is ``nnlint --static``? Compared with TorchFix on the same files, in one run.

    python benchmarks/static_speed.py [FOLDER ...] [--n 240] [-j JOBS] [--profile]

Generates (deterministically) a corpus of realistic model files into
benchmarks/.cache/corpus (see gen_corpus.py), adds any folders given, then lints them all
with ``nnlint --static`` and with TorchFix and prints files/s and lines/s for both, their
ratio, and nnlint's single-file cold start (``nnlint --static one.py``, median of several
runs). Targets (issue 2): nnlint >= 3x TorchFix's files/s; cold start < 0.5 s.

TorchFix pins libcst<1.6, so it lives in a virtualenv of its own,
benchmarks/.cache/torchfix-venv (created with ``pip install torchfix`` on first use), and
never beside nnlint. ``--profile`` adds where nnlint's source pass spends its time: per
phase (parse, index, positions), per rule, and the top functions under cProfile.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
sys.path.insert(0, str(HERE))

import gen_corpus  # noqa: E402

SKIP = {".git", ".venv", "venv", "__pycache__", "node_modules", ".tox", "build", "dist"}


def python_files(targets: list[Path]) -> list[Path]:
    out = []
    for t in targets:
        if t.is_file():
            out.append(t)
            continue
        for dirpath, dirnames, filenames in os.walk(t):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP and not d.endswith("venv"))
            out.extend(Path(dirpath, f) for f in sorted(filenames) if f.endswith(".py"))
    return out


def count_lines(files: list[Path]) -> int:
    return sum(f.read_bytes().count(b"\n") for f in files)


def nnlint_command() -> list[str]:
    exe = Path(sys.executable).parent / "nnlint"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("nnlint")
    return [found] if found else [sys.executable, "-m", "nnlint"]


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    return time.perf_counter() - start, proc


def ensure_torchfix(venv: Path) -> Path | None:
    exe = venv / "bin" / "torchfix"
    if exe.exists():
        return exe
    print(f"installing TorchFix into {venv} (its own venv: it pins libcst<1.6) ...", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [[base, "-m", "venv", str(venv)], [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "torchfix"]]
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"  could not install TorchFix ({' '.join(step[:3])} ...): {proc.stderr.strip()[-500:]}")
            return None
    return exe if exe.exists() else None


def run_nnlint(targets: list[Path], jobs: int, repeat: int = 1) -> dict:
    cmd = [*nnlint_command(), "--static", "--no-cache", "--isolated", "--exit-zero", "--format", "json", "-j", str(jobs),
           *map(str, targets)]
    times, doc = [], None
    for _ in range(repeat):
        wall, proc = timed(cmd)
        if proc.returncode != 0:
            raise SystemExit(f"nnlint failed ({proc.returncode}): {proc.stderr[-2000:]}")
        doc = json.loads(proc.stdout)
        times.append(wall)
    assert doc is not None
    findings: dict[str, int] = {}
    for d in doc["diagnostics"]:
        findings[d["code"]] = findings.get(d["code"], 0) + 1
    return {"wall": statistics.median(times), "times": times, "files": doc["summary"]["files"], "findings": findings}


def run_torchfix(exe: Path, targets: list[Path], jobs: int, repeat: int = 1) -> dict:
    cmd = [str(exe), "-j", str(jobs), *map(str, targets)]
    times, proc = [], None
    for _ in range(repeat):
        wall, proc = timed(cmd)
        times.append(wall)
    assert proc is not None
    tail = (proc.stdout + proc.stderr).strip().splitlines()
    checked = next((line for line in reversed(tail) if line.startswith("Finished checking")), "")
    files = int(checked.split()[2]) if checked else -1
    violations = sum(1 for line in proc.stdout.splitlines() if ": TOR" in line)
    return {"wall": statistics.median(times), "times": times, "files": files, "findings": violations,
            "rc": proc.returncode}


def cold_start(cmd: list[str], runs: int) -> float:
    return statistics.median(timed(cmd)[0] for _ in range(runs))


def profile(files: list[Path], top: int = 25) -> None:
    """In-process, serial: phases of the source pass, each rule, top functions."""
    import cProfile
    import pstats

    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    from nnlint import registry
    from nnlint.passes import source

    rules = [r() for r in registry.all_rules().values() if r.pass_ == "source"]
    texts = [f.read_text(encoding="utf-8") for f in files]
    lines = sum(t.count("\n") for t in texts)
    phase = {"ast.parse (for scale)": 0.0, "libcst parse": 0.0, "index walk (SourceContext)": 0.0,
             "positions (PositionProvider, all files)": 0.0}
    per_rule = {r.code: 0.0 for r in rules}
    for text in texts:
        t0 = time.perf_counter()
        compile(text, "f.py", "exec", flags=0x400)
        t1 = time.perf_counter()
        module = cst.parse_module(text)
        t2 = time.perf_counter()
        ctx = source.SourceContext("f.py", text, module)
        t3 = time.perf_counter()
        for rule in rules:
            a = time.perf_counter()
            try:
                list(rule.check(ctx))
            except Exception:  # timing only; crashes are the tests' business
                pass
            per_rule[rule.code] += time.perf_counter() - a
        t4 = time.perf_counter()
        MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        t5 = time.perf_counter()
        phase["ast.parse (for scale)"] += t1 - t0
        phase["libcst parse"] += t2 - t1
        phase["index walk (SourceContext)"] += t3 - t2
        phase["positions (PositionProvider, all files)"] += t5 - t4
    kloc = lines / 1000
    print(f"\nwhere the time goes ({len(files)} files, {lines} lines, serial, in-process), ms per 1,000 lines:")
    for name, t in phase.items():
        print(f"  {name:42s} {t / kloc * 1000:8.1f}")
    print(f"  {'all rules':42s} {sum(per_rule.values()) / kloc * 1000:8.1f}")
    for code, t in sorted(per_rule.items(), key=lambda kv: -kv[1]):
        if t / kloc * 1000 >= 0.5:
            print(f"    {code:40s} {t / kloc * 1000:8.1f}")
    prof = cProfile.Profile()
    prof.enable()
    for path, text in zip(files, texts):
        try:
            source.run(str(path), text, rules)
        except source.SyntaxIssue:
            pass
    prof.disable()
    print(f"\ncProfile of source.run over the same files (top {top} by cumulative time):")
    stats = pstats.Stats(prof, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", type=Path, help="more folders of real model code to include")
    ap.add_argument("--n", type=int, default=240, help="generated files (default 240)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="processes for both tools")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each tool over the corpus, interleaved (median)")
    ap.add_argument("--cold-runs", type=int, default=7, help="single-file runs for the cold-start median")
    ap.add_argument("--no-torchfix", action="store_true", help="skip TorchFix (no network, or just nnlint's figures)")
    ap.add_argument("--profile", action="store_true", help="also show where nnlint's time goes")
    args = ap.parse_args()

    corpus = CACHE / "corpus"
    generated = gen_corpus.generate(corpus, args.n, args.seed)
    targets = [corpus, *args.folders]
    files = python_files(targets)
    lines = count_lines(files)
    print(f"corpus: {len(files)} files, {lines} lines ({len(generated)} generated in {corpus.relative_to(HERE.parent)}"
          f"{', plus ' + ', '.join(map(str, args.folders)) if args.folders else ''}); {args.jobs} jobs; "
          f"{os.cpu_count()} CPUs")

    exe = None if args.no_torchfix else ensure_torchfix(CACHE / "torchfix-venv")
    # Interleaved (nnlint, TorchFix, nnlint, ...): on a shared machine the load drifts, and
    # paired runs see about the same load.
    nn_runs, tf_runs = [], []
    for _ in range(args.repeat):
        nn_runs.append(run_nnlint(targets, args.jobs, 1))
        if exe is not None:
            tf_runs.append(run_torchfix(exe, targets, args.jobs, 1))
    nn = dict(nn_runs[-1], times=[r["wall"] for r in nn_runs], wall=statistics.median(r["wall"] for r in nn_runs))
    rows = [("nnlint --static", nn["files"], nn["wall"], sum(nn["findings"].values()))]
    tf = None
    if tf_runs:
        tf = dict(tf_runs[-1], times=[r["wall"] for r in tf_runs], wall=statistics.median(r["wall"] for r in tf_runs))
        rows.append(("torchfix", tf["files"], tf["wall"], tf["findings"]))

    print(f"\n{'tool':18s} {'files':>6s} {'wall s':>8s} {'files/s':>9s} {'lines/s':>9s} {'findings':>9s}")
    for name, nfiles, wall, found in rows:
        print(f"{name:18s} {nfiles:6d} {wall:8.2f} {len(files) / wall:9.1f} {lines / wall:9.0f} {found:9d}")
    print(f"nnlint runs: {', '.join(f'{t:.2f}' for t in nn['times'])} s; findings by code: "
          + ", ".join(f"{c} {n}" for c, n in sorted(nn["findings"].items())))
    if tf is not None:
        print(f"TorchFix runs: {', '.join(f'{t:.2f}' for t in tf['times'])} s")
    from nnlint import registry

    n_rules = sum(1 for r in registry.all_rules().values() if r.pass_ == "source")
    if tf is not None:
        ratio = tf["wall"] / nn["wall"]
        paired = statistics.median(t / n for t, n in zip(tf["times"], nn["times"]))
        best = min(tf["times"]) / min(nn["times"])
        print(f"\nnnlint/TorchFix files/s ratio: {ratio:.2f}x of the medians, {paired:.2f}x median of paired runs, "
              f"{best:.2f}x of the fastest runs ({len(files) / min(nn['times']):.1f} vs "
              f"{len(files) / min(tf['times']):.1f} files/s)\n  ({n_rules} nnlint source rules vs TorchFix's defaults)  "
              f"target >= 3x: {'met' if ratio >= 3 else 'MISSED'}")
        if tf["files"] not in (-1, len(files)):
            print(f"  note: TorchFix reports checking {tf['files']} files, nnlint {nn['files']}")

    one = generated[len(generated) // 2]
    cold = cold_start([*nnlint_command(), "--static", "--no-cache", "--isolated", "--exit-zero", str(one)], args.cold_runs)
    print(f"nnlint cold start on one file ({one.name}, {count_lines([one])} lines): median {cold:.3f} s of "
          f"{args.cold_runs}  target < 0.5 s: {'met' if cold < 0.5 else 'MISSED'}")
    tiny = CACHE / "tiny.py"
    tiny.write_text("import torch.nn as nn\n\nlayer = nn.Linear(2, 2)\n")
    cold_tiny = cold_start([*nnlint_command(), "--static", "--no-cache", "--isolated", "--exit-zero", str(tiny)], args.cold_runs)
    print(f"nnlint cold start on a 3-line file (start-up cost alone): median {cold_tiny:.3f} s")
    if tf is not None:
        tf_cold = cold_start([str(CACHE / "torchfix-venv" / "bin" / "torchfix"), str(one)], max(3, args.cold_runs // 2))
        print(f"torchfix cold start on the same file: median {tf_cold:.3f} s")
    if args.profile:
        profile(python_files([corpus]))


if __name__ == "__main__":
    main()
