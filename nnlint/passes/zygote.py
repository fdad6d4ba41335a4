"""The warm worker: one zygote process per run imports torch and nnlint's dynamic passes
once, then forks one child per file. Each child is what ``python -m nnlint.passes.worker``
would be (its own process and session, the same request, the same replies in its private
folder, the same time limit, memory guard and crash isolation: NN005 is unchanged), less
the ~2-4 s of imports.

Parent side: ``prestart()`` starts the zygote early (the engine calls it before the source
pass, so torch's import runs beside it); ``spawn(req, folder)`` asks it for a child and
returns a ``ForkedProc``, a stand-in for ``subprocess.Popen`` (``pid``, ``poll``, ``wait``,
``kill``, ``returncode``) whose exit status the zygote reports, since only it can reap the
child. ``spawn`` returns None when the warm worker cannot be used, and the runner starts a
fresh process as before.

Fork is only used where it is safe:
- the platform has ``os.fork`` and is not macOS (system frameworks are not fork-safe there);
- the zygote imports torch without initialising CUDA and without starting any thread:
  it checks ``/proc/self/task`` after its imports and refuses to fork (the runner falls
  back) when a thread exists, since a lock held by another thread at fork time would be
  held forever in the child; it runs no tensor operation, so torch's intra-op pool
  (OpenMP) is never started and each child sizes its own pool (``torch.set_num_threads``);
- ``NNLINT_WARM_WORKER=0`` turns it off.

Zygote protocol: JSON lines on its stdin ``{"req": ..., "folder": ...}``; on its stdout
``{"ready": ...}`` once, then ``{"pid": n}`` per fork and ``{"exit": pid, "code": c}``
(``os.waitstatus_to_exitcode``: negative for a signal) per reaped child. End of its stdin
ends it.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

READY_TIMEOUT_S = 120.0

_zygote: Zygote | None = None
_LOCK = threading.RLock()
_broken: str | None = None  # why the warm worker is off for this process


def usable() -> bool:
    if _broken is not None:
        return False
    if os.environ.get("NNLINT_WARM_WORKER", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return hasattr(os, "fork") and sys.platform.startswith("linux")


def broken() -> str | None:
    """Why the warm worker failed in this process (None when it did not)."""
    return _broken


def why_not() -> str | None:
    """Why spawns fall back to fresh processes (None while the warm worker is in use)."""
    if _broken is not None:
        return _broken
    if not usable():
        return "disabled (NNLINT_WARM_WORKER=0) or fork not safe on this platform"
    return None


def _env() -> dict[str, str]:
    from nnlint.passes.runner import child_env

    env = child_env()
    # numpy's OpenBLAS (torch imports numpy) starts an idle thread pool at import;
    # a process with threads is not safe to fork, so the zygote and its children keep
    # numpy's BLAS single-threaded unless the user chose otherwise (torch's own pool is
    # sized per child with torch.set_num_threads, as in a fresh worker)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def prestart(extra: bool = True) -> None:
    """Start the zygote (once). ``extra``: also import what the passes load on first use
    (sympy, networkx, libcst, every rule: ~1 CPU-second), worth it when several files
    will fork from it, not for one."""
    with _LOCK:
        _prestart(extra)


def _prestart(extra: bool) -> None:
    global _zygote
    if not usable():
        return
    if _zygote is not None and _zygote.alive() and _zygote.env == _env():
        return
    shutdown()  # gone, or started under another environment (PYTHONPATH, ...)
    try:
        _zygote = Zygote(extra)
    except OSError as exc:
        _disable(f"cannot start the zygote: {exc}")


def spawn(req: dict[str, Any], folder: str, env: dict[str, str] | None = None) -> ForkedProc | None:
    """A child of the zygote running ``req`` with its replies in ``folder`` and ``env``
    set in its environment, or None."""
    if not usable():
        return None
    with _LOCK:
        prestart()
        z = _zygote
    if z is None:
        return None
    return z.spawn(req, folder, env)


def shutdown() -> None:
    global _zygote
    with _LOCK:
        if _zygote is not None:
            _zygote.close()
            _zygote = None


atexit.register(shutdown)


def _disable(reason: str) -> None:
    global _broken
    _broken = _broken or reason
    shutdown()


# ---------------------------------------------------------------------------------------
# parent side


class ForkedProc:
    """What the runner needs of ``subprocess.Popen`` for a child forked by the zygote."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote = zygote
        self.pid = pid
        self.returncode: int | None = None
        self.args = ["<zygote child>"]

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self.zygote.pump(0.02)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def send_signal(self, sig: int) -> None:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass


