"""The probe pass (nnlint/passes/probe/) and the NN3/NN5 rules, run in-process.

`tests/test_rule_examples.py` runs the same VALID/INVALID examples through the whole
engine (a child process per file); here they run straight through `run_probe`, which is
what that child process calls, so a probe failure shows up with a plain traceback. The
seed fixtures in `fixtures/probe/` carry `# expect: NNxxx` markers on the lines that must
be flagged; every other probe finding in them is a failure (clean twins have no marker).
"""

from __future__ import annotations

import importlib.util
import itertools
import random
import re
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from nnlint import registry  # noqa: E402
from nnlint.example import Example  # noqa: E402
from nnlint.passes import probe as probe_mod  # noqa: E402
from nnlint.passes.graph import run_graph  # noqa: E402
from nnlint.passes.probe import ProbeError, run_probe  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "probe"
RULES = {c: r for c, r in registry.all_rules().items() if r.pass_ in ("probe", "data")}
_counter = itertools.count()


def _load(path: Path):
    name = f"_nnlint_probe_case_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # kept: inspect (and so locate.module_line) finds classes' files through it
    spec.loader.exec_module(mod)
    return mod


def _probe_file(path: Path, rules, settings=None):
    mod = _load(path)
    diags = []
    examples = mod.nnlint_examples()
    for i, d in enumerate([examples] if isinstance(examples, dict) else examples):
        ex = Example.from_dict(d)
        name = ex.name or type(ex.model).__name__
        # what the worker hands the probe: the modules NN202 reports (output discarded)
        _, info = run_graph(ex, [], str(path), name, {})
        ex.meta["unused_modules"] = info["unused_modules"]
        out = run_probe(ex, rules, {"device": "cpu", "batch_size": 8, **(settings or {})}, str(path), name)
        assert not out.errors, out.errors
        diags.extend(out)
    return diags


def _cases(kind: str):
    for code, rule in RULES.items():
        examples = rule.valid_examples() if kind == "valid" else rule.INVALID
        for i, ex in enumerate(examples):
            yield pytest.param(rule, ex, id=f"{code}-{kind}{i}")


def _run_example(rule, example, tmp_path):
    path = tmp_path / "example.py"
    path.write_text(textwrap.dedent(example.source).lstrip("\n"), encoding="utf-8")
    return _probe_file(path, [rule()], dict(example.config))


@pytest.mark.parametrize("rule,example", list(_cases("invalid")))
def test_invalid_example_fires(rule, example, tmp_path):
    diags = [d for d in _run_example(rule, example, tmp_path) if d.code == rule.code]
    assert diags, f"{rule.code} did not fire on:\n{textwrap.dedent(example.source)}"
    at_line = [d for d in diags if d.line == example.line]
    assert at_line, f"{rule.code} fired at lines {[d.line for d in diags]}, expected {example.line}: {[d.message for d in diags]}"
    if example.contains:
        assert any(example.contains in d.message for d in at_line), [d.message for d in at_line]
    for d in at_line:
        assert d.evidence, "probe findings carry measured evidence"
        assert d.pass_ == rule.pass_


@pytest.mark.parametrize("rule,example", list(_cases("valid")))
def test_valid_example_is_silent(rule, example, tmp_path):
    diags = [d for d in _run_example(rule, example, tmp_path) if d.code == rule.code]
    assert not diags, f"false positive ({example.note}): " + "; ".join(f"{d.line}: {d.message}" for d in diags)


# ---------------------------------------------------------------------------------------
# seed fixtures and clean twins


def _expected(path: Path) -> set[tuple[str, int]]:
    out = set()
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = re.search(r"#\s*expect:\s*([A-Z0-9, ]+)", line)
        if m:
            out |= {(c.strip(), i) for c in m.group(1).split(",") if c.strip()}
    return out


FIXTURE_FILES = sorted(FIXTURES.glob("*.py"))


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.stem for p in FIXTURE_FILES])
def test_fixture(path):
    rules = [r() for c, r in RULES.items() if r.pass_ == "probe" and not r.opt_in]
    diags = _probe_file(path, rules)
    got = {(d.code, d.line) for d in diags}
    # markers of the other passes are checked by tests/test_fixtures.py's full run
    expected = {(c, line) for c, line in _expected(path) if c in RULES and RULES[c].pass_ == "probe"}
    missing = expected - got
    assert not missing, f"expected {sorted(missing)}; got {[(d.code, d.line, d.message) for d in diags]}"
    # every marker's finding carries numbers
    for d in diags:
        assert d.evidence and d.path == str(path)
    if path.stem.startswith("clean_"):
        assert not diags, "clean twin flagged: " + "; ".join(f"{d.code} {d.line}: {d.message}" for d in diags)


