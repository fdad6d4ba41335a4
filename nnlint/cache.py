"""The result cache, as ruff's: ``.nnlint_cache/`` at the project root (the folder of the
``pyproject.toml`` with ``[tool.nnlint]``, else the current folder), with a ``CACHEDIR.TAG``
(backup tools skip it) and a ``.gitignore`` of ``*`` (git never shows it).

One JSON entry per file and pass:

- static (source pass): keyed on the file's path and content hash (and the content hashes
  of the project modules beside it whose classes a rule may read), the resolved config,
  the selected rules, the run's options and nnlint's version (plus, for a source checkout,
  a fingerprint of nnlint's own files, so editing a rule invalidates);
- dynamic (graph + probe): the static key plus torch's version, and the entry records the
  content hashes of the in-project files the model imported in its child process; a
  changed imported file invalidates that entry, and only that one.

Entries that describe a transient failure (a time limit, the memory guard, a signal, an
internal error) are never written. A corrupt or unreadable entry is a miss, never an
error; a cache folder that cannot be created or written turns the cache off for the run.
``--no-cache`` (or ``NNLINT_NO_CACHE=1``) skips it, ``nnlint clean`` removes it,
``--cache-dir`` / ``cache-dir`` / ``NNLINT_CACHE_DIR`` move it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import nnlint
from nnlint.analysis.local_imports import project_files

CACHE_DIR_NAME = ".nnlint_cache"
FORMAT = 1
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by nnlint.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
#: NN005 reasons that depend on the machine's load, not on the code: never cached
TRANSIENT = {"timeout", "memory", "system-memory", "signal"}


def disabled_by_env() -> bool:
    return os.environ.get("NNLINT_NO_CACHE", "").strip() not in ("", "0", "false", "no")


def cache_dir_for(cfg: Any, explicit: str | os.PathLike | None = None) -> Path:
    """Where the cache lives: --cache-dir, NNLINT_CACHE_DIR, cache-dir in [tool.nnlint]
    (relative to that pyproject's folder), else ``.nnlint_cache`` at the project root."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("NNLINT_CACHE_DIR")
    if env:
        return Path(env)
    root = getattr(cfg, "root", None)
    configured = getattr(cfg, "cache_dir", None)
    if configured:
        p = Path(configured)
        return p if p.is_absolute() or root is None else Path(root) / p
    return (Path(root) if root is not None else Path.cwd()) / CACHE_DIR_NAME


def clean(directory: Path) -> bool:
    """Remove a cache folder; only one nnlint made (it has our CACHEDIR.TAG)."""
    tag = directory / "CACHEDIR.TAG"
    try:
        if not tag.is_file() or "nnlint" not in tag.read_text(encoding="utf-8", errors="replace"):
            return False
    except OSError:
        return False
    shutil.rmtree(directory, ignore_errors=True)
    return True


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_hash(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return _sha(fh.read())
    except OSError:
        return None


_FINGERPRINT: str | None = None


def nnlint_fingerprint() -> str:
    """nnlint's version; for a source checkout (not in site-packages) also the sizes and
    modification times of its own files, so a changed rule never serves a stale result."""
    global _FINGERPRINT
    if _FINGERPRINT is not None:
        return _FINGERPRINT
    parts = [nnlint.__version__]
    pkg = Path(nnlint.__file__).resolve().parent
    if "site-packages" not in pkg.parts:
        from nnlint import registry  # rules live beside the package (package-dir)

        roots = {pkg}
        try:
            import nnlint.rules as rules_pkg

            roots.update(Path(p).resolve() for p in rules_pkg.__path__)
        except ImportError:
            pass
        del registry
        for root in sorted(roots):
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
                for name in sorted(filenames):
                    if name.endswith(".py"):
                        try:
                            st = os.stat(os.path.join(dirpath, name))
                        except OSError:
                            continue
                        parts.append(f"{dirpath}/{name}:{st.st_size}:{st.st_mtime_ns}")
    _FINGERPRINT = _sha("\n".join(parts).encode())[:16]
    return _FINGERPRINT


def torch_version() -> str | None:
    """torch's version without importing torch (the static path never pays for it)."""
    try:
        from importlib.metadata import version

        return version("torch")
    except Exception:
        return None


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def settings_key(cfg: Any, opts: Any, codes: list[str]) -> str:
    """Everything but the file that decides a file's results."""
    conf = _jsonable(cfg)
    if isinstance(conf, dict):
        conf.pop("cache_dir", None)
        conf.pop("source_file", None)
    options = _jsonable(opts)
    if isinstance(options, dict):
        for name in ("jobs", "cache", "cache_dir"):  # how, not what
            options.pop(name, None)
    blob = json.dumps(
        {
            "format": FORMAT,
            "config": conf,
            "options": options,
            "codes": sorted(codes),
            "nnlint": nnlint_fingerprint(),
            "python": sys.version_info[:2],
        },
        sort_keys=True,
    )
    return _sha(blob.encode())


class Cache:
    def __init__(self, directory: Path, cfg: Any, opts: Any, codes: list[str]) -> None:
        self.directory = Path(directory)
        self.settings = settings_key(cfg, opts, codes)
        self.enabled = True
        self.hits = 0
        self.misses = 0
        self._file_keys: dict[str, str | None] = {}
        self._torch: str | None | bool = False

    # keys ---------------------------------------------------------------------------------
    def _file_key(self, path: str) -> str | None:
        """The file's own content and that of the project modules beside it whose classes
        the source rules may read (``nnlint.analysis.local_imports.project_files``)."""
        if path not in self._file_keys:
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                self._file_keys[path] = None
                return None
            parts = [self.settings, path, os.path.realpath(path), _sha(data)]
            for dep in project_files(path, data.decode("utf-8", errors="replace")):
                parts += [dep, file_hash(dep) or "-"]
            self._file_keys[path] = _sha("\0".join(parts).encode())
        return self._file_keys[path]

    def _dynamic_key(self, path: str) -> str | None:
        key = self._file_key(path)
        if self._torch is False:
            self._torch = torch_version()
        return None if key is None else _sha(f"{key}\0dynamic\0{self._torch}".encode())

    def _entry(self, key: str) -> Path:
        return self.directory / f"v{FORMAT}" / key[:2] / f"{key}.json"

    # io -----------------------------------------------------------------------------------
    def _load(self, key: str | None) -> dict[str, Any] | None:
        if key is None or not self.enabled:
            return None
        try:
            with open(self._entry(key), encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError, UnicodeDecodeError):
            return None  # absent, unreadable or corrupt: a miss
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        return data

    def _prepare(self) -> bool:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tag = self.directory / "CACHEDIR.TAG"
            if not tag.exists():
                tag.write_text(CACHEDIR_TAG, encoding="utf-8")
            ignore = self.directory / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# Automatically created by nnlint.\n*\n", encoding="utf-8")
            return True
        except OSError:
            self.enabled = False
            return False

    def _store(self, key: str | None, payload: dict[str, Any]) -> None:
        if key is None or not self.enabled or not self._prepare():
            return
        target = self._entry(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"key": key, **payload}, fh)
            os.replace(tmp, target)
        except (OSError, TypeError, ValueError):
            try:
                os.unlink(tmp)  # NameError: mkstemp itself failed
            except (OSError, NameError):
                pass

    # static -------------------------------------------------------------------------------
    def get_static(self, path: str) -> list[dict[str, Any]] | None:
        data = self._load(self._file_key(path))
        diags = data.get("diagnostics") if data else None
        if not isinstance(diags, list):
            self.misses += 1
            return None
        self.hits += 1
        return diags

    def put_static(self, path: str, diagnostics: list[dict[str, Any]]) -> None:
        self._store(self._file_key(path), {"diagnostics": diagnostics})

    # dynamic ------------------------------------------------------------------------------
    def get_dynamic(self, path: str) -> dict[str, Any] | None:
        data = self._load(self._dynamic_key(path))
        if not data or not isinstance(data.get("diagnostics"), list) or not isinstance(data.get("deps"), dict):
            return None
        for dep, digest in data["deps"].items():
            if file_hash(dep) != digest:
                return None  # an imported project file changed
        return data

    def put_dynamic(
        self,
        path: str,
        diagnostics: list[dict[str, Any]],
        models: int,
        models_not_probed: int,
        notes: list[str],
        deps: list[str] | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if deps is None:
            return  # the child did not say what it imported: cannot know when to invalidate
        for d in diagnostics:
            if d.get("code") == "NN005" and (d.get("evidence") or {}).get("reason") in TRANSIENT:
                return
        hashes = {}
        me = os.path.realpath(path)
        for dep in deps:
            if os.path.realpath(dep) == me:
                continue  # the file itself is in the key already
            digest = file_hash(dep)
            if digest is None:
                return
            hashes[dep] = digest
        self._store(
            self._dynamic_key(path),
            {
                **(extra or {}),
                "diagnostics": diagnostics,
                "models": models,
                "models_not_probed": models_not_probed,
                "notes": notes,
                "deps": hashes,
            },
        )


def project_files_imported() -> list[str]:
    """Source files of the modules imported in this process that are neither the standard
    library nor installed packages nor nnlint: the user's own project files (run in the
    worker, after the user's code)."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix) if p}
    own = [os.path.dirname(os.path.realpath(nnlint.__file__))]
    rules_pkg = sys.modules.get("nnlint.rules")
    own += [os.path.realpath(p) for p in getattr(rules_pkg, "__path__", [])]
    out = []
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if not f or not isinstance(f, str) or not f.endswith(".py"):
            continue
        real = os.path.realpath(f)
        if any(real.startswith(r + os.sep) for r in own) or "site-packages" in real or "dist-packages" in real:
            continue
        if any(real.startswith(p + os.sep) for p in prefixes):
            continue
        if os.path.isfile(real):
            out.append(real)
    return sorted(set(out))
