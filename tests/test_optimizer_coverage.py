"""NN408's dynamic twin: ``nnlint.check(model, inputs, optimizer=opt)`` compares the
model's trainable parameters with the optimizer's param groups."""

from __future__ import annotations

import torch
import torch.nn as nn

import nnlint


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def _check(model, opt):
    return nnlint.check(model, torch.randn(4, 8), select=["NN408"], optimizer=opt)


def test_head_replaced_after_optimizer_fires_at_its_module():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model[2] = nn.Linear(16, 5)
    report = _check(model, opt)
    found = report.by_code("NN408")
    assert [d.module for d in found] == ["2"], str(report)
    assert "85 trainable parameters" in found[0].message
    assert found[0].line > 1
    assert "model[2].parameters()" in found[0].message


def test_subset_optimizer_fires_once_per_missing_module():
    model = _model()
    opt = torch.optim.Adam(model[2].parameters())
    assert [d.module for d in _check(model, opt).by_code("NN408")] == ["0"]


def test_covered_frozen_added_and_several_optimizers_are_silent():
    model = _model()
    assert not _check(model, torch.optim.SGD(model.parameters(), lr=0.1)).by_code("NN408")
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model[2] = nn.Linear(16, 5)
    opt.add_param_group({"params": model[2].parameters()})
    assert not _check(model, opt).by_code("NN408")
    model = _model()
    model[0].requires_grad_(False)
    assert not _check(model, torch.optim.SGD(model[2].parameters(), lr=0.1)).by_code("NN408")
    model = _model()
    opts = [torch.optim.Adam(model[0].parameters()), torch.optim.Adam(model[2].parameters())]
    assert not _check(model, opts).by_code("NN408")


def test_without_optimizer_nothing_runs():
    assert not _check(_model(), None).by_code("NN408")
