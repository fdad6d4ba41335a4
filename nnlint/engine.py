"""files -> passes -> diagnostics -> suppression -> sort. Knows passes and reporters'
input, never an individual rule."""

from __future__ import annotations

import ast
import os
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlint import registry, suppression
from nnlint.config import Config
from nnlint.diagnostics import Diagnostic, Severity
from nnlint.findings import RuleCrash
from nnlint.rule import Rule

SKIP_DIRS = {
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".venv",
    "venv",
    "env",
    ".env",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
    "build",
    "dist",
    "site-packages",
    ".eggs",
}


@dataclass
class Options:
    static: bool = False
    jobs: int | None = None
    overfit: bool = False
    model: str | None = None
    input_shape: list[int] | None = None
    input_dtype: str | None = None
    kwargs: dict | None = None
    data: str | None = None
    #: the result cache (nnlint.cache): on for the command line unless --no-cache
    cache: bool = False
    #: --report DIR: the probe hands back its per-layer measurements (RunResult.stats)
    report: str | None = None
    cache_dir: str | None = None


@dataclass
class RunResult:
    diagnostics: list[Diagnostic]
    files: int
    models: int = 0
    models_not_checked: int = 0
    models_not_probed: int = 0
    #: files whose code the dynamic passes ran (they define a model)
    files_run: int = 0
    #: the probe's per-layer measurements per model (with Options.report)
    stats: list = field(default_factory=list)
    #: --verbose lines: each model, how it was built, its input and loss; classes left out and why
    verbose: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # usage/internal problems -> exit 2
    notes: list[str] = field(default_factory=list)  # one-line remarks for the user (stderr)
    duration_s: float = 0.0

    def count(self, severity: Severity) -> int:
        return sum(1 for d in self.diagnostics if d.severity is severity)


# ---------------------------------------------------------------------------------------
# files


def collect_files(paths: Iterable[str], cfg: Config) -> tuple[list[str], list[str]]:
    """Python files under ``paths`` (as the user spelled them) and error messages for
    paths that do not exist. Explicit files are always linted; folders are walked
    skipping VCS/virtualenv/cache folders and paths git ignores."""
    files: list[str] = []
    errors: list[str] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            errors.append(f"{raw}: no such file or directory")
            continue
        if p.is_file():
            files.append(raw)
            continue
        if not p.is_dir():
            errors.append(f"{raw}: not a regular file or folder")
            continue
        found = []
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(
                d
                for d in dirnames
                if d not in SKIP_DIRS
                and not d.endswith(".egg-info")
                and not (Path(dirpath, d) / "pyvenv.cfg").exists()
                and not cfg.is_excluded(Path(dirpath, d))
            )
            for name in sorted(filenames):
                if name.endswith((".py", ".ipynb")) and not cfg.is_excluded(Path(dirpath, name)):
                    found.append(os.path.normpath(os.path.join(dirpath, name)))  # "a.py", not "./a.py"
        files.extend(_drop_gitignored(found, p))
    seen: set[str] = set()
    unique = []
    for f in files:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, errors


def _drop_gitignored(files: list[str], folder: Path) -> list[str]:
    """``files`` (found under ``folder``) less those git ignores. A folder the user named
    that git ignores as a whole (a build or cache folder) is linted like a named file."""
    if not files:
        return files
    try:
        proc = subprocess.run(
            ["git", "-C", str(folder), "check-ignore", "--stdin", "-z"],
            input="\0".join([".", *(os.path.relpath(f, folder) for f in files)]).encode(),
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return files
    if proc.returncode not in (0, 1):  # 128: not a git repository
        return files
    reported = [x for x in proc.stdout.decode(errors="replace").split("\0") if x]
    if "." in reported:
        return files
    ignored = {os.path.normpath(os.path.join(folder, x)) for x in reported}
    return [f for f in files if os.path.normpath(f) not in ignored]


def read_source(path: str) -> tuple[str | None, Diagnostic | None]:
    """The file's text, or a tool diagnostic saying why it cannot be linted."""
    from nnlint.registry import all_rules

    rule = all_rules()["NN001"]

    def bad(message: str, line: int = 1) -> tuple[None, Diagnostic]:
        return None, Diagnostic(
            code=rule.code, name=rule.name, severity=rule.severity, message=message, pass_="tool", path=path, line=line
        )

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return bad(f"cannot read file: {exc.strerror or exc}")
    if path.endswith(".ipynb"):  # the code cells as one program (nnlint/notebook.py)
        from nnlint import notebook

        try:
            return notebook.parse(path, data.decode("utf-8-sig")).program, None
        except UnicodeDecodeError:
            return bad("not a Jupyter notebook: the file is not UTF-8 text")
        except notebook.NotebookError as exc:
            return bad(exc.message, exc.line)
    if b"\0" in data[:8192]:
        return bad("binary file (contains NUL bytes), not Python source")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        declared = _declared_encoding(data)
        if declared is not None:  # a PEP 263 cookie such as `# -*- coding: latin-1 -*-`
            try:
                return data.decode(declared), None
            except (UnicodeDecodeError, LookupError) as exc2:
                return bad(f"cannot decode the file as its declared encoding {declared}: {exc2}")
        line = data[: exc.start].count(b"\n") + 1
        return bad(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} cannot be decoded; save the file as UTF-8",
            line,
        )
    return text, None


