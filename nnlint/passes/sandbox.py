"""Guards around user code in the child process: no network, no writes outside its folder.

The slice (``slicing``) already leaves out a script's downloads and checkpoint writes; this
is the second line, for what a kept definition does when nnlint calls it (a factory that
fetches weights, a constructor that writes a log):

- the child's working directory is a private temporary folder (``runner.start_child``), so
  a relative write (``torch.save(model, "model.ckpt")``, ``os.makedirs("samples")``) lands
  there and is deleted with it, never in the user's tree;
- an audit hook (PEP 578, every OS) refuses, with ``PermissionError``, network connections
  and name look-ups (``socket.connect``, ``socket.getaddrinfo``...), so no download starts,
  and opening files for writing, creating, removing or renaming anything outside that
  folder (the child's ``TMPDIR`` is inside it). Each refusal is recorded; the worker reports
  it (an info note) so a blocked download is visible.

An audit hook cannot be removed, and it sees only Python-level operations: a C extension
writing through its own ``fopen`` is not seen. Network namespaces (``unshare -n``) would
cover that too but need privileges that a linter's user rarely has, so they are not used.
"""

from __future__ import annotations

import os
import sys
from typing import Any

_state: dict[str, Any] = {"installed": False, "allowed": (), "blocked": [], "active": False}

_NET_EVENTS = {
    "socket.connect",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyaddr",
    "socket.sendto",
    "socket.bind",
    "urllib.Request",
    "http.client.connect",
    "ftplib.connect",
    "smtplib.connect",
}
_WRITE_EVENTS = {
    "os.mkdir",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.symlink",
    "os.link",
    "os.truncate",
    "os.chmod",
    "os.chown",
    "shutil.rmtree",
    "shutil.move",
    "shutil.copyfile",
    "os.utime",
}


def active() -> bool:
    """Is the sandbox refusing writes and network access now?"""
    return bool(_state.get("active"))


def blocked() -> list[str]:
    """What was refused so far: ['network: socket.connect ...', 'write: /home/u/x.ckpt']."""
    return list(_state["blocked"])


def _allowed(path: Any) -> bool:
    if isinstance(path, int):
        return True  # an already open file descriptor
    try:
        p = os.fsdecode(path)
    except TypeError:
        return True
    if p.startswith("/dev/") or p.startswith("/proc/self/"):
        return True
    real = os.path.realpath(p)
    return any(real == a or real.startswith(a + os.sep) for a in _state["allowed"])


def _writes(mode: Any, flags: Any) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    if isinstance(flags, int):
        return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND))
    return False


def _hook(event: str, args: tuple) -> None:
    if not _state["active"]:
        return
    if event in _NET_EVENTS:
        if event.startswith("socket.") and event not in (
            "socket.getaddrinfo",
            "socket.gethostbyname",
            "socket.gethostbyaddr",
        ):
            sock = args[0] if args else None
            family = getattr(sock, "family", None)
            if family is not None and int(family) == getattr(__import__("socket"), "AF_UNIX", -1):
                return  # local IPC (DataLoader workers)
        target = args[1] if event.startswith("socket.") and len(args) > 1 else args[0] if args else ""
        _state["blocked"].append(f"network: {event} {target!r:.120}")
        raise PermissionError(f"nnlint: network access is off while linting ({event})")
    if event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        if _writes(mode, flags) and not _allowed(path):
            _state["blocked"].append(f"write: {os.fsdecode(path) if not isinstance(path, int) else path}")
            raise PermissionError(f"nnlint: writing outside its temporary folder is off while linting ({path})")
        return
    if event in _WRITE_EVENTS:
        paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
        bad = next((p for p in paths if not _allowed(p)), None)
        if bad is not None:
            _state["blocked"].append(f"write: {event} {os.fsdecode(bad)}")
            raise PermissionError(
                f"nnlint: {event} outside its temporary folder is off while linting ({os.fsdecode(bad)})"
            )


def private_env(folder: str) -> dict[str, str]:
    """The child's environment variables that point the usual writers into ``folder``:
    ``tempfile`` (``TMPDIR``), torch's compile caches, and matplotlib's config and cache
    folder, which an import of ``matplotlib`` creates (else it tries ``~/.config/matplotlib``
    and ``~/.cache/matplotlib``, is refused, and the user sees two refusals for a plot import).
    torch hub's and Hugging Face's folders are left as they are: weights already downloaded
    are read there, and a download is refused as network access."""
    tmp = os.path.join(folder, "tmp")
    return {
        "TMPDIR": tmp,
        "TORCHINDUCTOR_CACHE_DIR": os.path.join(tmp, "inductor"),  # torch sets it in our environ
        "TRITON_CACHE_DIR": os.path.join(tmp, "triton"),
        "MPLCONFIGDIR": os.path.join(tmp, "matplotlib"),
    }


def install(folder: str | None = None) -> None:
    """Refuse network access and writes outside ``folder`` (default: the working
    directory), from now on, in this process."""
    # the child's TMPDIR is inside ``folder`` (runner.start_child): the system's temporary
    # folder is not allowed as such, a user's file may live there
    _state["allowed"] = (os.path.realpath(folder or os.getcwd()),)
    _state["active"] = True
    if not _state["installed"]:
        sys.addaudithook(_hook)
        _state["installed"] = True


def pause() -> None:
    """nnlint's own writes (none today) go around the guard."""
    _state["active"] = False


def resume() -> None:
    _state["active"] = True
