"""The probe pass's entry point (``run_probe``): probe one built model and run its probe and data rules."""

from __future__ import annotations

from typing import Any

from torch import nn

from nnlint import findings
from nnlint.example import Example
from nnlint.passes.probe.convert import model_line, source_lines, span_of, with_run
from nnlint.passes.probe.result import ProbeResult
from nnlint.passes.probe.run import Probe
from nnlint.passes.probe.stats import summarize
from nnlint.rule import Rule


def run_probe(example: Example, rules: list[Rule], settings: dict[str, Any], path: str, model_name: str) -> ProbeResult:
    """Probe one built model; return its diagnostics (a list, with ``.errors`` naming any
    rule that crashed). Raises ``ProbeError`` when the user's code fails during the run
    (after restoring the model)."""
    if not isinstance(example.model, nn.Module) and callable(example.model):
        example.model = example.model()
    if example.inputs is None:
        return ProbeResult([], [f"{path}: {model_name}: no example inputs, the probe did not run"])
    probe = Probe(example, rules, settings or {}, path, model_name)
    ctx, data_ctx = probe.run()
    out = ProbeResult()
    lines = source_lines(path)
    extra = None
    if ctx is not None:
        extra = {"device": ctx.device, "batch": ctx.batch_size}
        try:
            out.stats = summarize(ctx)
        except Exception as exc:  # the report is extra; the findings must not depend on it
            out.notes.append(f"{path}: {model_name}: per-layer statistics unavailable ({type(exc).__name__}: {exc})")
        out.notes.extend(f"{path}: {model_name}: {n}" for n in ctx.notes)
    meta_line = (example.meta or {}).get("line")
    for rule in rules:  # one at a time: diagnostics keep the rules' order
        target = ctx if rule.pass_ == "probe" else data_ctx if rule.pass_ == "data" else None
        if target is None:
            continue
        diags, crashes = findings.run_rules(
            [rule],
            target,
            lambda f: span_of(f, example.model, path, lines, meta_line),
            path=path,
            model=model_name,
            evidence=lambda f: with_run(f, extra),
            related_line=lambda where: model_line(example.model, path, where) if isinstance(where, str) else None,
        )
        out.extend(diags)
        out.errors.extend(c.describe(path, model_name) for c in crashes)
    return out
