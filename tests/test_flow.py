"""Direct tests of the value-flow analysis shared by NN103-NN108/NN113 (nnlint/analysis/value_flow.py)."""

from __future__ import annotations

import textwrap

import libcst as cst

from nnlint.analysis import value_flow
from nnlint.contexts.source import SourceContext


def analyse(src: str) -> tuple[SourceContext, value_flow.Flow]:
    text = textwrap.dedent(src).lstrip("\n")
    ctx = SourceContext("example.py", text, cst.parse_module(text))
    return ctx, value_flow.flow(ctx)


def losses(src: str) -> list[tuple[str, int, str | None, int | None, str | None]]:
    """(kind, line, input tag, input width, target kind) for every loss call."""
    ctx, fl = analyse(src)
    return [(u.kind, ctx.position(u.call)[0], u.input.tag, u.input.k, u.target.target) for u in fl.losses]


def test_nanogpt_cross_entropy_on_lm_head_logits():
    out = losses(
        """
        import torch.nn as nn
        from torch.nn import functional as F

        class CausalSelfAttention(nn.Module):
            def __init__(self, n_embd):
                super().__init__()
                self.c_attn = nn.Linear(n_embd, 3 * n_embd)
                self.c_proj = nn.Linear(n_embd, n_embd)

            def forward(self, x):
                q, k, v = self.c_attn(x).split(64, dim=2)
                att = F.softmax(q @ k.transpose(-2, -1), dim=-1)
                return self.c_proj(att @ v)

        class GPT(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.attn = CausalSelfAttention(config.n_embd)
                self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

            def forward(self, idx, targets=None):
                x = self.attn(idx)
                if targets is not None:
                    logits = self.lm_head(x)
                    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
                else:
                    logits = self.lm_head(x[:, [-1], :])
                    loss = None
                return logits, loss
        """
    )
    assert out == [("ce", 25, "logits", None, None)]


def test_statement_order_and_reassignment():
    out = losses(
        """
        import torch.nn.functional as F

        def step(head, x, y):
            logits = head(x)
            probs = logits.softmax(-1)
            a = F.cross_entropy(probs, y)
            probs = F.log_softmax(logits, dim=-1)
            b = F.nll_loss(probs, y)
            return a, b
        """
    )
    assert [(k, t) for k, _, t, _, _ in out] == [("ce", "softmax"), ("nll", "log_softmax")]


def test_branches_merge_to_unknown_and_loops_see_later_assignments():
    out = losses(
        """
        import torch.nn.functional as F

        def step(logits, y, flag, n):
            out = logits.softmax(-1)
            if flag:
                out = F.log_softmax(logits, dim=-1)
            a = F.nll_loss(out, y)
            x = F.log_softmax(logits, -1)
            for _ in range(n):
                b = F.nll_loss(x, y)
                x = x.exp()
            return a, b
        """
    )
    assert [t for _, _, t, _, _ in out] == [None, None]


def test_sequential_tail_width_and_module_attribute():
    out = losses(
        """
        from torch import nn
        from torch.nn import CrossEntropyLoss

        NUM_CLASSES = 7

        class Net(nn.Module):
            def __init__(self, hidden=32):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(16, hidden), nn.ReLU(), nn.Linear(hidden, NUM_CLASSES))
                self.sm = nn.Softmax(dim=1)

            def forward(self, x):
                return self.sm(self.net(x))

        model = Net()
        criterion = CrossEntropyLoss()

        def train(loader):
            for x, y in loader:
                loss = criterion(model(x), y.long())
        """
    )
    assert out == [("ce", 20, "softmax", 7, "index")]


def test_forward_value_reaches_a_loss_through_a_model_parameter_and_call_sites():
    src = """
        import torch
        import torch.nn as nn

        class Head(nn.Module):
            def __init__(self, num_classes=10):
                super().__init__()
                self.fc = nn.Linear(8, num_classes)

            def forward(self, x):
                return torch.sigmoid(self.fc(x))

        def compute(out, y):
            return nn.BCELoss()(out, y)

        def run(x, y):
            return compute(Head()(x), y)
        """
    assert losses(src) == [("bce", 13, "sigmoid", 10, None)]
    # the default width is not trusted once some instantiation passes the argument
    assert losses(src.replace("Head()(x)", "Head(num_classes=n)(x)")) == [("bce", 13, "sigmoid", None, None)]


