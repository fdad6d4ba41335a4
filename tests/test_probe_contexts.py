"""The probe's public pieces: contexts rules read (torch-free), extras requested by the Extra
enum and validated by check_invariants, and ModelState / seeded_rng restoring a model."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from nnlint import registry
from nnlint.contexts.probe import Extra, ProbeContext
from nnlint.rule import Invalid, ProbeRule, Valid


def test_probe_and_data_contexts_import_without_torch():
    code = "import sys, nnlint.contexts.probe, nnlint.contexts.data; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def _rule(needs: frozenset) -> type[ProbeRule]:
    class Fake(ProbeRule):
        """## What it does
        x
        ## Why is this bad?
        x
        ## Example
        x
        ## Use instead
        x
        ## References
        x
        """

        code = "NN399"
        name = "fake-rule"
        VALID = [Valid("x")]
        INVALID = [Invalid("x", 1)]

    Fake.needs = needs
    return Fake


def test_check_invariants_rejects_a_need_that_is_not_an_extra():
    assert registry.check_invariants({"NN399": _rule(frozenset({Extra.BATCH_JACOBIAN}))}) == []
    problems = registry.check_invariants({"NN399": _rule(frozenset({"batch_jacobian"}))})
    assert problems and "not a member of nnlint.contexts.probe.Extra" in problems[0]


def test_every_extra_that_fills_a_field_names_a_probe_context_field():
    fields = {f.name for f in dataclasses.fields(ProbeContext)}
    refining = {Extra.ZERO_INIT_CHECK, Extra.NONFINITE_ORIGIN}  # refine always-run measurements
    for extra in Extra:
        assert extra in refining or extra.value in fields, extra


def test_model_state_and_seeded_rng_restore_the_model():
    torch = pytest.importorskip("torch")
    from nnlint.passes.state import ModelState, seeded_rng

    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    model.eval()
    model[0].weight.requires_grad_(False)
    before = torch.get_rng_state()
    mean = model[1].running_mean.clone()
    weight = model[0].weight.detach().clone()
    with seeded_rng(torch.device("cpu")), ModelState(model) as state:
        state.snapshot_params()
        model.train()
        model[0].weight.requires_grad_(True)
        model(torch.randn(4, 3)).sum().backward()
        with torch.no_grad():
            model[0].weight.add_(1.0)
    assert not model.training and not model[1].training
    assert not model[0].weight.requires_grad and model[0].bias.grad is None
    assert torch.equal(model[1].running_mean, mean) and torch.equal(model[0].weight, weight)
    assert torch.equal(torch.get_rng_state(), before)