class Zygote:
    def __init__(self, extra: bool = True) -> None:
        fd, self.err_path = tempfile.mkstemp(prefix="nnlint-zygote-", suffix=".txt")
        os.close(fd)
        self.env = env = _env()
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nnlint.passes.zygote", *([] if extra else ["--lean"])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
                env=env,
            )
        self.buf = b""
        self.ready: bool | None = None
        self.pids: list[int] = []
        self.exits: dict[int, int] = {}
        self.children: set[int] = set()
        self.started = time.monotonic()
        # the language server runs several files' dynamic passes from threads at once
        self.lock = threading.RLock()

    def alive(self) -> bool:
        return self.proc.poll() is None and self.ready is not False

    def pump(self, timeout: float) -> None:
        """Read what the zygote said (waiting up to ``timeout`` for something)."""
        with self.lock:
            self._pump(timeout)

    def _pump(self, timeout: float) -> None:
        out = self.proc.stdout
        if out is None:
            return
        try:
            readable, _, _ = select.select([out], [], [], max(0.0, timeout))
        except (OSError, ValueError):
            readable = []
        if not readable:
            return
        try:
            data = os.read(out.fileno(), 65536)
        except OSError:
            data = b""
        if not data:  # the zygote is gone
            self.ready = False if self.ready is None else self.ready
            self._orphans()
            return
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "ready" in msg:
                self.ready = bool(msg["ready"])
                if not self.ready:
                    _disable(f"fork is not safe here: {msg.get('why')}")
            elif "pid" in msg:
                self.pids.append(int(msg["pid"]))
            elif "exit" in msg:
                self.exits[int(msg["exit"])] = int(msg["code"])

    def _orphans(self) -> None:
        """The zygote died: its children were re-parented and their status is lost; a
        child that no longer exists is reported as killed."""
        for pid in list(self.children):
            if pid in self.exits:
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                self.exits[pid] = -signal.SIGKILL
            except PermissionError:
                pass

    def exit_code(self, pid: int) -> int | None:
        self.pump(0)
        if pid not in self.exits and self.proc.poll() is not None:
            self._orphans()
        return self.exits.get(pid)

    def spawn(self, req: dict[str, Any], folder: str, env: dict[str, str] | None = None) -> ForkedProc | None:
        with self.lock:
            return self._spawn(req, folder, env)

    def _spawn(self, req: dict[str, Any], folder: str, env: dict[str, str] | None) -> ForkedProc | None:
        if self.proc.poll() is not None or self.ready is False:
            return None
        try:
            assert self.proc.stdin is not None
            msg = {"req": req, "folder": folder, "cwd": os.getcwd(), "env": env or {}}
            self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            _disable("the zygote exited")
            return None
        limit = READY_TIMEOUT_S if not self.ready else 30.0
        deadline = time.monotonic() + limit
        while not self.pids:
            if self.proc.poll() is not None and not self.pids:
                self.pump(0)
                if not self.pids:
                    _disable(f"the zygote exited with status {self.proc.returncode}")
                    return None
            if time.monotonic() > deadline or self.ready is False:
                _disable("the zygote did not answer in time" if self.ready is not False else _broken or "unsafe")
                return None
            self.pump(0.05)
        pid = self.pids.pop(0)
        self.children.add(pid)
        return ForkedProc(self, pid)

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:  # a zygote still importing torch would only notice after its imports: no waiting
            self.proc.wait(timeout=0.5 if self.ready else 0.05)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        try:
            os.unlink(self.err_path)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------