def test_seed_fixtures_have_clean_twins():
    seeds = [p for p in FIXTURE_FILES if p.stem.startswith("seed_")]
    assert len(seeds) >= 6
    for p in seeds:
        assert _expected(p), f"{p.name} has no '# expect:' marker"
        assert (FIXTURES / p.name.replace("seed_", "clean_")).exists(), f"{p.name} has no clean twin"


def test_weights_100_evidence_has_per_layer_gradient_norms():
    diags = _probe_file(FIXTURES / "seed_weights_100.py", [RULES["NN304"](), RULES["NN302"]()])
    d = next(d for d in diags if d.code in ("NN304", "NN302"))
    norms = d.evidence["grad_norms"]
    assert norms["conv1"] > norms["conv2"] > 0  # conv1 >> conv2, as in the article


# ---------------------------------------------------------------------------------------
# the probe leaves the model as it found it


class _BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.5)
        self.frozen = nn.Linear(8, 8)
        self.fc = nn.Linear(8, 10)
        for p in self.frozen.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x))).mean((2, 3))
        return self.fc(self.drop(self.frozen(h)))


def _all_rules():
    return [r() for r in RULES.values()]


def test_state_restored():
    model = _BNNet()
    model.eval()
    model.fc.train()  # mixed modes must come back exactly
    model.fc.weight.grad = torch.full_like(model.fc.weight, 7.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = {n: m.training for n, m in model.named_modules()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    inputs = torch.randn(4, 3, 8, 8)
    torch.manual_seed(123)
    random.seed(5)
    cpu_state = torch.get_rng_state()
    py_state = random.getstate()
    run_probe(Example(model=model, inputs=inputs), _all_rules(),
              {"device": "cpu", "batch_size": 8, "overfit": True}, __file__, "BNNet")
    assert torch.equal(torch.get_rng_state(), cpu_state)
    assert random.getstate() == py_state
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    after = model.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k], v), f"{k} changed (BatchNorm stats / weights must be restored)"
    assert torch.equal(model.fc.weight.grad, torch.full_like(model.fc.weight, 7.0))
    assert all(p.grad is None for n, p in model.named_parameters() if n != "fc.weight")
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks


def test_state_restored_when_user_code_fails():
    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            self.fc(x)
            raise ValueError("user bug")

    model = Boom()
    model.eval()
    with pytest.raises(ProbeError) as info:
        run_probe(Example(model=model, inputs=torch.randn(4, 4)), _all_rules(), {"device": "cpu"}, __file__, "Boom")
    assert info.value.phase == "forward"
    assert not model.training
    assert not model.fc._forward_hooks and model.fc.weight.grad is None
    assert not torch.overrides._get_current_function_mode_stack()


def test_deterministic():
    def run():
        torch.manual_seed(0)
        model = _BNNet()
        torch.manual_seed(999)  # the caller's RNG must not matter
        diags = run_probe(Example(model=model, inputs=torch.randn(4, 3, 8, 8)), _all_rules(), {"device": "cpu"},
                          __file__, "BNNet")
        return [d.to_dict() for d in diags]

    assert run() == run()


def test_no_inputs_is_reported_not_raised():
    out = run_probe(Example(model=nn.Linear(3, 3)), _all_rules(), {"device": "cpu"}, __file__, "Linear")
    assert list(out) == [] and out.errors


def test_probe_skipped_over_memory_budget(tmp_path, monkeypatch):
    """NN006 comes from one place, the worker, which measures the model before running it."""
    import io
    import json

    from nnlint import cli

    (tmp_path / "pyproject.toml").write_text("[tool.nnlint]\nprobe-memory-fraction = 1e-12\n")
    (tmp_path / "m.py").write_text(
        "import torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(3, 2)\n\n    def forward(self, x):\n        return self.fc(x)\n"
    )
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    cli.main(["m.py", "--format", "json", "--no-cache", "--select", "NN0,NN3"], stdout=out, stderr=err)
    report = json.loads(out.getvalue())
    skipped = [d for d in report["diagnostics"] if d["code"] == "NN006"]
    assert [(d["line"], d["severity"]) for d in skipped] == [(4, "info")], (report, err.getvalue())
    assert "probe rules did not run" in skipped[0]["message"]
    assert skipped[0]["evidence"]["estimated_bytes"] > 0


