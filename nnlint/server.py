"""``nnlint server``: a Language Server (LSP over stdio, pygls; ``pip install 'nnlint[lsp]'``).

- open/change: the source pass on the editor's text, in this process (debounced on
  change), published at once;
- save: the graph and probe passes on the saved file in the warm worker (a child process
  forked from a zygote that imported torch once: user code never runs in the server), a
  newer save cancelling a run still going; their findings are merged with the static ones;
- code actions: the fixes rules offer (labelled safe/unsafe) and "suppress with
  ``# noqa: CODE``"; hover on a diagnostic shows the rule's documentation;
- settings from the workspace's ``pyproject.toml`` ([tool.nnlint]), re-read when it
  changes (its modification time is checked on every run; a change re-lints open files);
- a crash of user code is a child process's NN005, never the server's; an internal error
  in a request is logged (window/logMessage) and answered empty.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from nnlint import __version__, registry, suppression
from nnlint import config as config_mod
from nnlint.diagnostics import Diagnostic

DEBOUNCE_S = 0.05

try:  # the optional extra: nnlint[lsp]
    from lsprotocol import types
    from pygls.lsp.server import LanguageServer
    from pygls.uris import to_fs_path
except ImportError:  # pragma: no cover - reported by main()
    # without the extra the names stay defined (main() says what is missing); their types cannot match
    types = None  # type: ignore[assignment]
    LanguageServer = object  # type: ignore[assignment,misc]


# ---------------------------------------------------------------------------------------
# linting text (no LSP types here: usable and testable without pygls)


@dataclass
class Settings:
    cfg: config_mod.Config
    rules: list[Any]
    key: tuple


_settings_cache: dict[str, Settings] = {}


def settings_for(path: str) -> Settings:
    """The [tool.nnlint] settings for a file, re-read when the pyproject.toml changes."""
    pyproject = config_mod.find_pyproject(Path(path).parent if Path(path).parent.exists() else Path("."))
    try:
        mtime = pyproject.stat().st_mtime_ns if pyproject else 0
    except OSError:
        mtime = 0
    key = (str(pyproject), mtime)
    cached = _settings_cache.get(str(pyproject))
    if cached is not None and cached.key == key:
        return cached
    cfg = config_mod.load(pyproject)
    rules = registry.select(cfg.select, cfg.ignore, cfg.extend_select)
    s = Settings(cfg=cfg, rules=rules, key=key)
    _settings_cache[str(pyproject)] = s
    return s


def source_diagnostics(path: str, text: str, s: Settings) -> tuple[list[Diagnostic], list[str]]:
    """The source pass on ``text`` (the editor's buffer, saved or not)."""
    from nnlint import engine

    diags, crashes = engine.lint_source_text(path, text, [r.code for r in s.rules], s.cfg.thresholds)
    errors = [f"internal error: rule {c.code} crashed ({c.error})" for c in crashes]
    return diags, errors


def dynamic_diagnostics(
    path: str, text: str, s: Settings, cancel: threading.Event
) -> tuple[list[Diagnostic], list[str]]:
    """Graph and probe passes on the saved file, in the warm worker's child process."""
    from nnlint import engine
    from nnlint.passes import runner

    if not any(r.pass_ in ("graph", "probe", "data") for r in s.rules):
        return [], []
    opts = engine.Options()
    opts.cancel = cancel  # type: ignore[attr-defined]  # runner stops and kills its children
    if not runner.wants(path, text, s.cfg, opts):
        return [], []
    result = runner.run_dynamic([path], {path: text}, s.cfg, opts, s.rules)
    return result.diagnostics, result.errors + result.notes


def finish(diags: list[Diagnostic], path: str, text: str, s: Settings) -> list[Diagnostic]:
    """Selection, per-file-ignores, ``# noqa`` and de-duplication, as the command line does."""
    selected = {r.code for r in s.rules}
    out = [d for d in diags if d.code in selected or d.code == "NN001"]
    ignored = s.cfg.ignored_codes_for(path)
    out = [d for d in out if not any(d.code.startswith(c) for c in ignored)]
    out = suppression.apply(out, {path: text})
    unique: dict[tuple, Diagnostic] = {}
    for d in out:
        unique.setdefault((d.path, d.line, d.column, d.code, d.message, d.module), d)
    return sorted(unique.values(), key=lambda d: d.sort_key)


def noqa_edit(line_text: str, code: str) -> tuple[int, int, str] | None:
    """(start column, end column, replacement), 0-based, that adds ``code`` to the line's
    ``# noqa``; None when the line is already suppressed for it."""
    m = suppression.NOQA_RE.search(line_text)
    if m is None:
        stripped = line_text.rstrip()
        return len(stripped), len(line_text), f"  # noqa: {code}"
    codes = m.group("codes")
    if codes is None:
        return None  # a bare noqa suppresses everything already
    if any(code.startswith(c.strip().upper()) for c in codes.replace(",", " ").split()):
        return None
    return m.end("codes"), m.end("codes"), f", {code}"


# ---------------------------------------------------------------------------------------
# the server


@dataclass
class DocState:
    static: list[Diagnostic] = field(default_factory=list)
    dynamic: list[Diagnostic] = field(default_factory=list)
    published: list[Diagnostic] = field(default_factory=list)
    change_task: Any = None
    save_task: Any = None
    save_cancel: threading.Event | None = None


class NnlintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("nnlint", __version__)
        self.docs: dict[str, DocState] = {}

    def log(self, message: str, kind: Any = None) -> None:
        try:
            self.window_log_message(types.LogMessageParams(type=kind or types.MessageType.Log, message=message))
        except Exception:
            pass

    def state(self, uri: str) -> DocState:
        return self.docs.setdefault(uri, DocState())

    def publish(self, uri: str) -> None:
        doc = self.workspace.get_text_document(uri)
        path = to_fs_path(uri) or uri
        st = self.state(uri)
        try:
            s = settings_for(path)
        except config_mod.ConfigError as exc:
            self.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Error, message=f"nnlint: configuration error: {exc}")
            )
            return
        st.published = finish(st.static + st.dynamic, path, doc.source, s)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, version=doc.version, diagnostics=[to_lsp(d) for d in st.published])
        )

    async def lint_static(self, uri: str, delay: float = 0.0) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            doc = self.workspace.get_text_document(uri)
            path = to_fs_path(uri) or uri
            text = doc.source
            t = time.perf_counter()
            s = settings_for(path)

            def timed() -> tuple[list[Diagnostic], list[str], float]:
                c = time.thread_time()
                d, e = source_diagnostics(path, text, s)
                return d, e, time.thread_time() - c

            diags, errors, cpu = await asyncio.to_thread(timed)
            if self.workspace.get_text_document(uri).source != text:
                return  # a newer change is on its way
            self.state(uri).static = diags
            self.publish(uri)
            for e in errors:
                self.log(f"nnlint: {path}: {e}", types.MessageType.Warning)
            self.log(
                f"nnlint: source pass on {os.path.basename(path)} in {1000 * (time.perf_counter() - t):.0f} ms "
                f"({1000 * cpu:.0f} ms CPU)"
            )
        except asyncio.CancelledError:
            raise
        except config_mod.ConfigError as exc:
            self.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Error, message=f"nnlint: configuration error: {exc}")
            )
        except Exception as exc:  # never take the server down
            self.log(
                f"nnlint: internal error in the source pass: {type(exc).__name__}: {exc}\n{traceback.format_exc()}",
                types.MessageType.Error,
            )

    def schedule_static(self, uri: str, delay: float) -> None:
        st = self.state(uri)
        if st.change_task is not None and not st.change_task.done():
            st.change_task.cancel()
        st.change_task = asyncio.ensure_future(self.lint_static(uri, delay))

    async def lint_dynamic(self, uri: str, cancel: threading.Event) -> None:
        try:
            doc = self.workspace.get_text_document(uri)
            path = to_fs_path(uri) or uri
            text = doc.source
            s = settings_for(path)
            t = time.perf_counter()
            diags, remarks = await asyncio.to_thread(dynamic_diagnostics, path, text, s, cancel)
            if cancel.is_set():
                return  # a newer save took over
            self.state(uri).dynamic = diags
            self.publish(uri)
            for r in remarks:
                self.log(f"nnlint: {r}", types.MessageType.Info)
            self.log(f"nnlint: graph and probe passes on {os.path.basename(path)} in {time.perf_counter() - t:.2f} s")
        except asyncio.CancelledError:
            cancel.set()
            raise
        except config_mod.ConfigError:
            pass  # shown by the source pass
        except Exception as exc:
            self.log(
                f"nnlint: internal error in the graph/probe passes: {type(exc).__name__}: {exc}\n"
                f"{traceback.format_exc()}",
                types.MessageType.Error,
            )

    def schedule_dynamic(self, uri: str) -> None:
        st = self.state(uri)
        if st.save_cancel is not None:
            st.save_cancel.set()  # the older run stops and kills its child
        st.save_cancel = threading.Event()
        st.save_task = asyncio.ensure_future(self.lint_dynamic(uri, st.save_cancel))

    def relint_all(self) -> None:
        for uri in list(self.docs):
            if uri in self.workspace.text_documents:
                self.state(uri).dynamic = []
                self.schedule_static(uri, 0.0)


