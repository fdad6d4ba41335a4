"""Every rule's VALID and INVALID examples, run through the real pass that owns the rule.

Source rules run on the libcst pass in memory. Graph, probe and data rules run through the
whole engine on a temporary file, real torch, with the worker that a child process would
run called in this process (``nnlint.api.lint_in_process``: the same request, rules and
diagnostics, less ~1-3 s of process start per example). The examples in ``END_TO_END`` run
exactly as a user's file does, in a child process, so that every pass's path through the
runner and the child stays covered here too.
"""

from __future__ import annotations

import contextlib
import os
import re
import textwrap
from pathlib import Path

import pytest

from nnlint import api, engine, registry
from nnlint.config import Config
from nnlint.passes import source
from nnlint.rule import Valid

RULES = registry.all_rules()
MESSAGES = Path(__file__).parent / "golden" / "messages"
REGEN = os.environ.get("NNLINT_REGEN_GOLDEN") == "1"
_NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?\d+(\.\d+)?(e[-+]?\d+)?")
DYNAMIC_FAILURES = {"NN003", "NN005", "NN007"}
#: selected too, to say why a VALID example's model was not checked (not a failure alone)
WHY_NOT_CHECKED = {"NN002", "NN006"}
#: examples run end to end (engine.lint: runner, child process, worker): an INVALID one per
#: dynamic pass and two VALID ones; each is also run in-process and must give the same
#: diagnostics and counts (and test_valid_example_whose_model_was_not_checked_fails has one)
END_TO_END = {
    "NN201-invalid0",  # graph
    "NN301-invalid0",  # probe
    "NN501-invalid0",  # data
    "NN502-valid0",  # a VALID one: built, traced and probed in the child
    "NN312-valid0",  # an option in the request (overfit)
}


def _cases(kind: str):
    for code, rule in RULES.items():
        if rule.pass_ == "tool":
            continue
        examples = rule.valid_examples() if kind == "valid" else rule.INVALID
        for i, ex in enumerate(examples):
            marks = [pytest.mark.slow] if rule.pass_ != "source" else []
            yield pytest.param(rule, ex, id=f"{code}-{kind}{i}", marks=marks)


def _run(rule, example, tmp_path: Path, valid: bool = False, end_to_end: bool = False):
    text = textwrap.dedent(example.source).lstrip("\n")
    if rule.pass_ == "source":
        diags, crashes = source.run("example.py", text, [rule()])
        assert not crashes, crashes[0].exc
        return diags
    path = tmp_path / "example.py"
    path.write_text(text, encoding="utf-8")
    cfg_keys = dict(example.config)
    opts = engine.Options(**{k: cfg_keys.pop(k) for k in list(cfg_keys) if k in engine.Options.__dataclass_fields__})
    cfg = Config(**cfg_keys)
    extra = DYNAMIC_FAILURES | WHY_NOT_CHECKED
    selected = [rule] + [r for c, r in RULES.items() if c in extra and c != rule.code]
    with _counting_checks(rule) as checked:
        here = api.lint_in_process([str(path)], cfg, opts, selected)
    result = engine.lint([str(path)], cfg, opts, selected) if end_to_end else here
    assert not result.errors, result.errors
    if end_to_end:  # in this process, the same findings, to the digit, and the same counts
        assert [d.to_dict() for d in here.diagnostics] == [d.to_dict() for d in result.diagnostics]
        counts = ("models", "models_not_checked", "models_not_probed", "files_run", "notes", "errors")
        assert [getattr(here, k) for k in counts] == [getattr(result, k) for k in counts]
    crashes = [d for d in result.diagnostics if d.code in DYNAMIC_FAILURES and d.code != rule.code]
    assert not crashes, f"user code did not run: {crashes[0].code} {crashes[0].message}"
    if valid:
        # a VALID example is silent only if its model was really built and checked: an
        # example whose model nnlint could not build would pass without testing anything
        not_run = result.models_not_checked + result.models_not_probed
        assert result.models >= 1 and not_run == 0, (
            f"the example's model was not checked ({result.models} checked, {result.models_not_checked} "
            f"not checked, {result.models_not_probed} not probed): "
            f"{[d.message for d in result.diagnostics if d.pass_ == 'tool']}"
        )
        # ... and only if the rule itself was handed each model's context (a data rule's
        # example without data: the model is probed, the data rule does not run)
        assert len(checked) >= result.models, (
            f"the rule was not run: {rule.code}'s check was called {len(checked)} times "
            f"for {result.models} checked models"
        )
    return result.diagnostics


