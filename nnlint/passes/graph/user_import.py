"""Imports the user's file as a module (its script part sliced away) and says why an import failed."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
from typing import Any


class ImportFailure(Exception):
    def __init__(self, exc: BaseException, line: int | None, where: str | None, environment: str | None = None) -> None:
        super().__init__(str(exc))
        self.exc = exc
        self.line = line
        self.where = where
        #: why the environment nnlint runs in made the import fail, and what would let it
        #: check (import_environment); None: the exception is the file's own
        self.environment = environment


#: the slice each imported user module was run from (module name -> slicing.Slice)
SLICES: dict[str, Any] = {}


def import_file(path: str) -> Any:
    """Import ``path`` like Python would as part of its package (relative imports work),
    running only the slice of its module level that its models need (``slicing``): imports,
    definitions and the values they read, never the script's work (loops, data sets,
    downloads, checkpoints, ``__main__``). The file is never imported whole: a model that
    needs a value only the script computes is reported (NN002), not built."""
    real = os.path.realpath(path)
    folder = os.path.dirname(real)
    stem = os.path.splitext(os.path.basename(real))[0]
    parts = [stem]
    top = folder
    while os.path.isfile(os.path.join(top, "__init__.py")) and stem.isidentifier():
        parts.insert(0, os.path.basename(top))
        top = os.path.dirname(top)
    in_package = len(parts) > 1 and all(p.isidentifier() for p in parts)
    if in_package:
        sys.path.insert(0, top)
        if folder not in sys.path:
            sys.path.insert(1, folder)
        name = ".".join(parts)
    else:
        sys.path.insert(0, folder)
        name = (
            stem
            if stem.isidentifier()
            and stem not in sys.modules
            and stem not in sys.builtin_module_names
            and stem not in getattr(sys, "stdlib_module_names", ())
            else f"_nnlint_user_{abs(hash(real))}"
        )
    from nnlint.passes import slicing

    try:
        with open(real, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ImportFailure(exc, None, None) from None
    try:
        tree = ast.parse(data, real)
    except (SyntaxError, ValueError) as exc:
        raise _import_failure(exc, real) from None
    sl = slicing.slice_body(tree.body)
    SLICES[name] = sl
    return _exec_file(name, real, slicing.compile_slice(sl, real), in_package)


def _exec_file(name: str, real: str, code: Any, in_package: bool) -> Any:
    """Run ``code`` (default: the file itself) as the module ``name``."""
    if in_package:
        parent = name.rpartition(".")[0]
        try:
            importlib.import_module(parent)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise _import_failure(exc, real) from None
    spec = importlib.util.spec_from_file_location(name, real)
    if spec is None or spec.loader is None:
        raise ImportFailure(ImportError(f"cannot import {real}"), None, None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        if code is None:
            spec.loader.exec_module(module)
        else:
            exec(code, module.__dict__)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        sys.modules.pop(name, None)
        raise _import_failure(exc, real) from None
    return module


def _import_failure(exc: BaseException, real: str) -> ImportFailure:
    line = None
    where = None
    tb = exc.__traceback__
    while tb is not None:
        fn = tb.tb_frame.f_code.co_filename
        if os.path.realpath(fn) == real:
            line = tb.tb_lineno
        where = f"{fn}:{tb.tb_lineno}"
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and exc.filename and os.path.realpath(exc.filename) == real:
        line = exc.lineno
    from nnlint.passes import sandbox
    from nnlint.passes.graph.import_environment import environment_cause

    return ImportFailure(exc, line, where, environment_cause(exc, real, line, sandbox.blocked()))