def _declared_encoding(data: bytes) -> str | None:
    """The encoding a PEP 263 coding cookie declares, when it is not UTF-8."""
    import io
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:  # unknown encoding name, or a cookie that contradicts a BOM
        return None
    return None if encoding in ("utf-8", "utf-8-sig") else encoding


# ---------------------------------------------------------------------------------------
# source pass, in parallel


def _source_rules(codes: list[str], thresholds: dict[str, dict[str, float]]) -> list[Rule]:
    rules = registry.all_rules()
    return [rules[c](thresholds.get(c)) for c in codes if rules[c].pass_ == "source"]


def _lint_one(
    path: str, codes: list[str], thresholds: dict[str, dict[str, float]]
) -> tuple[list[dict], list[str], str | None]:
    """Worker: returns (diagnostic dicts, internal errors, text or None)."""
    text, problem = read_source(path)
    if problem is not None:
        return [problem.to_dict()], [], None
    assert text is not None
    diags, crashes = lint_source_text(path, text, codes, thresholds)
    errors = [c.describe(path) for c in crashes]
    return [d.to_dict() for d in diags], errors, text


def lint_source_text(
    path: str, text: str, codes: list[str], thresholds: dict[str, dict[str, float]]
) -> tuple[list[Diagnostic], list[RuleCrash]]:
    """The source pass on ``text`` (a file's or an editor buffer's): (diagnostics, rule
    crashes). A file that does not parse is one NN001 with CPython's message and position."""
    from nnlint.passes import source

    rules = registry.all_rules()
    if not text.strip(" \t\n\r\f"):  # blank to CPython too (str.strip() would also drop U+2028, which CPython rejects)
        return [], []
    try:
        if not source.mentions_torch(text):
            compile(text, path, "exec", dont_inherit=True, flags=ast.PyCF_ONLY_AST)  # syntax check only
            return [], []
        return source.run(path, text, _source_rules(codes, thresholds))
    except (SyntaxError, source.SyntaxIssue) as exc:
        # CPython's message ("expected ':'") and position beat libcst's "Syntax Error @ 4:1."
        # and its CSTValidationError (a SyntaxError without a line number)
        if isinstance(exc, source.SyntaxIssue):
            message, line, column = exc.message, exc.line, exc.column
        else:
            message, line, column = exc.msg, exc.lineno or 1, exc.offset or 1
        try:
            compile(text, path, "exec", dont_inherit=True, flags=ast.PyCF_ONLY_AST)
        except SyntaxError as py_exc:
            message, line, column = py_exc.msg, py_exc.lineno or line, py_exc.offset or column
        except (ValueError, RecursionError, MemoryError):
            pass
        r = rules["NN001"]
        return [
            Diagnostic(
                code=r.code,
                name=r.name,
                severity=r.severity,
                message=f"syntax error: {message}",
                pass_="tool",
                path=path,
                line=line,
                column=column,
            )
        ], []
    except (RecursionError, MemoryError, ValueError) as exc:
        r = rules["NN001"]
        return [
            Diagnostic(
                code=r.code,
                name=r.name,
                severity=r.severity,
                message=f"cannot parse: {type(exc).__name__}: {exc}",
                pass_="tool",
                path=path,
                line=1,
            )
        ], []


def _lint_chunk(
    paths: list[str], codes: list[str], thresholds: dict[str, dict[str, float]]
) -> list[tuple[str, list[dict], list[str], str | None]]:
    return [(p, *_lint_one(p, codes, thresholds)) for p in paths]