@contextlib.contextmanager
def _counting_checks(rule):
    """Record each call of ``rule.check`` (the pass handing the rule a context) while the
    example runs in this process."""
    calls: list[object] = []
    own = "check" in rule.__dict__
    original = rule.check

    def check(self, ctx):
        calls.append(ctx)
        return original(self, ctx)

    rule.check = check
    try:
        yield calls
    finally:
        if own:
            rule.check = original
        else:
            del rule.check


@pytest.mark.parametrize("rule,example", list(_cases("invalid")))
def test_invalid_example_fires(rule, example, tmp_path, request):
    e2e = request.node.callspec.id in END_TO_END
    diags = [d for d in _run(rule, example, tmp_path, end_to_end=e2e) if d.code == rule.code]
    assert diags, f"{rule.code} did not fire on:\n{textwrap.dedent(example.source)}"
    at_line = [d for d in diags if d.line == example.line]
    assert at_line, (
        f"{rule.code} fired at lines {[d.line for d in diags]}, expected {example.line}: {[d.message for d in diags]}"
    )
    if example.contains:
        assert any(example.contains in d.message for d in at_line), [d.message for d in at_line]
    _check_messages(request.node.callspec.id, rule, at_line)


def _check_messages(case_id: str, rule, diags) -> None:
    """Pin each INVALID example's message text (ruff's snapshots): regenerated with
    NNLINT_REGEN_GOLDEN=1 and reviewed in diffs. Measured numbers in graph/probe messages
    are masked so the golden does not depend on the machine's floating point."""
    lines = sorted({d.message for d in diags})
    if rule.pass_ != "source":
        lines = sorted({_NUMBER.sub("<n>", m) for m in lines})
    text = "\n".join(lines) + "\n"
    path = MESSAGES / f"{case_id}.txt"
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.is_file(), (
        f"{path.name} is missing: run NNLINT_REGEN_GOLDEN=1 pytest tests/test_rule_examples.py and review the new file"
    )
    assert path.read_text(encoding="utf-8") == text, (
        f"{rule.code}'s message changed; if intended, regenerate with NNLINT_REGEN_GOLDEN=1 pytest "
        f"tests/test_rule_examples.py and review the diff"
    )


@pytest.mark.parametrize("rule,example", list(_cases("valid")))
def test_valid_example_is_silent(rule, example, tmp_path, request):
    e2e = request.node.callspec.id in END_TO_END
    diags = [d for d in _run(rule, example, tmp_path, valid=True, end_to_end=e2e) if d.code == rule.code]
    assert not diags, f"false positive ({example.note}): " + "; ".join(f"{d.line}: {d.message}" for d in diags)


def test_registry_invariants():
    assert registry.check_invariants(RULES) == []


_NOT_BUILT = """
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.fc = nn.Linear(config.width, 2)

        def forward(self, x):
            return self.fc(x)
"""
_ONE_OF_TWO_NOT_BUILT = """
    import torch.nn as nn

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(x)

    class Net(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.fc = nn.Linear(config.width, 2)

        def forward(self, x):
            return self.fc(x)
"""
_NOT_PROBED = """
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            if x.shape[-1] != 7919:
                raise ValueError("expects 7919 features")
            return self.fc(x)
"""


_BUILT_NO_DATA = """
    import torch
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc(x)

    def nnlint_examples():
        return [{"model": Net(), "inputs": torch.randn(4, 8)}]
"""
_SOURCES = {
    "not-built": _NOT_BUILT,
    "one-not-built": _ONE_OF_TWO_NOT_BUILT,
    "not-probed": _NOT_PROBED,
    "rule-not-run": _BUILT_NO_DATA,
}
_NOT_CHECKED_CASES = [
    *(
        pytest.param(c, k, False, "was not checked", id=f"{k}-{c}-in-process")
        for k in ("not-built", "one-not-built", "not-probed")
        for c in ("NN202", "NN305", "NN501")
    ),
    pytest.param("NN305", "one-not-built", True, "was not checked", id="one-not-built-NN305-end-to-end"),
    # a data rule's example without data: the model is checked, the data rule never runs
    pytest.param("NN501", "rule-not-run", False, "rule was not run", id="rule-not-run-NN501"),
]


@pytest.mark.slow
@pytest.mark.parametrize("code,source,end_to_end,why", _NOT_CHECKED_CASES)
def test_valid_example_whose_model_was_not_checked_fails(code, source, end_to_end, why, tmp_path):
    """The harness can fail: a VALID graph/probe/data example is silent because its model
    was built and its rule ran on it, not because nothing ran."""
    with pytest.raises(AssertionError, match=why):
        _run(RULES[code], Valid(_SOURCES[source]), tmp_path, valid=True, end_to_end=end_to_end)
