"""Map a submodule of a live model back to the user's source line: the line that creates
it (``self.conv2 = nn.Conv2d(...)``), found with ``ast`` in the source of the class that
owns the attribute. Runs where torch is loaded (child process or the Python API)."""

from __future__ import annotations

import ast
import inspect
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=256)
def _class_assignments(cls: type) -> tuple[str | None, dict[str, int]]:
    """(source file, {attribute: line}) for ``self.<attr> = ...`` (and ``setattr``/
    ``add_module``/``register_parameter`` with literal names) in a class's methods."""
    try:
        path = inspect.getsourcefile(cls)
        if path is None or _is_library(path):
            return None, {}
        lines, start = inspect.getsourcelines(cls)
    except (TypeError, OSError):
        return None, {}
    try:
        tree = ast.parse("".join(_dedent(lines)))
    except SyntaxError:
        return path, {}
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for t in targets:
            for sub in ast.walk(t):
                if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self":
                    found.setdefault(sub.attr, node.lineno + start - 1)
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            if name in ("add_module", "register_module", "register_parameter", "register_buffer"):
                found.setdefault(node.args[0].value, node.lineno + start - 1)
            elif name == "setattr" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
                found.setdefault(str(node.args[1].value), node.lineno + start - 1)
    return path, found


def _is_library(path: str) -> bool:
    """torch's (and other installed packages') own classes are never the user's line."""
    norm = path.replace("\\", "/")
    return "/site-packages/" in norm or "/dist-packages/" in norm or "/lib/python3" in norm and "/torch/" in norm


def _dedent(lines: list[str]) -> list[str]:
    indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    return [l[indent:] if l.strip() else "\n" for l in lines]


def class_line(cls: type) -> tuple[str | None, int | None]:
    try:
        return inspect.getsourcefile(cls), inspect.getsourcelines(cls)[1]
    except (TypeError, OSError):
        return None, None


def module_line(model: Any, qualname: str) -> tuple[str | None, int | None]:
    """(path, line) of the statement that created submodule/parameter ``qualname``
    (e.g. ``features.3.conv`` or ``fc1.weight``) of ``model``. Walks up the path until an
    owner whose class source has an assignment for the next name; falls back to the
    model's class line."""
    parts = [p for p in qualname.split(".") if p]
    owners = [model]
    mod = model
    for p in parts[:-1]:
        mod = getattr(mod, p, None) if not p.isdigit() else _index(mod, p)
        if mod is None:
            break
        owners.append(mod)
    # try the deepest owner first: its class defines the attribute
    for depth in range(min(len(owners), len(parts)) - 1, -1, -1):
        owner = owners[depth]
        name = parts[depth]
        path, table = _class_assignments(type(owner))
        if name in table and path is not None:
            return path, table[name]
    return class_line(type(model))


def _index(mod: Any, p: str) -> Any:
    try:
        return mod[int(p)]
    except Exception:
        return getattr(mod, p, None)
