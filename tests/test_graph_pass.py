"""The graph pass: tracing (fx and the hook fallback), shapes on the meta device, the
graph rules on the fixtures, and the in-process API ``run_graph``."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from nnlint import engine, registry  # noqa: E402
from nnlint.config import Config  # noqa: E402
from nnlint.example import Example  # noqa: E402
from nnlint.passes import graph, loader, locate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GRAPH_FIXTURES = ROOT / "fixtures" / "graph"
EXPECT = re.compile(r"#\s*expect:\s*((?:NN\d{3}[\s,]*)+)")

BUGGY = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class Buggy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 8, 3, padding=1)
        self.unused = nn.Linear(8, 8)
        self.net = nn.Sequential(
            nn.Linear(8, 32),
            nn.Linear(32, 4),
        )
        self.wide = nn.Linear(8, 9000)

    def forward(self, x, extra):
        h = self.conv1(x)
        h = self.conv2(x)
        h = F.relu(F.relu(h)).mean((2, 3))
        return self.net(h), self.wide(h)
"""
#: (code, line) each rule must report on BUGGY, on fx and on the hook fallback alike
BUGGY_FINDINGS = {("NN202", 11), ("NN202", 19), ("NN204", 14), ("NN205", 21), ("NN206", 16), ("NN207", 18)}


