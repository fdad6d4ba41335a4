"""Every rule's VALID and INVALID examples, run through the real pass that owns the rule.

Source rules run on the libcst pass in memory. Graph, probe and data rules run through the
whole engine on a temporary file (a real child process, real torch), so an example tests
exactly what a user gets.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

from nnlint import engine, registry
from nnlint.config import Config
from nnlint.passes import source

RULES = registry.all_rules()
MESSAGES = Path(__file__).parent / "golden" / "messages"
REGEN = os.environ.get("NNLINT_REGEN_GOLDEN") == "1"
_NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?\d+(\.\d+)?(e[-+]?\d+)?")
DYNAMIC_FAILURES = {"NN003", "NN005", "NN007"}


def _cases(kind: str):
    for code, rule in RULES.items():
        if rule.pass_ == "tool":
            continue
        examples = rule.valid_examples() if kind == "valid" else rule.INVALID
        for i, ex in enumerate(examples):
            marks = [pytest.mark.slow] if rule.pass_ != "source" else []
            yield pytest.param(rule, ex, id=f"{code}-{kind}{i}", marks=marks)


def _run(rule, example, tmp_path: Path, valid: bool = False):
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
    selected = [rule] + [r for c, r in RULES.items() if c in DYNAMIC_FAILURES and c != rule.code]
    result = engine.lint([str(path)], cfg, opts, selected)
    assert not result.errors, result.errors
    crashes = [d for d in result.diagnostics if d.code in DYNAMIC_FAILURES and d.code != rule.code]
    assert not crashes, f"user code did not run: {crashes[0].code} {crashes[0].message}"
    if valid:
        # a VALID example is silent only if its model was really built and checked: an
        # example whose model nnlint could not build would pass without testing anything
        assert result.models >= 1 and result.models_not_probed == 0, (
            f"the example's model was not checked ({result.models} built, "
            f"{result.models_not_probed} not probed): {[d.message for d in result.diagnostics if d.code == 'NN002']}")
    return result.diagnostics


@pytest.mark.parametrize("rule,example", list(_cases("invalid")))
def test_invalid_example_fires(rule, example, tmp_path, request):
    diags = [d for d in _run(rule, example, tmp_path) if d.code == rule.code]
    assert diags, f"{rule.code} did not fire on:\n{textwrap.dedent(example.source)}"
    at_line = [d for d in diags if d.line == example.line]
    assert at_line, f"{rule.code} fired at lines {[d.line for d in diags]}, expected {example.line}: {[d.message for d in diags]}"
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
    assert path.is_file(), f"{path.name} is missing: run NNLINT_REGEN_GOLDEN=1 pytest tests/test_rule_examples.py and review the new file"
    assert path.read_text(encoding="utf-8") == text, (
        f"{rule.code}'s message changed; if intended, regenerate with NNLINT_REGEN_GOLDEN=1 pytest "
        f"tests/test_rule_examples.py and review the diff")


@pytest.mark.parametrize("rule,example", list(_cases("valid")))
def test_valid_example_is_silent(rule, example, tmp_path):
    diags = [d for d in _run(rule, example, tmp_path, valid=True) if d.code == rule.code]
    assert not diags, f"false positive ({example.note}): " + "; ".join(f"{d.line}: {d.message}" for d in diags)


def test_registry_invariants():
    assert registry.check_invariants(RULES) == []
