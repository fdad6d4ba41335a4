"""Map a submodule of a live model back to the user's source line: the line that creates
it (``self.conv2 = nn.Conv2d(...)``), found with ``ast`` in the source of the class that
owns the attribute. Runs where torch is loaded (child process or the Python API)."""

from __future__ import annotations

import ast
import inspect
import os
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
        lineno = 0
        if isinstance(node, ast.Assign):
            targets, lineno = list(node.targets), node.lineno
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets, lineno = [node.target], node.lineno
        for t in targets:
            for sub in ast.walk(t):
                if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self":
                    found.setdefault(sub.attr, lineno + start - 1)
                    value = getattr(node, "value", None)
                    if sub is t and isinstance(value, ast.Call):
                        for key, line in _container_items(value).items():
                            found.setdefault(f"{sub.attr}.{key}", line + start - 1)
        if (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            if name in ("add_module", "register_module", "register_parameter", "register_buffer"):
                found.setdefault(node.args[0].value, node.lineno + start - 1)
            elif name == "setattr" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
                found.setdefault(str(node.args[1].value), node.lineno + start - 1)
    return path, found


CONTAINERS = {"Sequential", "ModuleList", "ModuleDict"}


def _container_items(call: ast.Call) -> dict[str, int]:
    """``nn.Sequential(a, b)`` -> {"0": line of a, "1": line of b}; also
    ``nn.ModuleList([a, b])`` and ``nn.Sequential(OrderedDict([("conv", a), ...]))`` /
    ``nn.ModuleDict({"conv": a})``. Comprehensions and starred arguments give nothing: the
    container's own line stands for their items."""
    fn = call.func
    name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
    if name not in CONTAINERS:
        return {}
    items: dict[str, int] = {}
    args = list(call.args)
    if len(args) == 1 and isinstance(args[0], (ast.List, ast.Tuple)):
        args = list(args[0].elts)
    if (
        len(args) == 1
        and isinstance(args[0], ast.Call)
        and args[0].args
        and isinstance(args[0].args[0], (ast.List, ast.Tuple))
    ):
        pairs = args[0].args[0].elts  # OrderedDict([(name, module), ...])
        for p in pairs:
            if isinstance(p, ast.Tuple) and len(p.elts) == 2 and isinstance(p.elts[0], ast.Constant):
                items[str(p.elts[0].value)] = p.elts[1].lineno
        return items
    if len(args) == 1 and isinstance(args[0], ast.Dict):
        for k, v in zip(args[0].keys, args[0].values):
            if isinstance(k, ast.Constant):
                items[str(k.value)] = v.lineno
        return items
    if any(isinstance(a, ast.Starred) for a in args):
        return {}
    for i, a in enumerate(args):
        items[str(i)] = a.lineno
        if isinstance(a, ast.Call):
            for key, line in _container_items(a).items():
                items[f"{i}.{key}"] = line
    return items


def factory_lines(fn: Any) -> dict[str, int]:
    """For a factory function that builds an ``nn.Sequential(...)`` (or ModuleList/
    ModuleDict) from literal items: {"": line of that call, "0": line of item 0, ...}."""
    try:
        lines, start = inspect.getsourcelines(fn)
        tree = ast.parse("".join(_dedent(lines)))
    except (TypeError, OSError, SyntaxError):
        return {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            items = _container_items(node)
            if items:
                out = {k: v + start - 1 for k, v in items.items()}
                out[""] = node.lineno + start - 1
                return out
    return {}


def assignment_lines(text: str, name: str) -> dict[str, int]:
    """For a module-level ``name = nn.Sequential(...)``: {"": its line, "0": item 0's
    line, ...}; {} when the file has no such assignment."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                out = _container_items(node.value) if isinstance(node.value, ast.Call) else {}
                out[""] = node.lineno
                return out
    return {}


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


def module_line(model: Any, qualname: str, prefer_path: str | None = None) -> tuple[str | None, int | None]:
    """(path, line) of the statement that created submodule/parameter ``qualname``
    (e.g. ``features.3.conv`` or ``fc1.weight``) of ``model``. Walks up the path until an
    owner whose class source has an assignment for the next name (an item of an
    ``nn.Sequential(...)`` written out in the source gets its own line); falls back to the
    model's class line. With ``prefer_path``, only lines in that file count: a layer of a
    class imported from elsewhere points at the line of ``prefer_path`` that created its
    owner."""
    parts = [p for p in qualname.split(".") if p]
    owners = [model]
    mod = model
    for p in parts[:-1]:
        mod = getattr(mod, p, None) if not p.isdigit() else _index(mod, p)
        if mod is None:
            break
        owners.append(mod)
    want = os.path.realpath(prefer_path) if prefer_path else None
    # try the deepest owner first: its class defines the attribute
    for depth in range(min(len(owners), len(parts)) - 1, -1, -1):
        owner = owners[depth]
        cls: type = type(owner)
        path, table = _class_assignments(cls)
        if path is None or want is not None and os.path.realpath(path) != want:
            continue
        # the longest dotted key this owner's source knows: "net.2" before "net"
        for end in range(len(parts), depth, -1):
            key = ".".join(parts[depth:end])
            if key in table:
                return path, table[key]
    if want is not None:
        # a library model configured by the user's code: `model.fc = nn.Linear(...)`
        for end in range(len(parts), 0, -1):
            line = attribute_assignment_line(want, parts[end - 1])
            if line is not None:
                return prefer_path, line
    for owner in reversed(owners):
        path, line = class_line(type(owner))
        if path is not None and (want is None or os.path.realpath(path) == want):
            return path, line
    return class_line(type(model)) if want is None else (None, None)


def attribute_assignment_line(path: str, attr: str) -> int | None:
    """The line of the one statement in ``path`` that assigns ``<obj>.attr = ...`` outside a
    class body's methods' ``self`` (e.g. ``model.fc = nn.Linear(512, 10)``); None when there
    is none or several."""
    if attr.isdigit():
        return None
    tree = _parsed(path)
    if tree is None:
        return None
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Attribute) and t.attr == attr for t in targets):
                hits.append(node.lineno)
    return hits[0] if len(hits) == 1 else None


_PARSED: dict[str, Any] = {}


def _parsed(path: str) -> Any:
    if path not in _PARSED:
        try:
            with open(path, encoding="utf-8") as fh:
                _PARSED[path] = ast.parse(fh.read())
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            _PARSED[path] = None
    return _PARSED[path]


def _index(mod: Any, p: str) -> Any:
    try:
        return mod[int(p)]
    except Exception:
        return getattr(mod, p, None)