def expectations(folder: Path) -> set[tuple[str, int, str]]:
    out = set()
    for path in sorted(folder.glob("*.py")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = EXPECT.search(line)
            if m:
                # the graph tests select NN0 and NN2; markers of other passes are checked
                # by tests/test_fixtures.py's full run
                out.update((path.name, i, code) for code in re.findall(r"NN\d{3}", m.group(1))
                           if code.startswith(("NN0", "NN2")))
    return out


def _write(tmp_path: Path, source: str, name: str = "buggy.py") -> tuple[object, str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return loader.import_file(str(path)), str(path)


def _graph_rules():
    return [r() for r in registry.all_rules().values() if r.pass_ == "graph"]


def _findings(ctx) -> set[tuple[str, int]]:
    diags, crashes = graph.run_rules(ctx, _graph_rules())
    assert not crashes, crashes
    return {(d.code, d.line) for d in diags if d.code != "NN208"}


# ---------------------------------------------------------------------------------------
# in-process


@pytest.fixture(scope="module")
def buggy(tmp_path_factory):
    module, path = _write(tmp_path_factory.mktemp("buggy"), BUGGY)
    return module, path


def _inputs(device="cpu"):
    return (torch.randn(4, 3, 8, 8, device=device), torch.randn(4, 2, device=device)), {}


def test_fx_trace_maps_nodes_to_user_lines(buggy):
    module, path = buggy
    ctx = graph.build_context(module.Buggy(), *_inputs(), path=path, model_name="Buggy")
    assert not ctx.fallback and ctx.failure is None
    lines = {n.target: n.line for n in ctx.nodes if n.op == "call_module"}
    assert lines["conv1"] == 19 and lines["conv2"] == 20 and lines["net.0"] == 22
    assert _findings(ctx) == BUGGY_FINDINGS


def test_hook_fallback_finds_the_same(buggy):
    module, path = buggy
    model = module.Buggy()
    user = graph.UserFile(path)
    trace = graph.trace_eager(model, *_inputs(), user)
    ctx = graph.GraphContext(path=path, model_name="Buggy", model=model, trace=trace,
                             source=graph.SourceFacts(Path(path).read_text()), user=user, fallback=True)
    assert _findings(ctx) == BUGGY_FINDINGS


def test_meta_device_needs_no_memory_and_finds_the_same(buggy):
    module, path = buggy
    model = loader.build_meta(module.Buggy)
    assert all(p.device.type == "meta" for p in model.parameters())
    ctx = graph.build_context(model, *_inputs("meta"), path=path, model_name="Buggy")
    assert ctx.nodes[-1].op == "output" and {s for s in ctx.output_shapes} == {(4, 4), (4, 9000)}
    assert _findings(ctx) == BUGGY_FINDINGS


def test_shape_failure_names_layer_shapes_and_line(tmp_path):
    module, path = _write(tmp_path, """
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(10, 20)
                self.fc2 = nn.Linear(30, 2)

            def forward(self, x):
                return self.fc2(self.fc1(x).relu())
    """)
    for device in ("cpu", "meta"):
        model = loader.build_meta(module.Net) if device == "meta" else module.Net()
        ctx = graph.build_context(model, (torch.randn(8, 10, device=device),), {}, path=path, model_name="Net",
                                  inputs_desc="(8, 10)")
        assert ctx.failure is not None and ctx.failure.kind == "shape" and ctx.failure.module == "fc2"
        diags = [d for d in graph.run_rules(ctx, _graph_rules())[0]]
        assert [(d.code, d.line) for d in diags] == [("NN201", 7)]
        assert "fc2 = Linear(30→2) got (8, 20)" in diags[0].message and "called at line 10" in diags[0].message


def test_graph_run_restores_the_model(tmp_path):
    module, path = _write(tmp_path, """
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.bn = nn.BatchNorm1d(4)
                self.drop = nn.Dropout(0.5)

            def forward(self, x):
                return self.drop(self.bn(x))
    """)
    model = module.Net()
    model.eval()
    model.bn.train()
    before = model.bn.running_mean.clone()
    x = torch.randn(8, 4) + 5
    rng = torch.get_rng_state()
    graph.build_context(model, (x,), {}, path=path, model_name="Net")
    assert torch.equal(model.bn.running_mean, before)
    assert torch.equal(torch.get_rng_state(), rng)
    assert not model.training and model.bn.training and not model.drop.training


def test_run_graph_api_returns_sizes_for_the_probe(buggy):
    module, path = buggy
    diags, info = graph.run_graph(Example(model=module.Buggy(), inputs=_inputs()[0]), _graph_rules(), path, "Buggy")
    assert {(d.code, d.line) for d in diags if d.code != "NN208"} == BUGGY_FINDINGS
    assert all(d.path == path and d.model == "Buggy" for d in diags)
    assert info["parameters"] == sum(p.numel() for p in module.Buggy().parameters())
    assert info["estimated_bytes"] > info["param_bytes"] > 0 and not info["fallback"]


def test_locate_sequential_items_and_preferred_file(buggy):
    module, path = buggy
    model = module.Buggy()
    assert locate.module_line(model, "net.1")[1] == 14
    assert locate.module_line(model, "net.1.weight")[1] == 14
    assert locate.module_line(model, "conv2", prefer_path=path) == (path, 10)
    assert locate.module_line(torch.nn.Linear(2, 2), "weight", prefer_path=path) == (None, None)


def test_source_facts_conditional_use():
    facts = graph.SourceFacts(textwrap.dedent("""
        def forward(self, x):
            aux = self.aux(x)
            out = self.head(x)
            if self.use_aux:
                return out, aux
            y = self.a(x)
            y = self.b(x)
            return out
    """))
    assert facts.used_only_conditionally(3)
    assert not facts.used_only_conditionally(4)
    assert not facts.used_only_conditionally(7)  # overwritten unread: the copy-paste bug
    assert [r.conditional for r in facts.refs["use_aux"]] == [True]


# ---------------------------------------------------------------------------------------
# end to end: one engine run per fixture folder (child processes, real torch)


def _rules(*selectors: str):
    return registry.select(list(selectors))


@pytest.mark.slow
def test_graph_fixtures_report_exactly_the_marked_lines():
    result = engine.lint([str(GRAPH_FIXTURES)], Config(timeout=120), engine.Options(jobs=2), _rules("NN0", "NN2"))
    assert not result.errors, result.errors
    got = {(Path(d.path).name, d.line, d.code) for d in result.diagnostics}
    assert got == expectations(GRAPH_FIXTURES)
    by_file = {}
    for d in result.diagnostics:
        by_file.setdefault(Path(d.path).name, []).append(d)
    (nn201,) = by_file["wrong_in_features.py"]
    assert "fc1 = Linear(9216→128) got (8, 1600)" in nn201.message and "input sizes that fit: 54×54" in nn201.message
    assert nn201.module == "fc1" and nn201.model == "Net" and nn201.path.endswith("wrong_in_features.py")
    (nn002,) = by_file["needs_declaration.py"]
    assert "def nnlint_examples():" in nn002.message and "[[tool.nnlint.models]]" in nn002.message
    assert by_file.get("nanogpt.py", []) == []  # GPT(GPTConfig()), zero configuration, traced whole
    # every model was built and checked except the one that needs a declaration
    assert result.models == 19 and result.models_not_checked == 1 and result.models_not_probed == 0
    assert not result.notes, result.notes


@pytest.mark.slow
def test_seed_copy_paste_gets_nn202_and_its_fix_is_clean():
    seed = ROOT / "fixtures" / "seed"
    result = engine.lint([str(seed / "copy_paste_conv.py"), str(seed / "copy_paste_conv_fixed.py")], Config(),
                         engine.Options(jobs=2), _rules("NN2"))
    assert not result.errors, result.errors
    assert [(Path(d.path).name, d.line, d.code, d.module) for d in result.diagnostics] == [
        ("copy_paste_conv.py", 17, "NN202", "conv1")]


def test_a_library_function_of_the_same_name_is_not_a_reference(tmp_path):
    """`F.softmax(...)` in forward is torch's function, not a read of `self.softmax`: the
    message must not claim forward refers to the unused module."""
    module, path = _write(tmp_path, """
        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        class Attn(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(16, 16)
                self.softmax = nn.Softmax(dim=-1)

            def forward(self, x):
                return F.softmax(self.proj(x) @ x.transpose(-1, -2), dim=-1) @ x
    """, name="attn.py")
    ctx = graph.build_context(module.Attn(), (torch.randn(2, 4, 16),), {}, path=path, model_name="Attn")
    diags, _ = graph.run_rules(ctx, [registry.all_rules()["NN202"]()])
    (d,) = diags
    assert d.line == 9 and "nothing but __init__ refers to it" in d.message, d.message