def to_lsp(d: Diagnostic) -> Any:
    sev = {
        "error": types.DiagnosticSeverity.Error,
        "warning": types.DiagnosticSeverity.Warning,
        "info": types.DiagnosticSeverity.Information,
    }.get(d.severity.value, types.DiagnosticSeverity.Warning)
    end_line = (d.end_line or d.line) - 1
    end_col = (d.end_column or d.column + 1) - 1
    return types.Diagnostic(
        range=types.Range(
            start=types.Position(line=d.line - 1, character=d.column - 1),
            end=types.Position(line=end_line, character=end_col),
        ),
        message=d.message,
        severity=sev,
        code=d.code,
        source="nnlint",
        code_description=None,
        data={"name": d.name, "pass": d.pass_, "model": d.model},
    )


def _overlaps(d: Diagnostic, rng: Any) -> bool:
    start = (d.line - 1, d.column - 1)
    end = ((d.end_line or d.line) - 1, (d.end_column or d.column + 1) - 1)
    a = (rng.start.line, rng.start.character)
    b = (rng.end.line, rng.end.character)
    return start <= b and a <= end or start[0] <= a[0] <= end[0]


def build_server() -> NnlintServer:
    server = NnlintServer()

    @server.feature(types.INITIALIZED)
    def initialized(ls: NnlintServer, params: Any) -> None:
        from nnlint.passes import zygote

        zygote.prestart(extra=True)  # torch imported once, before the first save
        try:
            caps = ls.client_capabilities.workspace
            if not (caps and caps.did_change_watched_files and caps.did_change_watched_files.dynamic_registration):
                return  # pyproject.toml changes are still seen: its mtime is checked on every run
            ls.client_register_capability(
                types.RegistrationParams(
                    registrations=[
                        types.Registration(
                            id="nnlint-pyproject",
                            method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                            register_options=types.DidChangeWatchedFilesRegistrationOptions(
                                watchers=[types.FileSystemWatcher(glob_pattern="**/pyproject.toml")]
                            ),
                        )
                    ]
                )
            )
        except Exception:
            pass

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: NnlintServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.schedule_static(params.text_document.uri, 0.0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: NnlintServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule_static(params.text_document.uri, DEBOUNCE_S)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: NnlintServer, params: types.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        path = to_fs_path(uri) or ""
        if os.path.basename(path) == "pyproject.toml":
            _settings_cache.clear()
            ls.relint_all()
            return
        ls.schedule_static(uri, 0.0)
        ls.schedule_dynamic(uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: NnlintServer, params: types.DidCloseTextDocumentParams) -> None:
        st = ls.docs.pop(params.text_document.uri, None)
        if st is not None and st.save_cancel is not None:
            st.save_cancel.set()
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
        )

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched(ls: NnlintServer, params: types.DidChangeWatchedFilesParams) -> None:
        if any(c.uri.endswith("pyproject.toml") for c in params.changes):
            _settings_cache.clear()
            ls.relint_all()

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix])
    )
    def code_action(ls: NnlintServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        try:
            return _code_actions(ls, params)
        except Exception as exc:
            ls.log(f"nnlint: internal error in codeAction: {type(exc).__name__}: {exc}", types.MessageType.Error)
            return []

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: NnlintServer, params: types.HoverParams) -> types.Hover | None:
        try:
            return _hover(ls, params)
        except Exception as exc:
            ls.log(f"nnlint: internal error in hover: {type(exc).__name__}: {exc}", types.MessageType.Error)
            return None

    return server


