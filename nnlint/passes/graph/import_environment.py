"""Says whether a failed import of the user's file is the environment's doing, and what would let nnlint check it."""

from __future__ import annotations

import os
import re
import site
import sys
import sysconfig
from typing import Any

#: variables that a distributed launcher (torchrun, torch.distributed.launch, SLURM, MPI) sets
LAUNCHER_VARIABLES = {
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RUN_ID",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_LOCALID",
    "OMPI_COMM_WORLD_RANK",
    "OMPI_COMM_WORLD_SIZE",
}

_MAIN = 'move the code that needs it under `if __name__ == "__main__":`'
_EXAMPLES = "declare `nnlint_examples()` to say how to build the models"
_GETENV = re.compile(r"""\b(?:os\.)?(?:getenv|environ\.get)\(\s*(['"])(\w+)\1""")


def environment_cause(exc: BaseException, real: str, line: int | None, refused: list[str]) -> str | None:
    """Why importing ``real`` failed with ``exc`` because of where nnlint runs it (a package
    not installed there, a variable a launcher sets, a data file, a refused download or
    write, command-line arguments nnlint does not give), with what would let nnlint check
    it; None when the exception is the file's own (a bug: NN003). ``line`` is the file's
    line that raised, ``refused`` what the child's guards refused so far."""
    if refused and _from_refusal(exc):
        what = refused[0]
        kind = "a download" if what.startswith("network") else "a write outside its temporary folder"
        return (
            f"nnlint refused {kind} while importing the file ({what}), so its models were not checked. "
            f"nnlint never downloads or writes while linting: {_MAIN}, or {_EXAMPLES}."
        )
    if isinstance(exc, ImportError):
        return _import_error(exc, real)
    if isinstance(exc, KeyError) and _raised_in_environ(exc):
        name = str(exc.args[0]) if exc.args else "?"
        return _variable(name)
    if isinstance(exc, (TypeError, AttributeError, ValueError)) and "None" in str(exc) and line is not None:
        for name in _getenv_names(real, line):
            if name not in os.environ:
                return _variable(name, returned_none=True)
    if isinstance(exc, FileNotFoundError) and exc.filename:
        name = os.fsdecode(exc.filename)
        where = (
            "nnlint runs the file from a private temporary folder, where the relative path does not exist"
            if not os.path.isabs(name)
            else "it does not exist where nnlint runs"
        )
        return f"the file reads {name!r} at import and {where}, so its models were not checked. {_cap(_MAIN)}, or {_EXAMPLES}."
    if isinstance(exc, SystemExit):
        message = _argparse_message(exc)
        if message is not None:
            return (
                f"the file parses its command line at import and nnlint gives it no arguments ({message}), "
                f"so its models were not checked. Give the arguments defaults, {_MAIN}, or {_EXAMPLES}."
            )
    return None


def _from_refusal(exc: BaseException) -> bool:
    """Is ``exc`` (or what it was raised from) the guards' refusal, or the I/O error a
    refused download or write turns into (``URLError``, ``ConnectionError``, ``OSError``)?"""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) or str(cur).startswith("nnlint:"):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _variable(name: str, returned_none: bool = False) -> str:
    notes = ["os.getenv returned None"] if returned_none else []
    notes += ["a launcher such as torchrun sets it"] if name in LAUNCHER_VARIABLES else []
    said = f" ({'; '.join(notes)})" if notes else ""
    return (
        f"the environment variable {name} is not set where nnlint runs{said}, so the file's models "
        f"were not checked. Set {name} when running nnlint, {_MAIN}, or {_EXAMPLES}."
    )


def _import_error(exc: ImportError, real: str) -> str | None:
    name = exc.name or ""
    path = getattr(exc, "path", None)
    if not name:  # `from . import x` in a folder without __init__.py: imported as a top-level module
        if "relative import" in str(exc):
            return (
                "the file uses a relative import but its folder is not a package nnlint can see (no __init__.py), "
                "so it was imported as a top-level module and its models were not checked. "
                f"Add an __init__.py to the folder, or {_EXAMPLES} in a module that imports it."
            )
        return None
    if isinstance(exc, ModuleNotFoundError) and path is None:
        found = _longest_imported_prefix(name)
        if found is not None and not _installed(getattr(sys.modules[found], "__file__", None) or ""):
            return None  # a submodule missing from the user's own package: the file's bug
        top = name.split(".")[0]
        if top == _stem_package(real):
            return None
        return (
            f"the module {name} is not installed where nnlint runs, so the file's models were not checked. "
            f"Install {top} in nnlint's environment (for the pre-commit hook: list it in "
            "`additional_dependencies`)."
        )
    if path and _installed(path):  # `from pkg import X`: the installed pkg has no X
        return (
            f"the installed {name} ({path}) does not provide what the file imports, so its models were not "
            f"checked. Install the version of {name.split('.')[0]} the file is written for in nnlint's environment."
        )
    return None


def _longest_imported_prefix(name: str) -> str | None:
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in sys.modules:
            return prefix
    return None


def _stem_package(real: str) -> str | None:
    """The top-level package the file belongs to (folders with __init__.py), or None."""
    folder = os.path.dirname(real)
    top = None
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        top = os.path.basename(folder)
        folder = os.path.dirname(folder)
    return top


def _installed(path: str) -> bool:
    """Is ``path`` part of an installed distribution or the standard library (not the user's code)?"""
    if not path:
        return False
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    roots = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= set(getattr(site, "getsitepackages", lambda: [])())
    roots.add(getattr(site, "getusersitepackages", lambda: None)())
    return any(r and (real == os.path.realpath(r) or real.startswith(os.path.realpath(r) + os.sep)) for r in roots)


def _raised_in_environ(exc: BaseException) -> bool:
    """Was the KeyError raised by ``os.environ[...]``?"""
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return False
    frame = last.tb_frame  # os is a frozen module: its frames' file name is "<frozen os>"
    return frame.f_code.co_name == "__getitem__" and frame.f_locals.get("self") is os.environ


def _getenv_names(real: str, line: int) -> list[str]:
    """The variables that ``os.getenv("X")``/``os.environ.get("X")`` read on the file's ``line``."""
    try:
        with open(real, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    return [m.group(2) for m in _GETENV.finditer(text)]


def _argparse_message(exc: SystemExit) -> str | None:
    """The message of ``ArgumentParser.error`` that ended in this SystemExit, or None."""
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "error" and os.path.basename(frame.f_code.co_filename) == "argparse.py":
            message: Any = frame.f_locals.get("message")
            return str(message) if message is not None else None
        tb = tb.tb_next
    return None