def run_source_pass(
    files: list[str], rules: list[type[Rule]], cfg: Config, jobs: int | None
) -> tuple[list[Diagnostic], list[str], dict[str, str]]:
    codes = [r.code for r in rules]
    thresholds = cfg.thresholds
    n = jobs or cfg.jobs or os.cpu_count() or 1
    n = max(1, min(n, len(files)))
    results: list[tuple[str, list[dict], list[str], str | None]] = []
    # Parallel only when it pays: forking and shipping results back costs more than
    # linting a handful of small files.
    if n == 1 or len(files) < 4:
        results = _lint_chunk(files, codes, thresholds)
    else:
        import multiprocessing  # here, not at the top: a one-file run never pays for it
        from concurrent.futures import ProcessPoolExecutor

        chunks = [files[i :: n * 4] for i in range(n * 4)]
        ctx = multiprocessing.get_context("fork") if hasattr(os, "fork") else None
        with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
            for part in pool.map(
                _lint_chunk, [c for c in chunks if c], [codes] * len(chunks), [thresholds] * len(chunks)
            ):
                results.extend(part)
    diags: list[Diagnostic] = []
    errors: list[str] = []
    texts: dict[str, str] = {}
    for path, ds, errs, text in results:
        diags.extend(Diagnostic.from_dict(d) for d in ds)
        errors.extend(errs)
        if text is not None:
            texts[path] = text
    return diags, errors, texts


# ---------------------------------------------------------------------------------------
# the result cache and the warm worker (hooks; the work is in nnlint.cache and
# nnlint.passes.zygote)


