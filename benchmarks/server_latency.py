"""``nnlint server``: time to first diagnostics, as an editor sees it (issue 9).

Starts the server over stdio with pygls' client and measures, from the notification sent
to the ``publishDiagnostics`` that answers it:

- static, cold: didOpen of a small model file right after ``initialized`` (imports libcst);
- static, warm: didChange of a 500-line model file (the target: <= 300 ms, debounce
  included), the median of ``--repeat`` edits;
- dynamic: didSave of the small file until its graph/probe finding (NN202) arrives, once
  right after start-up (the zygote may still be importing torch) and once warm.

Wall time on a shared machine varies with its load: the script prints the load average.
A script that prints figures, never a test.

    python benchmarks/server_latency.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parent.parent
SMALL = (ROOT / "fixtures" / "seed" / "copy_paste_conv.py").read_text()


def big_file(lines: int = 500) -> str:
    head, body = SMALL.split("class Net", 1)
    body = body.split("def nnlint_examples")[0]
    out, i = [head], 0
    while sum(p.count("\n") for p in out) < lines:
        out.append(f"class Net{i}" + body)
        i += 1
    return "".join(out)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nnlint-lsp-bench-"))
    (work / "pyproject.toml").write_text("[tool.nnlint]\ntimeout = 120\n")
    client = LanguageClient("nnlint-bench", "1")
    published: dict[str, asyncio.Queue] = {}

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diags(params: types.PublishDiagnosticsParams) -> None:
        published.setdefault(params.uri, asyncio.Queue()).put_nowait((time.perf_counter(), params))

    logs: asyncio.Queue = asyncio.Queue()

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def on_log(params: types.LogMessageParams) -> None:
        logs.put_nowait((time.perf_counter(), params.message))

    async def log_line(pattern: str, timeout: float = 300.0) -> tuple[float, str]:
        while True:
            t, msg = await asyncio.wait_for(logs.get(), timeout)
            if re.search(pattern, msg):
                return t, msg

    def drain() -> None:
        while not logs.empty():
            logs.get_nowait()

    async def until(uri: str, pred, timeout: float = 300.0) -> float:
        q = published.setdefault(uri, asyncio.Queue())
        while True:
            t, params = await asyncio.wait_for(q.get(), timeout)
            if pred([d.code for d in params.diagnostics]):
                return t

    t_start = time.perf_counter()
    await client.start_io(sys.executable, "-m", "nnlint", "server", cwd=str(work))
    await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities(),
                                                         root_uri=work.as_uri()))
    client.initialized(types.InitializedParams())
    small = work / "model.py"
    small.write_text(SMALL)
    uri = small.as_uri()
    t0 = time.perf_counter()
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="python", version=1, text=SMALL)))
    static_cold = await until(uri, lambda c: "NN101" in c) - t0
    t0 = time.perf_counter()
    drain()
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    await until(uri, lambda c: "NN202" in c)
    dyn_first = (await log_line(r"graph and probe passes on model.py"))[0] - t0
    since_start = time.perf_counter() - t_start

    big = work / "big.py"
    text = big_file()
    big.write_text(text)
    buri = big.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=buri, language_id="python", version=1, text=text)))
    await until(buri, lambda c: "NN101" in c)
    warm, warm_cpu = [], []
    for i in range(args.repeat):
        drain()
        edited = text + f"\n# edit {i}\n"
        t0 = time.perf_counter()
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=buri, version=2 + i),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=edited)]))
        warm.append(await until(buri, lambda c: "NN101" in c) - t0)
        msg = (await log_line(r"source pass on big.py"))[1]
        warm_cpu.append(float(re.search(r"\((\d+) ms CPU\)", msg).group(1)))
    dyn_warm = []
    for i in range(max(1, args.repeat // 2)):
        t0 = time.perf_counter()
        drain()
        client.text_document_did_save(types.DidSaveTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        dyn_warm.append((await log_line(r"graph and probe passes on model.py"))[0] - t0)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    lines = text.count("\n")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"static, first didOpen (small file, cold)      : {1000 * static_cold:7.0f} ms")
    print(f"static, didChange of a {lines}-line file (warm)  : {1000 * statistics.median(warm):7.0f} ms median of "
          f"{len(warm)} (min {1000 * min(warm):.0f}; target <= 300 ms, {1000 * 0.05:.0f} ms debounce included); "
          f"the pass itself {statistics.median(warm_cpu):.0f} ms CPU")
    print(f"dynamic, first didSave -> NN202                : {dyn_first:7.2f} s  ({since_start:.1f} s after start-up)")
    print(f"dynamic, later didSave -> NN202 (warm worker)  : {statistics.median(dyn_warm):7.2f} s median of {len(dyn_warm)}")


if __name__ == "__main__":
    asyncio.run(main())
