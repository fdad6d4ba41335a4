"""Model discovery, construction and input inference (nnlint.passes.loader), in-process:
no child process, so these run in milliseconds once torch is imported."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from nnlint.passes import loader  # noqa: E402


def _module(tmp_path: Path, source: str, name: str = "user_model.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return loader.import_file(str(path)), str(path), path.read_text()


def _cands(tmp_path, source, **req):
    module, path, text = _module(tmp_path, source, name=req.pop("name", "user_model.py"))
    return loader.find_candidates(module, path, text, {"batch_size": 8, **req}), module


def test_scan_source_finds_calls_inputs_submodules_and_loss():
    facts = loader.scan_source(textwrap.dedent("""
        import torch, torch.nn as nn
        class Block(nn.Module): ...
        class Base(nn.Module): ...
        class Net(Base):
            def __init__(self):
                self.b = Block()
        criterion = nn.CrossEntropyLoss()
        if __name__ == "__main__":
            net = Net(vocab=10)
            x = torch.randn(2, 3)
            net(x)
    """))
    assert facts.classes["Block"].used_in == {"Net"}
    assert facts.subclassed == {"Base"}
    assert facts.loss_name == "CrossEntropyLoss"
    (bindings, call, use), = facts.classes["Net"].calls
    assert call.keywords[0].arg == "vocab" and use is not None and use.lineno == 12


def test_auto_discovery_skips_blocks_bases_and_imports(tmp_path):
    cands, _ = _cands(tmp_path, """
        import torch.nn as nn
        from torch.nn import Linear as ImportedLinear

        class BaseModel(nn.Module):
            def forward(self, x):
                raise NotImplementedError

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
            def forward(self, x):
                return self.fc(x)

        class Net(BaseModel):
            def __init__(self):
                super().__init__()
                self.block = Block()
            def forward(self, x):
                return self.block(x)
    """)
    assert [c.name for c in cands] == ["Net"]
    assert cands[0].line == 15


def test_literal_call_in_main_gives_kwargs_and_input(tmp_path):
    cands, module = _cands(tmp_path, """
        import torch
        import torch.nn as nn

        class Model(nn.Module):
            def __init__(self, vocab_size, dim):
                super().__init__()
                self.emb = nn.Embedding(vocab_size, dim)
            def forward(self, x):
                return self.emb(x)

        if __name__ == "__main__":
            m = Model(vocab_size=5000, dim=2 * 16)
            tokens = torch.randint(0, 5000, (1, 40))
            m(tokens)
    """)
    (c,) = cands
    desc, build, spec = c.meta["attempts"][0]
    model = loader.build_meta(build)
    assert model.emb.weight.shape == (5000, 32) and model.emb.weight.device.type == "meta"
    (t,) = spec.args
    assert t.shape == (8, 40) and t.dtype == "int64" and (t.low, t.high) == (0, 5000)  # batch 1 -> 8


def test_config_dataclass_with_defaults_builds_nanogpt_style(tmp_path):
    cands, _ = _cands(tmp_path, """
        from dataclasses import dataclass
        import torch.nn as nn

        @dataclass
        class GPTConfig:
            vocab_size: int = 100
            n_embd: int = 8

        class GPT(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.wte = nn.Embedding(config.vocab_size, config.n_embd)
            def forward(self, idx):
                return self.wte(idx)
    """)
    (c,) = cands
    desc, build, _ = c.meta["attempts"][0]
    assert desc == "GPT(config=GPTConfig())"
    assert loader.build_meta(build).wte.num_embeddings == 100


def test_required_arguments_without_a_call_give_a_declaration_hint(tmp_path):
    (c,), _ = _cands(tmp_path, """
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self, backbone, num_classes):
                super().__init__()
            def forward(self, x):
                return x
    """)
    assert "'backbone', 'num_classes'" in c.problem
    hint = loader.declaration_hint(c, "pkg/model.py", None, 8)
    assert "def nnlint_examples():\n        model = Net(backbone=..., num_classes=...)\n" in hint
    assert 'target = "pkg/model.py:Net"' in hint


def test_precedence_cli_over_pyproject_over_examples_over_auto(tmp_path):
    source = """
        import torch
        import torch.nn as nn

        class A(nn.Module):
            def __init__(self, n=4):
                super().__init__()
                self.fc = nn.Linear(n, 2)
            def forward(self, x):
                return self.fc(x)

        class B(A):
            pass

        def nnlint_examples():
            return [{"model": A(3), "inputs": torch.randn(2, 3), "name": "small"}]
    """
    cli, _ = _cands(tmp_path, source, name="m1.py", model="A", kwargs={"n": 6}, input_shape=[4, 6])
    assert [(c.origin, c.name) for c in cli] == [("cli", "A")]
    assert cli[0].inputs.args[0].shape == (4, 6)
    declared, _ = _cands(tmp_path, source, name="m2.py",
                         declared=[{"target": "m2.py:A", "kwargs": {"n": 5}, "inputs": [{"shape": [2, 5]}],
                                    "loss": "MSELoss", "classes": 2}])
    assert [(c.origin, c.name, c.loss_name, c.classes) for c in declared] == [("pyproject", "A", "MSELoss", 2)]
    examples, _ = _cands(tmp_path, source, name="m3.py")
    assert [c.origin for c in examples] == ["examples"]


def test_declared_target_missing_from_file_is_a_problem(tmp_path):
    (c,), _ = _cands(tmp_path, "import torch.nn as nn\n", declared=[{"target": "x.py:Nope"}])
    assert c.problem and "defines no 'Nope'" in c.problem


@pytest.mark.parametrize("layer,batch_first,expected", [
    ("nn.Linear(20, 3)", None, ((8, 20), "float32")),
    ("nn.Embedding(50, 4)", None, ((8, 13), "int64")),
    ("nn.LSTM(12, 4, batch_first=True)", True, ((8, 13, 12), "float32")),
    ("nn.GRU(12, 4)", False, ((13, 8, 12), "float32")),
])
def test_infer_inputs_from_the_first_layer(tmp_path, layer, batch_first, expected):
    module, _, _ = _module(tmp_path, f"""
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.first = {layer}
            def forward(self, x):
                out = self.first(x)
                return out[0] if isinstance(out, tuple) else out
    """, name=f"infer_{abs(hash(layer))}.py")
    model = loader.build_meta(module.Net)
    res = loader.infer_inputs(model, 8)
    assert res.error is None, res.error
    (t,) = res.spec.args
    assert (t.shape, t.dtype) == expected
    if t.dtype == "int64":
        assert t.high == 50


def test_conv_input_size_search_and_bisection(tmp_path):
    module, _, _ = _module(tmp_path, """
        import torch.nn as nn
        import torch.nn.functional as F

        class Cifar(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3, padding=1)
                self.fc = nn.Linear(8 * 16 * 16, 10)
            def forward(self, x):
                return self.fc(F.max_pool2d(self.conv(x), 2).flatten(1))

        class Odd(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(1, 4, 3)
                self.fc = nn.Linear(4 * 52 * 52, 10)
            def forward(self, x):
                return self.fc(self.conv(x).flatten(1))
    """, name="sizes.py")
    cifar = module.Cifar()  # real CPU tensors, as the worker does for small models
    res = loader.infer_inputs(cifar, 8, device="cpu")
    assert res.error is None and res.spec.args[0].shape == (8, 3, 32, 32)
    odd = module.Odd()
    res = loader.infer_inputs(odd, 8, device="cpu")
    assert res.error is not None  # 54x54 fits, but it is not a common size: reported, not guessed
    assert res.spec.search["fits"] == [54] and res.spec.search["exhausted"]
    assert loader.search_fitting_sizes(odd, res.spec, "cpu") == [54]


def test_a_view_sized_for_one_input_keeps_the_size_search_going(tmp_path):
    """PyTorch's 60-minute-blitz CIFAR net: `x.view(-1, 16 * 5 * 5)` fails at 28x28
    before any Linear is reached; the search must go on to 32x32, not report NN201."""
    module, _, _ = _module(tmp_path, """
        import torch.nn as nn
        import torch.nn.functional as F

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(3, 6, 5)
                self.pool = nn.MaxPool2d(2, 2)
                self.conv2 = nn.Conv2d(6, 16, 5)
                self.fc1 = nn.Linear(16 * 5 * 5, 120)
                self.fc2 = nn.Linear(120, 10)
            def forward(self, x):
                x = self.pool(F.relu(self.conv1(x)))
                x = self.pool(F.relu(self.conv2(x)))
                x = x.view(-1, 16 * 5 * 5)
                return self.fc2(F.relu(self.fc1(x)))
    """, name="blitz.py")
    for device in ("cpu", "meta"):
        model = module.Net().to(device) if device == "cpu" else loader.build_meta(module.Net)
        res = loader.infer_inputs(model, 8, device=device)
        assert res.error is None and res.spec.args[0].shape == (8, 3, 32, 32), (device, res.error)


def test_two_inputs_each_from_its_own_layer(tmp_path):
    module, _, _ = _module(tmp_path, """
        import torch
        import torch.nn as nn

        class Fusion(nn.Module):
            def __init__(self):
                super().__init__()
                self.img = nn.Conv2d(3, 4, 3)
                self.tab = nn.Linear(7, 4)
            def forward(self, image, table):
                return self.img(image).mean((1, 2, 3)) + self.tab(table).sum(1)
    """, name="fusion.py")
    res = loader.infer_inputs(module.Fusion(), 8, device="cpu")
    assert res.error is None
    image, table = res.spec.args
    assert image.shape[:2] == (8, 3) and table.shape == (8, 7)


def test_import_failure_points_at_the_users_line(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import os\n\ndef helper():\n    return int('x')\n\nVALUE = helper()\n\n"
                    "class Net:\n    def width(self):\n        return VALUE\n")
    with pytest.raises(loader.ImportFailure) as info:
        loader.import_file(str(path))
    assert info.value.line == 4 and isinstance(info.value.exc, ValueError)


def test_import_file_supports_relative_imports_in_a_package(tmp_path):
    pkg = tmp_path / "mypkg_rel"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "layers.py").write_text("WIDTH = 7\n")
    (pkg / "model.py").write_text("from .layers import WIDTH\n")
    module = loader.import_file(str(pkg / "model.py"))
    assert module.WIDTH == 7 and module.__name__ == "mypkg_rel.model"


def test_literal_eval_forms():
    import ast

    class Mod:
        __name__ = "m"
        HIDDEN = 64

    ev = loader.LiteralEval(Mod(), {"n": ast.parse("3 * 4", mode="eval").body}, batch_size=8)

    def run(expr):
        return ev.eval(ast.parse(expr, mode="eval").body)

    assert run("(n, HIDDEN // 2, -1)") == (12, 32, -1)
    spec = run("torch.randint(10, (2, n))")
    assert (spec.shape, spec.dtype, spec.high) == ((2, 12), "int64", 10)
    assert run("torch.randn(2, 3, dtype=torch.float16)").dtype == "float16"
    with pytest.raises(Exception):
        run("open('x')")


def test_example_dicts_and_objects():
    from nnlint.example import Example

    lin = torch.nn.Linear(2, 2)
    out = loader.examples_from([{"model": lin, "inputs": torch.zeros(1, 2)}, Example(model=lin)])
    assert [type(e).__name__ for e in out] == ["Example", "Example"]
    with pytest.raises(ValueError, match="unknown key"):
        loader.examples_from({"model": lin, "input": 1})


SCRIPT = """
    import pathlib
    import torch
    import torch.nn as nn

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    HIDDEN = 16
    RAN = pathlib.Path(__file__).with_suffix(".ran")


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, HIDDEN)

        def forward(self, x):
            return self.fc(x)


    model = Net().to(device)
    x = torch.randn(8, 4)  # dropped; forward's own `x` does not need it


    def train(epoch):
        RAN.write_text(str(epoch))
        model.train()


    {work}
