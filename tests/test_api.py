"""The Python API: what the README documents for unit tests.

```python
import nnlint

def test_model_is_healthy():
    nnlint.check(Net(), torch.randn(8, 1, 28, 28)).assert_clean()
```
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = nn.functional

import nnlint  # noqa: E402
from nnlint.passes.probe import ProbeError  # noqa: E402


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.fc1 = nn.Linear(16 * 12 * 12, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = F.max_pool2d(x, 2).flatten(1)
        return self.fc2(F.relu(self.fc1(x)))


class DeadNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 32)
        self.fc2 = nn.Linear(32, 10)
        nn.init.constant_(self.fc1.bias, -100.0)  # every ReLU unit dead

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def test_healthy_model_is_clean():
    # the README's example: a model test that fails when the model is broken
    nnlint.check(Net(), torch.randn(8, 1, 28, 28)).assert_clean()


def test_broken_model_fails_assert_clean_with_a_readable_list():
    report = nnlint.check(DeadNet(), torch.randn(8, 20), select=["NN3"])
    assert "NN305" in report.codes()
    with pytest.raises(AssertionError) as info:
        report.assert_clean()
    text = str(info.value)
    assert "NN305 dead-relu at fc1" in text and "test_api.py:" in text
    d = report.by_code("NN305")[0]
    assert d.path == __file__ and d.module == "fc1"
    assert d.line == DeadNet.__init__.__code__.co_firstlineno + 2  # the `self.fc1 = ...` line
    assert d.evidence["dead_fraction"] == 1.0
    assert "NN305" in str(report)


def test_assert_clean_ignore():
    report = nnlint.check(DeadNet(), torch.randn(8, 20), select=["NN305"])
    report.assert_clean(ignore=["NN305"])


def test_select_ignore_and_thresholds():
    x = torch.randn(8, 20)
    assert nnlint.check(DeadNet(), x, select=["NN305"]).codes() == ["NN305"]
    assert "NN305" not in nnlint.check(DeadNet(), x, select=["NN3"], ignore=["NN305"]).codes()
    # a 100% dead layer passes when the threshold is raised above 1
    assert not nnlint.check(DeadNet(), x, select=["NN305"], thresholds={"NN305": {"dead_fraction": 1.5}})
    with pytest.raises(ValueError, match="unknown threshold"):
        nnlint.check(DeadNet(), x, select=["NN305"], thresholds={"NN305": {"nope": 1}})
    with pytest.raises(ValueError):
        nnlint.check(DeadNet(), x, select=["NN999"])


def test_declared_loss_and_target():
    model = Net()
    scaled = Net()
    scaled.fc2.weight.data *= 1000
    x = torch.randn(8, 1, 28, 28)
    y = torch.randint(0, 10, (8,))
    assert not nnlint.check(model, x, loss=nn.CrossEntropyLoss(), target=y, select=["NN301"])
    report = nnlint.check(scaled, x, loss=nn.CrossEntropyLoss(), target=y, select=["NN301"])
    assert report.codes() == ["NN301"] and report.diagnostics[0].evidence["loss_source"] == "declared"


def test_model_state_is_restored():
    model = Net().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    nnlint.check(model, torch.randn(8, 1, 28, 28), overfit=True)
    assert not model.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in model.parameters())


def test_overfit_probe_via_api():
    class SigmoidHead(Net):
        def forward(self, x):
            return torch.sigmoid(super().forward(x))

    report = nnlint.check(SigmoidHead(), torch.randn(8, 1, 28, 28), select=["NN312"], overfit_steps=15)
    assert report.codes() == ["NN312"]


def test_data_rules_via_api():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (32, 1, 28, 28), generator=g).float()  # raw pixels: NN501
    y = torch.arange(32) % 10 + 1  # labels 1..10 for a 10-class head: 10 is out of range (NN502)
    report = nnlint.check(Net(), x[:8] / 255, select=["NN5"], data=[(x, y)])
    assert sorted(set(report.codes())) == ["NN501", "NN502"]


def test_user_code_errors_propagate():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    with pytest.raises(ProbeError) as info:
        nnlint.check(Broken(), torch.randn(4, 3), select=["NN3"])
    assert isinstance(info.value.__cause__, RuntimeError)


def test_graph_rules_run_in_process_when_available():
    pytest.importorskip("nnlint.passes.graph")

    class Collapsed(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(20, 32)
            self.fc2 = nn.Linear(32, 10)

        def forward(self, x):
            return self.fc2(self.fc1(x))  # no nonlinearity between two Linear layers

    report = nnlint.check(Collapsed(), torch.randn(8, 20), select=["NN204"])
    assert report.codes() == ["NN204"], str(report)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_check_on_cuda():
    report = nnlint.check(DeadNet(), torch.randn(8, 20), select=["NN3"], device="cuda")
    assert "NN305" in report.codes()
    assert all(d.evidence["probe"]["device"].startswith("cuda") for d in report)


def test_lint_in_process_leaves_the_interpreter_as_it_was(tmp_path):
    """``nnlint.api.lint_in_process`` (the rules' examples in the tests) runs the worker in
    this process: the user's file and its own modules are imported and then forgotten, and
    the working folder, ``sys.path``, ``sys.argv``, torch's threads and RNG are put back."""
    import os
    import random
    import sys

    from nnlint import api, engine, registry
    from nnlint.config import Config

    (tmp_path / "lint_in_process_helper.py").write_text("WIDTH = 20\n")
    (tmp_path / "lint_in_process_model.py").write_text(
        "import torch.nn as nn\n"
        "from lint_in_process_helper import WIDTH\n\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc1 = nn.Linear(WIDTH, 32)\n"
        "        self.fc2 = nn.Linear(32, 10)\n\n"
        "    def forward(self, x):\n"
        "        return self.fc2(self.fc1(x))\n"
    )
    before = (os.getcwd(), list(sys.path), list(sys.argv), torch.get_num_threads())
    rng = (torch.get_rng_state(), random.getstate())
    result = api.lint_in_process(
        [str(tmp_path / "lint_in_process_model.py")], Config(), engine.Options(), registry.select(["NN204"])
    )
    assert (result.models, [d.code for d in result.diagnostics]) == (1, ["NN204"]), result
    assert (os.getcwd(), list(sys.path), list(sys.argv), torch.get_num_threads()) == before
    assert torch.equal(torch.get_rng_state(), rng[0]) and random.getstate() == rng[1]
    assert not [m for m in sys.modules if m.startswith("lint_in_process_")]


def test_a_buffer_made_under_inference_mode_is_restored():
    """A buffer created in ``torch.inference_mode()`` can only be written there: restoring
    the model after the check must not raise (it did: "Inplace update to inference tensor")."""

    class WithInferenceBuffer(nn.Module):
        def __init__(self):
            super().__init__()
            with torch.inference_mode():
                offset = torch.full((3,), 0.5)
            self.register_buffer("offset", offset)
            self.bn = nn.BatchNorm1d(3)
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(self.bn(x) + self.offset)

    model = WithInferenceBuffer().train()
    report = nnlint.check(model, torch.randn(4, 3))
    assert not report.errors
    assert model.training and model.bn.training
    assert torch.equal(model.bn.running_mean, torch.zeros(3))
    assert torch.equal(model.offset, torch.full((3,), 0.5))


@pytest.mark.slow
def test_lint_in_process_sends_the_worker_the_runners_request(tmp_path, monkeypatch):
    """``lint_in_process`` sends the request a child would get (``runner.request``): the same
    keys and values, less the child's own guards (sandbox folder, fault file)."""
    from nnlint import api, engine, registry
    from nnlint.config import Config
    from nnlint.passes import worker, zygote

    path = tmp_path / "model.py"
    path.write_text(
        "import torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(8, 2)\n\n    def forward(self, x):\n        return self.fc(x)\n"
    )
    cfg, opts = Config(timeout=120, thresholds={"NN305": {"dead_fraction": 0.75}}), engine.Options(overfit=True)
    rules = registry.select(["NN204", "NN305"])
    sent: list[dict] = []
    real_spawn, real_worker = zygote.spawn, worker.Worker

    def spawn(req, folder, env=None):
        sent.append(dict(req))
        return real_spawn(req, folder, env)

    class Worker(real_worker):
        def __init__(self, req, proto):
            sent.append(dict(req))
            super().__init__(req, proto)

    monkeypatch.setattr(zygote, "spawn", spawn)
    monkeypatch.setattr(worker, "Worker", Worker)
    child = engine.lint([str(path)], cfg, opts, rules)
    here = api.lint_in_process([str(path)], cfg, opts, rules)
    assert len(sent) == 2 and child.models == here.models == 1
    to_child, in_process = sent
    assert set(to_child) - set(in_process) == {"sandbox", "fault_path"}
    assert set(in_process) <= set(to_child)
    assert {k: v for k, v in to_child.items() if k in in_process} == in_process