def prestart_worker(files: list[str], cfg: Config, opts: Options) -> None:
    """Start the warm worker's zygote now when some file may need the dynamic passes, so
    that torch's import runs beside the source pass."""
    try:
        from nnlint.passes import zygote
    except ImportError:
        return
    if not zygote.usable():
        return
    mentions = 0
    for f in files[:2000]:
        try:
            with open(f, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        if b"torch" in data or b"lightning" in data:
            mentions += 1
            if mentions > 1:
                break
    if mentions or cfg.models or opts.model:
        zygote.prestart(extra=mentions > 1)


def _cached_source_pass(
    files: list[str], rules: list[type[Rule]], cfg: Config, opts: Options, store, dynamic: bool
) -> tuple[list[Diagnostic], list[str], dict[str, str]]:
    diags: list[Diagnostic] = []
    texts: dict[str, str] = {}
    misses = []
    for f in files:
        hit = store.get_static(f)
        if hit is None:
            misses.append(f)
            continue
        text, problem = read_source(f)
        if text is None:
            misses.append(f)
            continue
        try:
            diags.extend(Diagnostic.from_dict(d) for d in hit)
        except (KeyError, TypeError, ValueError):
            misses.append(f)
            continue
        texts[f] = text
    if dynamic and misses:
        prestart_worker(files, cfg, opts)
    new, errors, new_texts = run_source_pass(misses, rules, cfg, opts.jobs) if misses else ([], [], {})
    diags.extend(new)
    texts.update(new_texts)
    by_path: dict[str, list[dict]] = {f: [] for f in misses}
    for d in new:
        by_path.setdefault(d.path, []).append(d.to_dict())
    for f in misses:
        if f in new_texts and not any(e.startswith(f"{f}:") for e in errors):
            store.put_static(f, by_path.get(f, []))
    return diags, errors, texts


def _cached_dynamic(candidates: list[str], store, diags: list[Diagnostic], result: RunResult) -> list[str]:
    """Adds the cached dynamic results to ``diags``/``result``; returns the files to run."""
    misses = []
    for f in candidates:
        hit = store.get_dynamic(f)
        if hit is None:
            misses.append(f)
            continue
        try:
            found = [Diagnostic.from_dict(d) for d in hit["diagnostics"]]
        except (KeyError, TypeError, ValueError):
            misses.append(f)
            continue
        diags.extend(found)
        result.models += int(hit.get("models") or 0)
        result.models_not_probed += int(hit.get("models_not_probed") or 0)
        if hasattr(result, "models_not_checked"):
            result.models_not_checked += int(hit.get("models_not_checked") or 0)
        if hasattr(result, "files_run"):
            result.files_run += 1  # its code was run, when the entry was made
        result.notes.extend(str(n) for n in hit.get("notes") or [])
        if hasattr(result, "verbose"):
            result.verbose.extend(str(n) for n in hit.get("verbose") or [])
    return misses


# ---------------------------------------------------------------------------------------
# the whole run


def lint(
    paths: list[str],
    cfg: Config,
    opts: Options,
    rules: list[type[Rule]],
    *,
    run_dynamic: Callable[..., Any] | None = None,
) -> RunResult:
    """Lint ``paths``. ``run_dynamic``: what runs the graph/probe passes on the files that
    need them, ``runner.run_dynamic``'s signature (default: each file in a child process;
    ``nnlint.api.lint_in_process`` passes one that runs them in this process)."""
    started = time.perf_counter()
    files, errors = collect_files(paths, cfg)
    store = None
    if getattr(opts, "cache", False):
        from nnlint import cache as cache_mod

        if not cache_mod.disabled_by_env():
            store = cache_mod.Cache(
                cache_mod.cache_dir_for(cfg, getattr(opts, "cache_dir", None)), cfg, opts, [r.code for r in rules]
            )
    dynamic_rules = [r for r in rules if r.pass_ in ("graph", "probe", "data")]
    dynamic = not opts.static and bool(dynamic_rules or any(r.pass_ == "tool" for r in rules))
    if dynamic and store is None and run_dynamic is None:
        prestart_worker(files, cfg, opts)  # torch's import overlaps the source pass
    if store is not None:
        diags, internal, texts = _cached_source_pass(files, rules, cfg, opts, store, dynamic)
    else:
        diags, internal, texts = run_source_pass(files, rules, cfg, opts.jobs)
    errors.extend(internal)
    result = RunResult(diagnostics=[], files=len(files), errors=errors)

    if dynamic:
        from nnlint.passes import runner

        syntax_broken = {d.path for d in diags if d.code == "NN001"}
        candidates = [
            f for f in files if f in texts and f not in syntax_broken and runner.wants(f, texts[f], cfg, opts)
        ]
        if store is not None and candidates and not getattr(opts, "model", None):
            candidates = _cached_dynamic(candidates, store, diags, result)
        if candidates or cfg.models or getattr(opts, "model", None):
            dyn = (run_dynamic or runner.run_dynamic)(candidates, texts, cfg, opts, rules)
            if store is not None and not getattr(opts, "model", None):
                for path, r in dyn.per_file.items():
                    if not r.errors:
                        store.put_dynamic(
                            path,
                            [d.to_dict() for d in r.diagnostics],
                            r.models,
                            r.models_not_probed,
                            r.notes,
                            r.imported,
                            extra={"models_not_checked": r.models_not_checked, "verbose": r.verbose},
                        )
            diags.extend(dyn.diagnostics)
            result.models += dyn.models
            result.models_not_probed += dyn.models_not_probed
            result.models_not_checked += dyn.models_not_checked
            result.files_run += dyn.files_run
            result.stats.extend(dyn.stats)
            result.verbose.extend(dyn.verbose)
            result.notes.extend(dyn.notes)
            result.errors.extend(dyn.errors)
            for path, text in dyn.texts.items():
                texts.setdefault(path, text)

    selected = {r.code for r in rules}
    diags = [d for d in diags if d.code in selected or d.pass_ == "tool" and d.code == "NN001"]
    diags = [d for d in diags if not any(d.code.startswith(c) for c in cfg.ignored_codes_for(d.path))]
    diags = suppression.apply(diags, texts)
    diags = _to_cells(diags, [f for f in files if f.endswith(".ipynb") and f in texts])
    # a finding the probe saw by a loss raising (evidence seen_by=probe) yields to the same
    # rule's static finding at that line: one finding per cause
    static = {(d.path, d.line, d.code) for d in diags if d.pass_ == "source"}
    diags = [
        d for d in diags if not ((d.evidence or {}).get("seen_by") == "probe" and (d.path, d.line, d.code) in static)
    ]
    # a rule that supersedes another at the same line keeps the one finding (Rule.supersedes)
    beats = {code: set(r.supersedes) for r in rules for code in [r.code] if r.supersedes}
    at: dict[tuple[object, ...], set[str]] = {(d.path, d.cell, d.line): set() for d in diags}
    for d in diags:
        at[(d.path, d.cell, d.line)] |= beats.get(d.code, set())
    diags = [d for d in diags if d.code not in at[(d.path, d.cell, d.line)]]
    unique: dict[tuple[object, ...], Diagnostic] = {}
    for d in diags:
        unique.setdefault((d.path, d.cell, d.line, d.column, d.code, d.message, d.module), d)
    result.diagnostics = sorted(unique.values(), key=lambda d: d.sort_key)
    result.duration_s = time.perf_counter() - started
    return result


def _to_cells(diags: list[Diagnostic], notebooks: list[str]) -> list[Diagnostic]:
    """Diagnostics of notebooks (positions in the cells' program) at their cell and line."""
    if not notebooks:
        return diags
    from nnlint import notebook

    books = {}
    for path in notebooks:
        try:
            books[path] = notebook.parse(path, Path(path).read_bytes().decode("utf-8-sig"))
        except (OSError, UnicodeDecodeError, notebook.NotebookError):
            continue
    return [notebook.map_diagnostic(books[d.path], d) if d.path in books and d.cell is None else d for d in diags]
