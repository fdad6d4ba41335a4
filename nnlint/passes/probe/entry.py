"""The probe pass's entry point (``run_probe``): probe one built model and run its probe and data rules."""

from __future__ import annotations

from typing import Any

from torch import nn

from nnlint.diagnostics import Diagnostic
from nnlint.example import Example
from nnlint.passes.probe.convert import model_line, source_lines, to_diagnostic
from nnlint.passes.probe.result import ProbeResult
from nnlint.passes.probe.run import Probe
from nnlint.passes.probe.stats import summarize
from nnlint.rule import Rule


def _skipped(settings: dict[str, Any], example: Example, path: str, model_name: str) -> Diagnostic | None:
    budget = settings.get("memory_budget_bytes")
    est = settings.get("estimated_bytes")
    if not budget or not est or est <= budget:
        return None
    from nnlint.registry import all_rules

    rule = all_rules().get("NN006")
    if rule is None:
        return None
    model = example.model if isinstance(example.model, nn.Module) else None
    line = model_line(model, path, None) if model is not None else None
    return Diagnostic(
        code=rule.code,
        name=rule.name,
        severity=rule.severity,
        pass_="tool",
        path=path,
        line=line or 1,
        model=model_name,
        message=(
            f"{model_name} needs about {est / 2**30:.2f} GiB to probe, over the budget of "
            f"{budget / 2**30:.2f} GiB; probe rules (NN3) did not run for it. Raise "
            "probe-memory-fraction in [tool.nnlint] or probe a smaller configuration"
        ),
        evidence={"estimated_bytes": est, "memory_budget_bytes": budget},
    )


def run_probe(example: Example, rules: list[Rule], settings: dict[str, Any], path: str, model_name: str) -> ProbeResult:
    """Probe one built model; return its diagnostics (a list, with ``.errors`` naming any
    rule that crashed). Raises ``ProbeError`` when the user's code fails during the run
    (after restoring the model)."""
    if not isinstance(example.model, nn.Module) and callable(example.model):
        example.model = example.model()
    skipped = _skipped(settings or {}, example, path, model_name)
    if skipped is not None:
        return ProbeResult([skipped])
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
    for rule in rules:
        target = ctx if rule.pass_ == "probe" else data_ctx if rule.pass_ == "data" else None
        if target is None:
            continue
        try:
            for f in rule.check(target):
                out.append(
                    to_diagnostic(
                        rule,
                        f,
                        example.model,
                        path,
                        model_name,
                        extra,
                        lines,
                        default_line=(example.meta or {}).get("line"),
                    )
                )
        except Exception as exc:  # a rule bug must not hide the others' findings
            out.errors.append(
                f"{path}: {model_name}: internal error: rule {rule.code} crashed "
                f"({type(exc).__name__}: {exc}); other rules ran. Please report this."
            )
    return out