"""


@pytest.mark.parametrize("work", [
    "for epoch in range(10**9):\n    train(epoch)",
    "while True:\n    train(0)",
    "train(0)",
    "with torch.no_grad():\n    train(0)",
    "if True:\n    for e in range(3):\n        train(e)",
])
def test_a_training_script_is_not_run_at_import(tmp_path, work):
    """Module-level training (a loop, a `with` block, a call of the script's own function)
    is not executed: its definitions and cheap constants are, and the model is found."""
    module, path, _ = _module(tmp_path, SCRIPT.replace("{work}", work.replace("\n", "\n    ")))
    assert not Path(path).with_suffix(".ran").exists()
    assert module.HIDDEN == 16 and str(module.device) in ("cpu", "cuda")
    assert isinstance(module.model, torch.nn.Module)  # a module-level model is built (and checked), not trained
    assert isinstance(module.Net(), torch.nn.Module)


def test_a_script_is_never_imported_whole_a_value_from_a_loop_is_not_computed(tmp_path):
    """What a model needs is computed when it is a pure function of the file (WIDTH from
    its own helper); what a loop fills (RUNS) is not, and nothing else of the script runs."""
    module, _, _ = _module(tmp_path, """
        import torch.nn as nn

        def width():
            return 16

        WIDTH = width()
        RUNS = []

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, WIDTH)

        for i in range(3):
            RUNS.append(i)
    """)
    assert module.WIDTH == 16 and not hasattr(module, "RUNS") and module.Net().fc.out_features == 16


def test_a_module_without_module_level_work_runs_only_what_its_models_need(tmp_path):
    module, _, _ = _module(tmp_path, """
        import torch.nn as nn
        print("chatter")
        LAYERS = [nn.Linear(2, 2) for _ in range(2)]
        HIDDEN = 3

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(2, HIDDEN)
    """)
    assert module.HIDDEN == 3 and not hasattr(module, "LAYERS")


def test_a_registry_filled_by_a_loop_makes_the_model_nn002_never_a_whole_import(tmp_path):
    path = tmp_path / "registry.py"
    path.write_text(textwrap.dedent("""
        import torch.nn as nn

        ACTIVATIONS = {}
        for name, cls in [("relu", nn.ReLU), ("gelu", nn.GELU)]:
            ACTIVATIONS[name] = cls

        class Net(nn.Module):
            def __init__(self, act="gelu"):
                super().__init__()
                self.fc = nn.Linear(4, 4)
                self.act = ACTIVATIONS[act]()

            def forward(self, x):
                return self.act(self.fc(x))
    """))
    module = loader.import_file(str(path))
    assert module.ACTIVATIONS == {}  # kept (the class reads it), but the loop that fills it is not run
    cands = loader.find_candidates(module, str(path), path.read_text(), {})
    (net,) = cands
    assert net.problem and "ACTIVATIONS" in net.problem and "line 5" in net.problem