def test_names_resolve_through_imports_not_text():
    out = losses(
        """
        import mylib as nn
        import torch
        import torch.nn.functional

        model = nn.Sequential(nn.Linear(4, 2), nn.Softmax(dim=1))

        def a(x, y):
            return torch.nn.functional.cross_entropy(model(x), y)

        def b(logits, y):
            return torch.nn.functional.cross_entropy(torch.nn.functional.softmax(logits, dim=1), y)
        """
    )
    assert [(k, t) for k, _, t, _, _ in out] == [("ce", None), ("ce", "softmax")]


def test_attention_and_gates_do_not_leak_tags():
    out = losses(
        """
        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.gate = nn.Linear(8, 8)
                self.out = nn.Linear(8, 3)

            def forward(self, x):
                x = x * torch.sigmoid(self.gate(x))
                w = F.softmax(x, dim=-1)
                return (w * x).sum(-1)

        net = Net()

        def step(x, y):
            return F.cross_entropy(net(x), y), F.binary_cross_entropy_with_logits(net.out(x), y)
        """
    )
    assert [(k, t, w) for k, _, t, w, _ in out] == [("ce", None, None), ("bcewl", "logits", 3)]


def test_softmax_dim0_needs_a_batch():
    ctx, fl = analyse(
        """
        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        class Policy(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, state):
                return F.softmax(self.fc(state), dim=0)

        class Classifier(Policy):
            pass

        a = F.softmax(torch.randn(3, 5), dim=0)
        clf = Classifier()
        for x, y in train_loader:
            probs = F.softmax(clf(x), dim=0)
        """
    )
    fired = sorted((ctx.position(d.node)[0], d.cls, fl.dim0_on_batch(d)) for d in fl.dims)
    # forward's softmax is recorded twice (Policy and Classifier): only Classifier runs on batches
    assert fired == [(11, "Classifier", True), (11, "Policy", False), (16, None, False), (19, None, True)]


def test_flow_is_computed_once_per_file():
    ctx, fl = analyse("import torch\n")
    assert value_flow.flow(ctx) is fl
    ctx2, fl2 = analyse("import numpy as np\nx = np.zeros(3)\n")
    assert fl2.losses == [] and fl2.dims == []


def test_model_parameter_is_bound_only_when_the_file_defines_one_model():
    src = """
        import torch.nn as nn
        import torch.nn.functional as F

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 3)

            def forward(self, x):
                return F.softmax(self.fc(x), dim=1)

        def train_step(model, x, y):
            return F.cross_entropy(model(x), y)
        """
    assert [t for _, _, t, _, _ in losses(src)] == ["softmax"]
    two_models = src + """
        class Other(nn.Module):
            def forward(self, x):
                return x
        """
    assert [t for _, _, t, _, _ in losses(two_models)] == [None]
    rewired = src + """
        net = Net()
        net.fc = nn.Linear(4, 1)
        """
    assert [t for _, _, t, _, _ in losses(rewired)] == [None]


def test_collate_fn_batches_are_not_assumed_batch_first():
    src = """
        import torch.nn.functional as F
        from torch.utils.data import DataLoader

        loader = DataLoader(ds, batch_size=8)
        for x in loader:
            w = F.softmax(x, dim=0)
        """
    _, fl = analyse(src)
    assert [fl.dim0_on_batch(d) for d in fl.dims] == [True]
    _, fl = analyse(src.replace("batch_size=8", "batch_size=8, collate_fn=pad"))
    assert [fl.dim0_on_batch(d) for d in fl.dims] == [False]


def test_argmax_predictions_compared_with_labels():
    _, fl = analyse(
        """
        import torch

        def evaluate(model, loader):
            correct = 0
            for x, y in loader:
                out = model(x)
                _, predicted = torch.max(out, 1)
                correct += (predicted == y).sum().item()
                top = out.argmax(dim=1)
            return correct
        """
    )
    assert [p.compared for p in fl.preds] == [True, False]


def test_squeezed_one_unit_scores_are_not_a_one_unit_head():
    out = losses(
        """
        import torch.nn as nn
        import torch.nn.functional as F

        score = nn.Linear(16, 1)

        def step(h, pos, y):
            return F.cross_entropy(score(h).squeeze(-1), pos), F.cross_entropy(score(h), y)
        """
    )
    assert [(t, w) for _, _, t, w, _ in out] == [("logits", None), ("logits", 1)]


def test_library_functions_named_like_tensor_methods_are_not_tensor_methods():
    out = losses(
        """
        import torch.nn.functional as F
        from torch_geometric import utils

        def step(src, index, y):
            return F.cross_entropy(utils.softmax(src, index), y)
        """
    )
    assert [t for _, _, t, _, _ in out] == [None]
