"""Which files of the user's project a file's imports name: modules beside the linted file,
resolved from its folder by path alone (never imported)."""

from __future__ import annotations

import os
import re

#: ``from X import a, B`` (parenthesised lists over several lines included) and ``import X, Y as z``
_FROM = re.compile(r"^[ \t]*from[ \t]+(\.?[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)", re.M)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n#;]*)", re.M)
_NAME = re.compile(r"[A-Za-z_]\w*")


def module_file(folder: str, module: str) -> str | None:
    """The file of ``module`` (``model``, ``models.net``, ``.model``) found from ``folder``:
    ``folder/model.py`` or ``folder/models/net/__init__.py``; None for a module that is not
    there (an installed package) and for imports from a parent package (``..x``)."""
    if module.startswith("."):
        module = module[1:]
        if module.startswith("."):
            return None
    if not module or not all(p.isidentifier() for p in module.split(".")):
        return None
    base = os.path.join(folder, *module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def imported_class_file(folder: str, qualname: str) -> tuple[str, str] | None:
    """(file, class name) for a class a file imports from its own project: ``model.Net``
    (``from model import Net``, or ``import model`` and ``model.Net``). Only CapWords names
    are followed, as ``project_files`` assumes."""
    module, _, name = qualname.rpartition(".")
    if not module or not name[:1].isupper():
        return None
    path = module_file(folder, module)
    return (path, name) if path is not None else None


def project_files(path: str, text: str) -> list[str]:
    """Every project file whose classes ``imported_class_file`` may read for this file
    (a superset: the static cache key includes their contents)."""
    folder = os.path.dirname(os.path.abspath(path))
    modules: set[str] = set()
    if "import" not in text:
        return []
    for m in _FROM.finditer(text):
        names = _NAME.findall(m.group(2).replace(" as ", " "))
        if any(n[:1].isupper() for n in names):
            modules.add(m.group(1))
        base = m.group(1)
        modules.update(f"{base}.{n}" if base not in ("", ".") else f".{n}" for n in names if n[:1].islower())
    for m in _IMPORT.finditer(text):
        for part in m.group(1).split(","):
            words = part.split()
            if words:
                modules.add(words[0])
    found = {module_file(folder, mod) for mod in modules}
    me = os.path.abspath(path)
    return sorted(f for f in found if f is not None and os.path.abspath(f) != me)