# the zygote process


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def _warm_imports(extra: bool = True) -> None:
    """What every child would import first: torch and nnlint's dynamic passes and rules.
    Imports only: no tensor op (no thread pool), no CUDA query (no driver state)."""
    import importlib
    import pkgutil

    import torch  # noqa: F401
    import torch.fx  # noqa: F401
    import torch.nn  # noqa: F401

    from nnlint import diagnostics, example, rule  # noqa: F401
    from nnlint.passes import graph, loader, worker  # noqa: F401

    try:
        from nnlint.passes import probe  # noqa: F401
    except ImportError:
        pass
    for sub in ("tool", "graph", "probe", "data"):
        try:
            pkg = importlib.import_module(f"nnlint.rules.{sub}")
        except ImportError:
            continue
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                try:
                    importlib.import_module(f"nnlint.rules.{sub}.{info.name}")
                except Exception:
                    pass
    from nnlint import cache, registry  # noqa: F401

    if not extra:
        return
    registry.all_rules()
    # what the passes import on first use (measured: a child's first model pulled these in)
    for name in (
        "networkx",
        "sympy",
        "libcst",
        "libcst.metadata",
        "torch.fx.experimental.symbolic_shapes",
        "torch.utils._sympy.functions",
    ):
        try:
            importlib.import_module(name)
        except Exception:
            pass


_PROTO_FD = -1
_START_CWD = ""


def _child(msg: dict[str, Any]) -> None:
    """In the forked child: become what ``python -m nnlint.passes.worker`` is."""
    code = 0
    try:
        os.close(_PROTO_FD)  # the zygote's pipe to the parent is not the child's
        os.setsid()  # its own session: the parent kills it as a process group
        folder = msg["folder"]
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(os.path.join(folder, "out.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(os.path.join(folder, "err.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (null, out, err):
            os.close(fd)
        # where a fresh worker would run: the private folder's cwd/ and tmp/ that the runner
        # made (runner.start_child), else the parent's current folder; sys.path[0] follows,
        # as `python -m` puts the working folder there
        cwd = os.path.join(folder, "cwd")
        if not os.path.isdir(cwd):
            cwd = msg.get("cwd") or _START_CWD
        os.chdir(cwd)
        sys.path[:] = [cwd if p == _START_CWD else p for p in sys.path]
        os.environ.update(msg.get("env") or {})  # TMPDIR, torch's cache folders: as a fresh worker's
        if "TMPDIR" in (msg.get("env") or {}):
            import tempfile

            tempfile.tempdir = None  # gettempdir() reads TMPDIR again
        private = os.path.join(folder, "cwd")
        if os.path.isdir(private):  # as a fresh worker: run in the private folder (runner.start_child)
            import tempfile

            from nnlint.passes import sandbox

            os.chdir(private)
            os.environ.update(sandbox.private_env(folder))
            tempfile.tempdir = None
        from nnlint.passes import worker

        worker.main(msg["req"])  # ends with os._exit(0)
    except BaseException:
        try:
            import traceback

            traceback.print_exc()
        except BaseException:
            pass
        code = 70
    os._exit(code)


def main() -> None:
    global _PROTO_FD, _START_CWD
    _START_CWD = os.getcwd()
    out_fd = _PROTO_FD = os.dup(1)
    os.dup2(2, 1)  # nothing imported may write on the protocol stream
    sys.stdout = sys.stderr

    def say(obj: dict[str, Any]) -> None:
        os.write(out_fd, (json.dumps(obj) + "\n").encode())

    try:
        _warm_imports(extra="--lean" not in sys.argv[1:])
    except Exception as exc:
        say({"ready": False, "why": f"import failed: {type(exc).__name__}: {exc}"})
        return
    n = _threads()
    if n != 1:
        say({"ready": False, "why": f"{n} threads were running after importing torch"})
        return
    try:
        import torch

        if torch.cuda.is_initialized():
            say({"ready": False, "why": "CUDA was initialised during the imports"})
            return
    except Exception:
        pass
    import gc

    gc.collect()
    gc.freeze()  # the imported objects stay out of the children's collections: fewer copy-on-write pages
    say({"ready": True, "pid": os.getpid()})
    buf = b""
    open_children: set[int] = set()
    stdin_open = True
    while stdin_open or open_children:
        try:
            readable, _, _ = select.select([0] if stdin_open else [], [], [], 0.02)
        except InterruptedError:
            readable = []
        while open_children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                open_children.clear()
                break
            if pid == 0:
                break
            open_children.discard(pid)
            say({"exit": pid, "code": os.waitstatus_to_exitcode(status)})
        if not readable:
            if not stdin_open and open_children:
                time.sleep(0.02)
            continue
        data = os.read(0, 1 << 20)
        if not data:
            stdin_open = False  # the parent is done (or gone): reap and leave
            continue
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            pid = os.fork()
            if pid == 0:
                _child(msg)
            open_children.add(pid)
            say({"pid": pid})


if __name__ == "__main__":
    main()