def _code_actions(ls: NnlintServer, params: Any) -> list[Any]:
    uri = params.text_document.uri
    st = ls.docs.get(uri)
    if st is None:
        return []
    doc = ls.workspace.get_text_document(uri)
    lines = doc.source.splitlines()
    out = []
    seen_noqa: set[tuple[int, str]] = set()
    for d in st.published:
        if not _overlaps(d, params.range):
            continue
        lsp_diag = to_lsp(d)
        if d.fix is not None and d.fix.edits:
            edits = [
                types.TextEdit(
                    range=types.Range(
                        start=types.Position(line=e.line - 1, character=e.column - 1),
                        end=types.Position(line=e.end_line - 1, character=e.end_column - 1),
                    ),
                    new_text=e.replacement,
                )
                for e in d.fix.edits
            ]
            label = "safe fix" if d.fix.safe else "unsafe fix: review it"
            out.append(
                types.CodeAction(
                    title=f"{d.code}: {d.fix.description} ({label})",
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[lsp_diag],
                    is_preferred=d.fix.safe,
                    edit=types.WorkspaceEdit(changes={uri: edits}),
                )
            )
        if (d.line, d.code) in seen_noqa or d.line > len(lines):
            continue
        seen_noqa.add((d.line, d.code))
        edit = noqa_edit(lines[d.line - 1], d.code)
        if edit is None:
            continue
        start, end, text = edit
        out.append(
            types.CodeAction(
                title=f"Suppress {d.code} on this line with # noqa: {d.code}",
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[lsp_diag],
                edit=types.WorkspaceEdit(
                    changes={
                        uri: [
                            types.TextEdit(
                                range=types.Range(
                                    start=types.Position(line=d.line - 1, character=start),
                                    end=types.Position(line=d.line - 1, character=end),
                                ),
                                new_text=text,
                            )
                        ]
                    }
                ),
            )
        )
    return out


def _hover(ls: NnlintServer, params: Any) -> Any:
    st = ls.docs.get(params.text_document.uri)
    if st is None:
        return None
    pos = params.position
    here = (pos.line, pos.character)
    hits = [
        d
        for d in st.published
        if (d.line - 1, d.column - 1) <= here <= ((d.end_line or d.line) - 1, (d.end_column or d.column + 1) - 1)
    ]
    if not hits:
        return None
    rules = registry.all_rules()
    parts = []
    for code in dict.fromkeys(d.code for d in hits):
        rule = rules.get(code)
        if rule is None:
            continue
        parts.append(f"### {rule.code} {rule.name} ({rule.severity.value}, {rule.pass_} pass)\n\n{rule.docs()}")
    if not parts:
        return None
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value="\n\n---\n\n".join(parts)),
        range=to_lsp(hits[0]).range,
    )


def main(err: TextIO | None = None) -> int:
    if types is None:
        (err or sys.stderr).write("nnlint: the language server needs pygls: pip install 'nnlint[lsp]'\n")
        return 2
    server = build_server()
    try:
        server.start_io()
    finally:
        from nnlint.passes import zygote

        zygote.shutdown()
    return 0
