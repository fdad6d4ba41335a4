"""Guesses explicit (issue 11.2), loss pairing by value flow (11.3), one finding per cause
(11.6), probe loss failures that are findings (10.4)."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace

import pytest

from nnlint.diagnostics import Diagnostic
from nnlint.passes import guesses, pairing
from nnlint.passes.grouping import group_instances

GAN = textwrap.dedent(
    """
    import torch
    import torch.nn as nn

    class Generator(nn.Module):
        def forward(self, z):
            return z

    class Discriminator(nn.Module):
        def forward(self, x):
            return x

    G = Generator()
    D = Discriminator().to("cpu")
    criterion = nn.BCELoss()

    def train_step(real):
        fake = G(torch.randn(8, 4))
        d_loss = criterion(D(real), torch.ones(8, 1)) + criterion(D(fake.detach()), torch.zeros(8, 1))
        g_loss = criterion(D(fake), torch.ones(8, 1))
        return d_loss + g_loss
    """
)

DQN = textwrap.dedent(
    """
    import torch.nn as nn
    import torch.nn.functional as F

    class DQN(nn.Module):
        pass

    policy_net = DQN()
    target_net = DQN()

    def optimize(state, action, reward, next_state):
        q = policy_net(state).gather(1, action)
        next_q = target_net(next_state).max(1)[0].detach()
        loss = F.smooth_l1_loss(q, (reward + 0.99 * next_q).unsqueeze(1))
        return loss
    """
)


def _cand(name, cls=None, **meta):
    return SimpleNamespace(name=name, cls=cls, origin="auto", loss=None, loss_name="CrossEntropyLoss",
                           target=None, meta=dict(meta))


def test_gan_loss_pairs_with_the_discriminator_only():
    p = pairing.pair_losses(GAN, pairing.model_classes(GAN))
    assert p.losses == {"Discriminator": ["BCELoss"]}
    assert p.feeds == {"Generator": {"Discriminator"}}
    assert p.lines["Discriminator"] == 19
    g, d = _cand("Generator"), _cand("Discriminator")
    pairing.apply([g, d], GAN)
    assert d.loss_name == "BCELoss" and d.meta["loss_source"] == "file" and d.meta["loss_line"] == 19
    assert g.loss_name is None and g.meta["objective"] == "neutral"


def test_value_flow_through_gather_and_assignments():
    p = pairing.pair_losses(DQN, pairing.model_classes(DQN))
    assert p.losses == {"DQN": ["SmoothL1Loss"]}  # the target net's output is the target, not the input


def test_module_level_instance_and_loss_called_inline():
    text = textwrap.dedent(
        """
        import torch.nn as nn
        model = nn.Sequential(nn.Linear(4, 1))
        for x, y in loader:
            out = model(x)
            loss = nn.MSELoss()(out.squeeze(-1), y)
        """
    )
    c = _cand("model", instance=True)
    pairing.apply([c], text)
    assert c.loss_name == "MSELoss"


def test_unpaired_non_classifier_gets_no_cross_entropy():
    text = "import torch.nn as nn\nclass DuelingQNet(nn.Module):\n    pass\ncriterion = nn.CrossEntropyLoss()\n"
    c = _cand("DuelingQNet")
    pairing.apply([c], text)
    assert c.loss_name is None and c.meta["objective"] == "neutral"
    plain = _cand("Net")
    pairing.apply([plain], text.replace("DuelingQNet", "Net"))
    assert plain.loss_name == "CrossEntropyLoss" and plain.meta["loss_source"] == "guessed"


@pytest.mark.parametrize("name,expected", [
    ("DuelingQNet", True), ("QNetwork", True), ("DQN", True), ("Generator", True), ("ConvAutoEncoder", True),
    ("VAE", True), ("Critic", True), ("Net", False), ("ResNet", False), ("TextClassifier", False), ("UNet", False),
])
def test_non_classifier_names(name, expected):
    assert pairing.looks_non_classifier(name) is expected


def test_file_constants_and_constant_specs():
    from nnlint.passes.loader import SEQ_LEN, InputSpec, TensorSpec

    text = "sequence_length = 28\ninput_size = 28\nIMG_SIZE = 2 * 32\nmax_len = 5000\n"
    assert guesses.file_constants(text) == {"sequence_length": 28, "input_size": 28, "IMG_SIZE": 64, "max_len": 5000}
    spec = InputSpec(args=[TensorSpec((8, SEQ_LEN, 28))], origin="inferred from lstm (input_size=28, batch_first=True)")
    specs = guesses.constant_specs(spec, text)
    assert [(s.args[0].shape, s.origin) for s, _ in specs] == [((8, 28, 28), "file constant sequence_length = 28")]
    img = InputSpec(args=[TensorSpec((8, 3, 32, 32))], origin="inferred from conv1 (in_channels=3)")
    assert [s.args[0].shape for s, _ in guesses.constant_specs(img, text)] == [(8, 3, 64, 64)]


def test_input_sources():
    from nnlint.passes.loader import InputSpec, TensorSpec

    def spec(origin, *shape, dtype="float32"):
        return InputSpec(args=[TensorSpec(tuple(shape), dtype)], origin=origin)

    assert guesses.input_source(spec("--input-shape", 8, 4, 84, 84)) == "declared"
    assert guesses.input_source(spec("nnlint_examples()[0]", 8, 4)) == "declared"
    assert guesses.input_source(spec("the call at line 30", 8, 4)) == "file"
    assert guesses.input_source(spec("file constant sequence_length = 28", 8, 28, 28)) == "file"
    assert guesses.input_source(spec("inferred from fc1 (in_features=784)", 8, 784)) == "file"  # nothing free
    assert guesses.input_source(spec("inferred from conv1 (in_channels=3)", 8, 3, 32, 32)) == "guessed"
    two = InputSpec(args=[TensorSpec((8, 13)), TensorSpec((8, 16), "int64")],
                    origin="inferred from fc (in_features=13), emb (indices below num_embeddings)")
    assert guesses.input_source(two) == "guessed"


def test_batch_preserving_size_for_a_dqn():
    torch = pytest.importorskip("torch")
    import torch.nn as nn

    from nnlint.passes.loader import InputSpec, TensorSpec

    class DQN(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(4, 8, 8, stride=4)
            self.c2 = nn.Conv2d(8, 8, 4, stride=2)
            self.c3 = nn.Conv2d(8, 8, 3)
            self.fc = nn.Linear(7 * 7 * 8, 2)

        def forward(self, x):
            x = self.c3(self.c2(self.c1(x)).relu()).relu()
            return self.fc(x.reshape(-1, 7 * 7 * 8))

    spec = InputSpec(args=[TensorSpec((8, 4, 256, 256))], origin="inferred from c1 (in_channels=4)")
    with torch.no_grad():
        got = guesses.prefer_batch_preserving(DQN(), spec, "cpu")
    assert got.args[0].shape == (8, 4, 84, 84)
    assert guesses.input_source(got) == "guessed"


def _d(module, value, code="NN305", line=7):
    return Diagnostic(code=code, name="dead-relu", severity="warning", message=f"{module} is dead", pass_="probe",
                      path="m.py", line=line, model="Net", module=module, evidence={"fraction": value})


def test_grouping_per_instance_keeps_the_worst():
    ds = [_d(f"blocks.{i}.act", 0.5 + i / 100) for i in range(69)] + [_d("head.act", 0.9, line=9)]
    out = group_instances(ds)
    assert len(out) == 2
    g = out[0]
    assert g.module == "blocks.0.act … blocks.68.act"
    assert g.evidence["worst_instance"] == "blocks.68.act" and len(g.evidence["instances"]) == 69
    assert "same in 69 instances" in g.message and g.message.startswith("blocks.68.act is dead")
    assert out[1].module == "head.act"


def test_guesses_in_json():
    d = _d("fc", 0.5).with_(guesses={"input": "guessed", "loss": "file", "target": "guessed"})
    out = d.to_dict()
    assert out["guesses"] == {"input": "guessed", "loss": "file", "target": "guessed"}
    assert Diagnostic.from_dict(out).guesses == out["guesses"]
    assert "guesses" not in _d("fc", 0.5).to_dict()


def test_confirm_keeps_only_what_the_second_input_shows():
    first = [_d("a", 0.9), _d("b", 0.9), _d("c", 0.9, code="NN308")]
    kept, dropped = guesses.confirm(first, lambda: [_d("a", 0.8)])
    assert [(d.code, d.module) for d in kept] == [("NN305", "a"), ("NN308", "c")]
    assert [d.module for d in dropped] == ["b"]
    kept, dropped = guesses.confirm(first, lambda: None)  # no second plausible size: as good as certain
    assert kept == first and not dropped


def test_loss_failure_is_the_rule_at_the_loss_line():
    exc = RuntimeError("all elements of input should be between 0 and 1")
    paired = SimpleNamespace(name="SegHead", loss=None, loss_name="BCELoss", target=None,
                             meta={"loss_source": "file", "loss_line": 17})
    assert guesses.loss_failure(paired, None, exc)[::2] == ("NN105", 17)
    guessed = SimpleNamespace(name="G", loss=None, loss_name="BCELoss", target=None, meta={"loss_source": "guessed"})
    assert guesses.loss_failure(guessed, None, exc)[0] == "NN002"
    oob = IndexError("Target 1 is out of bounds.")
    ce = SimpleNamespace(name="Net", loss=object(), loss_name="CrossEntropyLoss", target=None, meta={})
    assert guesses.loss_failure(ce, None, oob, [[8, 1]])[0] == "NN107"
    assert guesses.loss_failure(ce, None, oob, [[8, 10]])[0] == "NN502"
    assert guesses.loss_failure(ce, None, ValueError("something else")) is None


def test_issue_11_examples_are_clean_and_say_where_settings_came_from(tmp_path):
    """RNN with a sequence_length constant (was NN201 'in_features=4096 would fit' at length 16),
    a DQN whose reshape holds only at 84x84, a dueling Q head (was given cross-entropy), a GAN
    whose BCELoss belongs to the discriminator (was NN005 on the generator's tanh)."""
    import shutil
    from pathlib import Path

    from nnlint import engine, registry
    from nnlint.config import Config

    src = Path(__file__).parent / "data" / "guesses"
    for f in src.glob("*.py"):
        shutil.copy(f, tmp_path / f.name)
    result = engine.lint([str(tmp_path)], Config(timeout=120), engine.Options(), registry.select(["ALL"]))
    assert not result.errors, result.errors
    bad = [(Path(d.path).name, d.line, d.code, d.message) for d in result.diagnostics if d.severity.value != "info"]
    assert not bad, bad
    assert result.models == 5 and result.models_not_probed == 0
