"""``nnlint server`` driven by pytest-lsp as a real LSP client over stdio (no mocks):
initialize, didOpen, diagnostics, didChange, didSave with dynamic results, codeAction,
hover, a crash of user code, config reload, shutdown."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")
from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

pytestmark = pytest.mark.slow

MODEL = (Path(__file__).resolve().parent.parent / "fixtures" / "seed" / "copy_paste_conv.py").read_text()
CRASH = """import os
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        os.abort()
        return self.fc(x)


def nnlint_examples():
    return [{"model": Net(), "inputs": torch.randn(8, 4)}]
"""


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "nnlint", "server"]))
async def client(lsp_client: LanguageClient, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.nnlint]\ntimeout = 120\n")
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=types.ClientCapabilities(), root_uri=tmp_path.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=tmp_path.as_uri(), name="ws")]))
    yield
    await lsp_client.shutdown_session()


async def wait_for(client: LanguageClient, uri: str, pred, timeout: float = 180.0):
    """Diagnostics for ``uri`` once ``pred(codes)`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        codes = [d.code for d in client.diagnostics.get(uri, [])]
        if uri in client.diagnostics and pred(codes):
            return client.diagnostics[uri]
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError(f"timed out; last diagnostics {codes}; log: "
                                 f"{[m.message for m in client.log_messages][-5:]}")
        try:
            await asyncio.wait_for(client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS),
                                   timeout=min(left, 5))
        except asyncio.TimeoutError:
            pass


def open_doc(client: LanguageClient, path: Path, text: str) -> str:
    path.write_text(text)
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    return uri


@pytest.mark.asyncio
async def test_open_change_save_actions_hover(client: LanguageClient, tmp_path):
    path = tmp_path / "model.py"
    uri = open_doc(client, path, MODEL)
    diags = await wait_for(client, uri, lambda c: "NN101" in c)
    assert [d.code for d in diags] == ["NN101"]  # static only until saved
    nn101 = diags[0]
    assert nn101.range.start.line == 17 and nn101.source == "nnlint"

    # didChange: the bug fixed in the buffer (not saved): the static finding goes
    fixed = MODEL.replace("x = F.relu(self.conv2(inp))  # expect: NN101", "x = F.relu(self.conv2(x))")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=fixed)]))
    await wait_for(client, uri, lambda c: "NN101" not in c)

    # back to the buggy text, saved: graph and probe run in the warm worker and merge
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=MODEL)]))
    path.write_text(MODEL)
    client.text_document_did_save(types.DidSaveTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    diags = await wait_for(client, uri, lambda c: "NN202" in c and "NN101" in c)
    assert sorted(d.code for d in diags) == ["NN101", "NN202"]

    # code actions: suppress with noqa
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=nn101.range,
        context=types.CodeActionContext(diagnostics=[nn101])))
    titles = [a.title for a in actions]
    assert any("# noqa: NN101" in t for t in titles), titles
    act = next(a for a in actions if "noqa: NN101" in a.title)
    (edit,) = act.edit.changes[uri]
    line = MODEL.splitlines()[17]
    assert edit.range.start.line == edit.range.end.line == 17
    patched = line[:edit.range.start.character] + edit.new_text + line[edit.range.end.character:]
    assert patched == "        x = F.relu(self.conv2(inp))  # expect: NN101  # noqa: NN101"

    # hover on the finding: the rule's docs
    hover = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=nn101.range.start))
    assert hover is not None and "NN101" in hover.contents.value and "Why is this bad" in hover.contents.value


@pytest.mark.asyncio
async def test_user_code_crash_never_takes_the_server_down_and_config_reloads(client: LanguageClient, tmp_path):
    path = tmp_path / "crash.py"
    uri = open_doc(client, path, CRASH)
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    diags = await wait_for(client, uri, lambda c: "NN005" in c)
    assert "SIGABRT" in next(d for d in diags if d.code == "NN005").message

    # the server still answers, and a changed pyproject.toml is read again
    other = open_doc(client, tmp_path / "model.py", MODEL)
    await wait_for(client, other, lambda c: "NN101" in c)
    (tmp_path / "pyproject.toml").write_text('[tool.nnlint]\ntimeout = 120\nignore = ["NN101"]\n')
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[types.FileEvent(
        uri=(tmp_path / "pyproject.toml").as_uri(), type=types.FileChangeType.Changed)]))
    await wait_for(client, other, lambda c: "NN101" not in c)


@pytest.mark.asyncio
async def test_code_action_offers_the_rules_fix(client: LanguageClient, tmp_path):
    import textwrap

    from nnlint import registry

    rule = registry.all_rules()["NN409"]
    text = textwrap.dedent(rule.INVALID[0].source).lstrip("\n")
    uri = open_doc(client, tmp_path / "lm.py", text)
    diags = await wait_for(client, uri, lambda c: "NN409" in c)
    d = next(x for x in diags if x.code == "NN409")
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=d.range,
        context=types.CodeActionContext(diagnostics=[d])))
    fixes = [a for a in actions if "noqa" not in a.title]
    assert fixes and ("safe fix" in fixes[0].title or "unsafe fix" in fixes[0].title), [a.title for a in actions]
    assert any("ignore_index=PAD_IDX" in e.new_text for e in fixes[0].edit.changes[uri])
