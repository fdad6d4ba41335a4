"""The torch.export capture (issue 10): models fx cannot trace are exported on fake
tensors and converted to the same GNode graph, so every graph rule sees the same thing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from nnlint import registry  # noqa: E402
from nnlint.passes import graph, loader  # noqa: E402
from nnlint.passes.graph import capture_export  # noqa: E402
from tests.test_graph_pass import BUGGY, BUGGY_FINDINGS  # noqa: E402


def _graph_rules():
    return [r() for r in registry.all_rules().values() if r.pass_ == "graph"]


def _findings(ctx) -> set[tuple[str, int]]:
    diags, crashes = graph.run_rules(ctx, _graph_rules())
    assert not crashes, crashes
    return {(d.code, d.line) for d in diags if d.code != "NN208"}


def _write(tmp_path: Path, source: str, name: str) -> tuple[object, str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return loader.import_file(str(path)), str(path)


def _ctx(model, args, path, fallback=False):
    user = graph.UserFile(path)
    trace, why = capture_export.trace_export(model, args, {}, user)
    assert trace is not None, why
    return graph.GraphContext(path=path, model_name=type(model).__name__, model=model, trace=trace,
                              source=graph.SourceFacts(Path(path).read_text()), user=user, fallback=fallback)


def test_export_capture_finds_what_fx_finds(tmp_path):
    module, path = _write(tmp_path, BUGGY, "buggy.py")
    ctx = _ctx(module.Buggy(), (torch.randn(4, 3, 8, 8), torch.randn(4, 2)), path)
    lines = {n.target: n.line for n in ctx.nodes if n.op == "call_module"}
    assert lines["conv1"] == 19 and lines["conv2"] == 20 and lines["net.0"] == 22
    assert _findings(ctx) == BUGGY_FINDINGS


CONTROL_FLOW = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class Gpt(nn.Module):
    def __init__(self, block_size=16):
        super().__init__()
        self.block_size = block_size
        self.emb = nn.Embedding(50, 16)
        self.fc = nn.Linear(16, 16)
        self.fc2 = nn.Linear(16, 16)
        self.head = nn.Linear(16, 50)

    def forward(self, idx):
        b, t = idx.size()
        assert t <= self.block_size, "too long"
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.emb(idx) + pos.unsqueeze(-1)
        for _ in range(2):
            x = x + F.gelu(self.fc(x))
        F.relu(x)
        return self.head(self.fc2(x))
"""


def test_control_flow_on_sizes_is_traced_whole(tmp_path):
    module, path = _write(tmp_path, CONTROL_FLOW, "gpt.py")
    model = module.Gpt()
    ctx = graph.build_context(model, (torch.randint(0, 50, (2, 8)),), {}, path=path, model_name="Gpt")
    assert not ctx.fallback and ctx.failure is None, ctx.trace_error
    assert [n.line for n in ctx.nodes if n.op == "call_module" and n.target == "fc"] == [21, 21]
    found = _findings(ctx)
    assert ("NN203", 22) in found  # F.relu(x) as a statement: its result is discarded
    assert ("NN204", 23) in found  # head directly follows fc2
    assert not any(code == "NN202" for code, _ in found)


def test_tied_modules_count_as_used(tmp_path):
    module, path = _write(tmp_path, """
import torch
import torch.nn as nn


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.shared = nn.Embedding(20, 8)
        self.encoder = nn.ModuleDict({"embed": self.shared})
        self.head = nn.Linear(8, 20)

    def forward(self, ids):
        if ids.shape[1] > 100:
            raise ValueError("too long")
        return self.head(self.encoder["embed"](ids))
""", "tied.py")
    model = module.Tied()
    ctx = graph.build_context(model, (torch.randint(0, 20, (2, 5)),), {}, path=path, model_name="Tied")
    assert "shared" in ctx.executed
    assert not [c for c, _ in _findings(ctx) if c == "NN202"]
