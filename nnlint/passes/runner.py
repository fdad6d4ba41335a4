"""Parent side of the dynamic passes: decides which files need their code run, and runs
each in a child process (``python -m nnlint.passes.worker``) under a time limit and a
memory guard, so that a hang, crash or memory blow-up of user code becomes NN005 for that
file while the other files are reported normally.

Protocol, per child, in a private temporary folder:
- request: one JSON object on the child's stdin (path as given, selected codes, thresholds,
  settings, the model declarations that target the file);
- replies: JSON lines on the child's stdout, which is a file here (no pipe to fill up):
  ``step`` events (what it is doing: import, build, trace, forward, probe; which model),
  ``diagnostic`` events, ``note``/``error``/``model_missing`` and a final ``done``;
  the child moves user prints to stderr before importing user code;
- stderr: a file, whose tail explains a crash;
- ``fault.txt``: faulthandler's traceback on SIGSEGV/SIGABRT, and on SIGUSR1, which the
  parent sends a hung or oversized child just before killing it: it names the user's line.

Guards: wall-clock limit ``cfg.timeout`` per file (import + build + trace + probe); resident
memory polled from /proc (the child and its children) every 50 ms against
``cfg.memory_limit_mb`` (default: half of the machine's memory, at most 80% of what is
available at the start, shared between the children running side by side); the system's
available memory is watched too, so the largest child is killed before the kernel's OOM
killer picks a process at random. RLIMIT_AS is not used:
torch reserves address space far beyond what it touches (0.65 GB of address space for
0.23 GB resident just after ``import torch``, several GB with thread arenas), so an
address-space cap kills healthy runs or is too loose to protect anything. Children are
started in their own session and killed as a process group (SIGKILL), so grandchildren
(DataLoader workers) go too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nnlint.diagnostics import Diagnostic
from nnlint.passes import sandbox
from nnlint.passes.sizes import gb
from nnlint.passes.slow_model import slow_guess_message

if TYPE_CHECKING:
    from nnlint.passes.zygote import ForkedProc

TORCH_MISSING = "torch is not installed: graph and probe passes skipped (pip install 'nnlint[torch]', or use --static)"
POLL_S = 0.05
MODULE_CLASS = re.compile(
    r"^[ \t]*class[ \t]+\w+[ \t]*\(([^)]*\b(Module|LightningModule|Sequential|ModuleList|ModuleDict)\b[^)]*)\)",
    re.M,
)
ANY_CLASS_WITH_BASES = re.compile(r"^class[ \t]+\w+[ \t]*\(([^)]+)\)", re.M)
EXAMPLES_FN = re.compile(r"^def[ \t]+nnlint_examples[ \t]*\(", re.M)
#: a module-level model instance or a factory's return that is not a class of the file:
#: ``G = nn.Sequential(...)``, ``model = AutoModelForCausalLM.from_config(cfg)``, ``net = resnet18()``
MODULE_MODEL = re.compile(
    r"^(?:[A-Za-z_]\w*[ \t]*=|[ \t]+return)[ \t]*(?:[\w.]*\.)?(?:Sequential|from_config|\w+For[A-Z]\w*|"
    r"resnet\d+|vgg\d+\w*|vit_\w+|mobilenet\w*|efficientnet\w*|densenet\d+|create_model)[ \t]*\(",
    re.M,
)


@dataclass
class DynamicResult:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    models: int = 0
    models_not_checked: int = 0
    models_not_probed: int = 0
    #: files whose code was run to find models
    files_run: int = 0
    notes: list[str] = field(default_factory=list)
    verbose: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    #: the in-project files the child imported (None: unknown); set on per-file results
    imported: list[str] | None = None
    #: path -> that file's own result (the result cache stores them one by one)
    per_file: dict[str, DynamicResult] = field(default_factory=dict)
    #: the probe's per-layer measurements per model, with --report
    stats: list[dict[str, Any]] = field(default_factory=list)

    def absorb(self, r: DynamicResult) -> None:
        """Add one file's result (``r``) to this run's."""
        self.diagnostics.extend(r.diagnostics)
        self.models += r.models
        self.models_not_checked += r.models_not_checked
        self.models_not_probed += r.models_not_probed
        self.files_run += 1
        self.verbose.extend(r.verbose)
        self.stats.extend(r.stats)
        self.notes.extend(r.notes)
        self.errors.extend(r.errors)


# ---------------------------------------------------------------------------------------
# which files


def wants(path: str, text: str, cfg: Any, opts: Any) -> bool:
    """Cheap text test: does this file define something the graph pass can build?"""
    if getattr(opts, "model", None):
        return (
            re.search(rf"^\s*(class|def)\s+{re.escape(opts.model)}\b|^\s*{re.escape(opts.model)}\s*=", text, re.M)
            is not None
        )
    if declared_for(path, cfg):
        return True
    if "torch" not in text and "lightning" not in text:
        return False
    if EXAMPLES_FN.search(text) or MODULE_CLASS.search(text) or MODULE_MODEL.search(text):
        return True
    # a subclass of a module class defined in the same file (class Net(Base))
    local = set(re.findall(r"^class[ \t]+(\w+)", text, re.M))
    return any(set(re.findall(r"\w+", bases)) & local for bases in ANY_CLASS_WITH_BASES.findall(text))


def declared_for(path: str, cfg: Any) -> list[dict[str, Any]]:
    """The [[tool.nnlint.models]] entries whose target is this file."""
    out = []
    real = os.path.realpath(path)
    for entry in getattr(cfg, "models", None) or []:
        target = str(entry.get("target", ""))
        file_part = target.rsplit(":", 1)[0] if ":" in target else target
        if not file_part:
            continue
        base = str(cfg.root) if getattr(cfg, "root", None) is not None else os.getcwd()
        if os.path.realpath(os.path.join(base, file_part)) == real:
            out.append(entry)
    return out


# ---------------------------------------------------------------------------------------
# memory


def _meminfo() -> dict[str, int]:
    out = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                out[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def default_memory_limit() -> int:
    info = _meminfo()
    total = info.get("MemTotal")
    if not total:
        return 8 << 30
    avail = info.get("MemAvailable", total)
    return max(1 << 30, min(total // 2, int(avail * 0.8)))


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    out.extend(int(x) for x in fh.read().split())
            except OSError:
                continue
    except OSError:
        pass
    return out


def tree_rss(pid: int) -> int:
    total, stack, seen = 0, [pid], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _rss(p)
        stack.extend(_children(p))
    return total


# ---------------------------------------------------------------------------------------
# one child


@dataclass
class Child:
    path: str
    proc: subprocess.Popen | ForkedProc  # a fresh process, or a fork of the warm worker
    folder: str
    started: float
    timeout: float
    memory_limit: int
    killed_for: str | None = None
    peak_rss: int = 0
    out_pos: int = 0
    program: str | None = None  # a notebook: the generated program the child runs instead


def request(
    path: str, cfg: Any, opts: Any, codes: list[str], threads: int, folder: str | None, cwd: str | None = None
) -> dict[str, Any]:
    """What the worker is asked to do with one file. ``folder`` is the child's private folder
    (its sandbox and fault file); ``None`` for a worker run in this process (tests)."""
    req = {
        "version": 1,
        "path": path,
        "abs_path": os.path.abspath(path),
        "cwd": cwd or os.getcwd(),
        "codes": codes,
        "report": bool(getattr(opts, "report", None)),
        "thresholds": cfg.thresholds,
        "timeout": cfg.timeout,
        "device": cfg.device,
        "batch_size": cfg.batch_size,
        "probe_memory_fraction": cfg.probe_memory_fraction,
        "overfit": bool(getattr(opts, "overfit", False)),
        "overfit_steps": cfg.overfit_steps,
        "model": getattr(opts, "model", None),
        "input_shape": getattr(opts, "input_shape", None),
        "input_dtype": getattr(opts, "input_dtype", None),
        "kwargs": getattr(opts, "kwargs", None),
        "data": getattr(opts, "data", None),
        "declared": declared_for(path, cfg),
        "threads": threads,
    }
    if folder is not None:
        req["sandbox"] = folder
        req["fault_path"] = os.path.join(folder, "fault.txt")
    return req


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PYTHONFAULTHANDLER", "1")
    # nnlint run from a source tree (not installed): the child must find it the same way
    import nnlint

    root = os.path.dirname(os.path.dirname(os.path.abspath(nnlint.__file__)))
    if root in [os.path.abspath(p or os.getcwd()) for p in sys.path]:  # the child's cwd is not ours
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), root) if p)
    return env


def start_child(
    path: str, cfg: Any, opts: Any, codes: list[str], threads: int, memory_limit: int, text: str | None = None
) -> Child:
    """The child runs in ``folder/cwd`` with ``TMPDIR=folder/tmp``: whatever user code writes
    with a relative path or through ``tempfile`` lands in the private folder, deleted with it;
    ``sandbox`` refuses the network and writes anywhere else (see its docstring)."""
    folder = tempfile.mkdtemp(prefix="nnlint-")
    req = request(path, cfg, opts, codes, threads, folder)
    program = None
    if path.endswith(".ipynb") and text is not None:
        # a notebook runs as its code cells' program (nnlint/notebook.py), written to our own
        # temp folder, never beside the notebook; the script filter applies to it as to a .py
        stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0]) or "notebook"
        program = os.path.join(folder, f"{stem}.py")
        with open(program, "w", encoding="utf-8") as fh:
            fh.write(text)
        req["path"] = req["abs_path"] = program
        req["sys_path"] = os.path.dirname(os.path.abspath(path))  # the notebook's own imports
    for sub in ("cwd", "tmp"):
        os.mkdir(os.path.join(folder, sub))
    # torch's own caches (inductor, triton) and matplotlib's go there too, not into a shared
    # /tmp folder or the user's home
    overrides = sandbox.private_env(folder)
    from nnlint.passes import zygote

    # the warm worker: a fork of a process that imported torch (same request, folder, environment)
    forked = zygote.spawn(req, folder, overrides)
    if forked is not None:
        return Child(
            path=path,
            proc=forked,
            folder=folder,
            started=time.monotonic(),
            timeout=float(cfg.timeout),
            memory_limit=memory_limit,
            program=program,
        )
    out = open(os.path.join(folder, "out.jsonl"), "wb")
    err = open(os.path.join(folder, "err.txt"), "wb")
    env = child_env()
    env.update(overrides)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nnlint.passes.worker"],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            start_new_session=True,
            env=env,
            cwd=os.path.join(folder, "cwd"),
        )
    finally:
        out.close()
        err.close()
    assert proc.stdin is not None
    try:
        proc.stdin.write(json.dumps(req).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    return Child(
        path=path,
        proc=proc,
        folder=folder,
        started=time.monotonic(),
        timeout=float(cfg.timeout),
        memory_limit=memory_limit,
        program=program,
    )


def _kill(child: Child, reason: str) -> None:
    """Ask faulthandler for the user's stack (SIGUSR1), wait for the dump to land (a
    loaded machine may take a moment to schedule the child), then SIGKILL the group."""
    child.killed_for = reason
    pid = child.proc.pid
    fault = os.path.join(child.folder, "fault.txt")
    try:
        before = os.path.getsize(fault) if os.path.exists(fault) else 0
        os.kill(pid, getattr(signal, "SIGUSR1", signal.SIGTERM))
        deadline = time.monotonic() + (1.0 if reason == "timeout" else 0.5)
        last = -1
        while time.monotonic() < deadline and child.proc.poll() is None:
            size = os.path.getsize(fault) if os.path.exists(fault) else 0
            if size > before and size == last:
                break  # written, and no longer growing
            last = size
            time.sleep(0.02)
    except (ProcessLookupError, PermissionError, OSError):
        pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        try:
            child.proc.kill()
        except ProcessLookupError:
            pass


def _read_events(child: Child) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    try:
        with open(os.path.join(child.folder, "out.jsonl"), "rb") as fh:
            data = fh.read()
    except OSError:
        return events
    for raw in data.split(b"\n"):
        raw = raw.strip()
        if not raw.startswith(b"{"):
            continue
        try:
            events.append(json.loads(raw))
        except ValueError:
            continue  # a line cut short by a kill
    return events


def _tail(path: str, limit: int = 4000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _user_line_from_fault(child: Child) -> int | None:
    text = _tail(os.path.join(child.folder, "fault.txt"), 20000)
    if not text:
        return None
    real = os.path.realpath(child.path)
    # faulthandler lists the most recent call first; the last dump is the one that matters
    blocks = re.split(r"(?=^(?:Current thread|Thread) 0x)", text, flags=re.M)
    for block in reversed(blocks):
        for name, line in re.findall(r'File "([^"]+)", line (\d+)', block):
            if os.path.realpath(name) == real:
                return int(line)
    return None


def finish_child(child: Child, result: DynamicResult, rules: dict[str, Any], text: str | None = None) -> None:
    events = _read_events(child)
    if child.program:  # a notebook's program: report at the notebook (lines map to cells later)
        events = json.loads(json.dumps(events).replace(json.dumps(child.program)[1:-1], json.dumps(child.path)[1:-1]))
    done = next((e for e in events if e.get("event") == "done"), None)
    last_step = None
    for e in events:
        kind = e.get("event")
        if kind == "diagnostic":
            try:
                result.diagnostics.append(Diagnostic.from_dict(e["diagnostic"]))
            except (KeyError, TypeError, ValueError) as exc:
                result.errors.append(f"{child.path}: internal error: malformed reply from the worker ({exc})")
        elif kind == "step":
            last_step = e
        elif kind == "note":
            result.notes.append(str(e.get("text")))
        elif kind == "verbose":
            result.verbose.append(str(e.get("text")))
        elif kind == "stats" and isinstance(e.get("stats"), dict):
            result.stats.append(dict(e["stats"], path=child.path))
        elif kind == "error":
            result.errors.append(str(e.get("text")))
        elif kind == "model_missing":
            result.notes.append(f"{child.path}: --model {e.get('name')}: not defined in this file")
    if done is not None and child.killed_for is None:
        result.imported = done.get("files") if isinstance(done.get("files"), list) else None
        result.models += int(done.get("models", 0))
        result.models_not_checked += int(done.get("models_not_checked", 0))
        result.models_not_probed += int(done.get("models_not_probed", 0))
        return
    result.models += sum(1 for e in events if e.get("event") == "model")  # checked before the crash
    # the child died or was killed before finishing: NN005
    rc = child.proc.returncode
    step = (last_step or {}).get("step") or "start-up"
    model = (last_step or {}).get("model")
    where = f"in step '{step}'" + (
        f" of model {model}" if model and model != "nnlint_examples" else " of nnlint_examples()" if model else ""
    )
    user_line = _user_line_from_fault(child)
    at = f" (line {user_line} was running)" if user_line else ""
    code, slow = "NN005", None
    if child.killed_for == "timeout":
        slow = slow_guess_message(last_step, child.timeout, where, at)
        code = "NN002" if slow else code
        what = f"exceeded the time limit of {child.timeout:g} s {where}{at}; raise timeout in [tool.nnlint] or --timeout if the model is merely slow"
        evidence = {"reason": "timeout", "timeout_s": child.timeout, "step": step}
    elif child.killed_for == "memory":
        what = (
            f"used more than the memory limit of {gb(child.memory_limit)} (peak {gb(child.peak_rss)}) {where}{at} "
            f"and was killed; set memory-limit-mb in [tool.nnlint] if the model needs more"
        )
        evidence = {
            "reason": "memory",
            "limit_bytes": child.memory_limit,
            "peak_rss_bytes": child.peak_rss,
            "step": step,
        }
    elif child.killed_for == "system-memory":
        what = f"was killed because the machine ran out of available memory (peak {gb(child.peak_rss)}) {where}{at}"
        evidence = {"reason": "system-memory", "peak_rss_bytes": child.peak_rss, "step": step}
    elif rc is not None and rc < 0:
        sig = -rc
        try:
            signame = signal.Signals(sig).name
        except ValueError:
            signame = f"signal {sig}"
        kinds: dict[int, str] = {
            signal.SIGSEGV: "crashed with a segmentation fault (SIGSEGV)",
            signal.SIGABRT: "aborted (SIGABRT)",
            signal.SIGKILL: "was killed (SIGKILL; likely the system's out-of-memory killer)",
            signal.SIGBUS: "crashed with a bus error (SIGBUS)",
            signal.SIGFPE: "crashed (SIGFPE)",
            signal.SIGILL: "crashed with an illegal instruction (SIGILL)",
        }
        kind = kinds.get(sig, f"was terminated by {signame}")
        what = f"{kind} {where}{at}"
        evidence = {"reason": "signal", "signal": signame, "step": step, "peak_rss_bytes": child.peak_rss}
    else:
        tail = _tail(os.path.join(child.folder, "err.txt"), 600).strip().splitlines()
        last = tail[-1] if tail else ""
        what = (
            f"exited with status {rc} {where}{at} without reporting (does the code call sys.exit() or os._exit()?)"
            + (f"; last output: {last[:200]}" if last else "")
        )
        evidence = {"reason": "exit", "returncode": rc, "step": step}
    model_line = (last_step or {}).get("line")
    line = int((model_line if slow else None) or user_line or model_line or 1)  # NN002: at the model
    lines = (text or "").splitlines()
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    column = len(src) - len(src.lstrip()) + 1 if src.strip() else 1
    rule = rules.get(code)
    if rule is not None:
        result.diagnostics.append(
            Diagnostic(
                code=code,
                name=rule.name,
                severity=rule.severity,
                message=slow or f"the run {what}",
                pass_="tool",
                path=child.path,
                line=line,
                column=column,
                end_column=len(src.rstrip()) + 1 if src.strip() else None,
                model=model if model != "nnlint_examples" else None,
                evidence=evidence,
            )
        )
    result.models_not_checked += 1


# ---------------------------------------------------------------------------------------
# the whole dynamic run


def torch_available() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def run_dynamic(files: list[str], texts: dict[str, str], cfg: Any, opts: Any, rules: list[Any]) -> DynamicResult:
    result = DynamicResult()
    if not files:
        if getattr(opts, "model", None):
            result.errors.append(
                f"--model {opts.model}: no linted file defines a class, function or variable of that name"
            )
        return result
    if not torch_available():
        result.notes.append(TORCH_MISSING)
        return result
    from nnlint import registry

    all_rules = registry.all_rules()
    codes = [r.code for r in rules]
    if not any(all_rules[c].pass_ in ("graph", "probe", "data", "tool") for c in codes):
        return result
    jobs = getattr(opts, "jobs", None) or getattr(cfg, "jobs", None) or os.cpu_count() or 1
    jobs = max(1, min(jobs, len(files)))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # a child's limit: as configured, else a share of the machine (children run side by side)
    limit = (
        int(cfg.memory_limit_mb * (1 << 20))
        if getattr(cfg, "memory_limit_mb", None)
        else max(1 << 30, default_memory_limit() // jobs)
    )
    total = _meminfo().get("MemTotal", 0)
    floor = max(256 << 20, total // 20)  # keep 5% of the machine free
    pending = list(files)
    running: list[Child] = []
    finished: dict[str, DynamicResult] = {}
    cancel = getattr(opts, "cancel", None)  # a threading.Event (the language server's newer save)
    try:
        while pending or running:
            if cancel is not None and cancel.is_set():
                break  # the children still running are killed below
            while pending and len(running) < jobs:
                path = pending.pop(0)
                try:
                    running.append(start_child(path, cfg, opts, codes, threads, limit, texts.get(path)))
                except OSError as exc:
                    r = finished.setdefault(path, DynamicResult())
                    r.errors.append(f"{path}: cannot start a child process: {exc}")
            time.sleep(POLL_S)
            avail = _meminfo().get("MemAvailable") if running else None
            for child in list(running):
                if child.proc.poll() is not None:
                    running.remove(child)
                    r = finished.setdefault(child.path, DynamicResult())
                    finish_child(child, r, all_rules, texts.get(child.path))
                    shutil.rmtree(child.folder, ignore_errors=True)
                    continue
                rss = tree_rss(child.proc.pid)
                child.peak_rss = max(child.peak_rss, rss)
                if time.monotonic() - child.started > child.timeout:
                    _kill(child, "timeout")
                elif rss > child.memory_limit:
                    _kill(child, "memory")
                elif (
                    avail is not None
                    and avail < floor
                    and rss > (1 << 30)
                    and rss == max(tree_rss(c.proc.pid) for c in running)
                ):
                    _kill(child, "system-memory")
                    avail = None
                if child.killed_for is not None:
                    try:
                        child.proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        pass
    finally:
        for child in running:  # interrupted: leave nothing behind
            try:
                os.killpg(child.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            shutil.rmtree(child.folder, ignore_errors=True)
    result.per_file = finished
    from nnlint.passes import zygote

    if finished and zygote.broken():  # -v says why each file paid a fresh `import torch`
        result.verbose.append(f"warm worker not used ({zygote.broken()}): a fresh process per file")
    for path in files:
        if path not in finished:
            continue
        result.absorb(finished[path])
    missing = [n for n in result.notes if "--model" in n and "not defined" in n]
    if missing and getattr(opts, "model", None):
        if len(missing) == len(files):
            result.errors.append(
                f"--model {opts.model}: no linted file defines a class, function or variable of that name"
            )
        result.notes = [n for n in result.notes if n not in missing]
    return result