def test_rebatches_small_inputs_and_falls_back():
    class Fixed(nn.Module):  # only works with batch 2
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 3)

        def forward(self, x):
            return self.fc(x.reshape(1, -1))

    ctx, _ = probe_mod.Probe(Example(model=Fixed(), inputs=torch.randn(2, 3)), [RULES["NN301"]()],
                             {"device": "cpu", "batch_size": 8}, __file__, "Fixed").run()
    assert ctx.batch_size == 2
    ctx, _ = probe_mod.Probe(Example(model=nn.Linear(3, 5), inputs=torch.randn(1, 3)), [RULES["NN301"]()],
                             {"device": "cpu", "batch_size": 8}, __file__, "Linear").run()
    assert ctx.batch_size == 8 and ctx.input_varies


def test_loss_choice_is_reported():
    ctx, _ = probe_mod.Probe(Example(model=nn.Linear(3, 5), inputs=torch.randn(8, 3)), [RULES["NN301"]()],
                             {"device": "cpu"}, __file__, "Linear").run()
    assert ctx.loss.kind == "cross_entropy" and ctx.loss.classes == 5 and "inferred" in ctx.loss.source
    ctx, _ = probe_mod.Probe(Example(model=nn.Conv2d(3, 3, 1), inputs=torch.randn(8, 3, 4, 4)), [RULES["NN301"]()],
                             {"device": "cpu"}, __file__, "Conv").run()
    assert ctx.loss.kind == "mean_square"
    ex = Example(model=nn.Linear(3, 5), inputs=torch.randn(8, 3), meta={"loss_name": "MSELoss"})
    ctx, _ = probe_mod.Probe(ex, [RULES["NN301"]()], {"device": "cpu"}, __file__, "Linear").run()
    assert ctx.loss.kind == "mse" and ctx.loss.source == "file"


def test_overfit_runs_only_when_asked():
    rule = RULES["NN312"]()
    ex = lambda: Example(model=nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3)), inputs=torch.randn(8, 4))
    ctx, _ = probe_mod.Probe(ex(), [rule], {"device": "cpu"}, __file__, "M").run()
    assert ctx.overfit is None
    ctx, _ = probe_mod.Probe(ex(), [rule], {"device": "cpu", "overfit": True, "overfit_steps": 5}, __file__, "M").run()
    assert ctx.overfit["steps"] == 5


def test_extra_runs_only_for_rules_that_need_them():
    ctx, _ = probe_mod.Probe(Example(model=nn.Linear(3, 5), inputs=torch.randn(8, 3)), [RULES["NN305"]()],
                             {"device": "cpu"}, __file__, "Linear").run()
    assert ctx.batch_jacobian is None and ctx.second_forward is None


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_same_checks():
    mod = _load(FIXTURES / "seed_dead_relu.py")
    cpu, cuda = [], []
    for d in mod.nnlint_examples():
        ex = Example.from_dict(d)
        model = ex.model
        out = run_probe(ex, _all_rules(), {"device": "cuda"}, str(FIXTURES / "seed_dead_relu.py"), "Net")
        assert all(p.device.type == "cpu" for p in model.parameters()), "the model goes back where it was"
        cuda.extend((x.code, x.line) for x in out)
        assert all(x.evidence.get("probe", {}).get("device", "").startswith("cuda") for x in out)
        cpu.extend((x.code, x.line) for x in run_probe(ex, _all_rules(), {"device": "cpu"}, str(FIXTURES / "seed_dead_relu.py"), "Net"))
    assert sorted(cpu) == sorted(cuda)


def test_cuda_request_without_cuda_falls_back_with_a_note():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    out = run_probe(Example(model=nn.Linear(3, 5), inputs=torch.randn(8, 3)), _all_rules(), {"device": "cuda"},
                    __file__, "Linear")
    assert any("CUDA was requested" in n for n in out.notes)
