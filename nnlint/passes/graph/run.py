"""Runs the graph pass on one model: build its context, run the graph rules, turn findings into diagnostics."""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from nnlint import findings
from nnlint.contexts.graph import GraphContext
from nnlint.diagnostics import Diagnostic
from nnlint.findings import RuleCrash
from nnlint.passes import locate
from nnlint.passes.graph.capture import capture
from nnlint.passes.graph.file_scan import scan_source
from nnlint.passes.graph.info import infer_classes, model_info, unused_modules
from nnlint.passes.graph.inputs import split_inputs
from nnlint.passes.graph.lines import UserFile
from nnlint.passes.graph.ownership import is_library_finding
from nnlint.passes.graph.source_facts import SourceFacts
from nnlint.passes.graph.spans import related_line, span_of
from nnlint.rule import Rule


def build_context(
    model: nn.Module,
    args: tuple,
    kwargs: dict,
    *,
    path: str,
    model_name: str,
    source_text: str | None = None,
    user: UserFile | None = None,
    inputs_desc: str = "",
    input_search: dict | None = None,
    loss_name: str | None = None,
    classes: int | None = None,
    model_line: int | None = None,
    source: SourceFacts | None = None,
    module_lines: dict[str, int] | None = None,
) -> GraphContext:
    """Trace (fx, else hooks) and propagate shapes on the given inputs (meta or real)."""
    user = user or UserFile(path)
    if source is None:
        if source_text is None:
            try:
                with open(path, encoding="utf-8") as fh:
                    source_text = fh.read()
            except OSError:
                source_text = ""
        source = SourceFacts(source_text)
    trace, fallback, why = capture(model, args, kwargs, user)
    ctx = GraphContext(
        path=path,
        model_name=model_name,
        model=model,
        trace=trace,
        source=source,
        user=user,
        fallback=fallback,
        trace_error=why,
        inputs_desc=inputs_desc,
        input_search=input_search,
        loss_name=loss_name,
        classes=classes,
        model_line=model_line,
        module_lines=module_lines,
    )
    return ctx


def run_rules(ctx: GraphContext, rules: list[Rule]) -> tuple[list[Diagnostic], list[RuleCrash]]:
    """The graph rules on one context; findings inside a class the user did not write are
    dropped (nothing to act on there)."""
    return findings.run_rules(
        [r for r in rules if r.pass_ == "graph"],
        ctx,
        lambda f: span_of(ctx, f),
        path=ctx.path,
        model=ctx.model_name,
        keep=lambda rule, f: not is_library_finding(ctx, rule.code, f.module, f.line),
        related_line=lambda where: related_line(ctx, where),
    )


def run_graph(
    example: Any, rules: list[Rule], path: str, model_name: str, settings: dict[str, Any] | None = None
) -> tuple[list[Diagnostic], dict[str, Any]]:
    """The graph pass on one ``Example`` (model + inputs, meta or real), usable in-process
    (``nnlint.check``) as well as in the worker. Restores the model's train/eval mode.

    settings (all optional): source_text, loss_name, classes, inputs_desc, input_search,
    model_line. Returns (diagnostics, info) where info carries parameter count, sizes and
    the estimate the probe uses for NN006, the output shapes and whether fx fell back."""
    settings = settings or {}
    model = example.model
    if not isinstance(model, nn.Module) and callable(model):
        model = model()
    args, kwargs = split_inputs(example.inputs)
    text = settings.get("source_text")
    if text is None:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            text = ""
    loss_name = settings.get("loss_name") or (example.meta or {}).get("loss_name")
    if loss_name is None and text:
        loss_name = scan_source(text).loss_name
    model_line = settings.get("model_line")
    if model_line is None:
        cls_path, cls_line = locate.class_line(type(model))
        if cls_path is not None and os.path.realpath(cls_path) == os.path.realpath(path):
            model_line = cls_line
    ctx = build_context(
        model,
        args,
        kwargs,
        path=path,
        model_name=model_name,
        source_text=text,
        inputs_desc=settings.get("inputs_desc", ""),
        input_search=settings.get("input_search"),
        loss_name=loss_name,
        classes=settings.get("classes") or example.classes,
        model_line=model_line,
    )
    if ctx.classes is None and ctx.failure is None:
        ctx.classes = infer_classes(ctx)
    diags, crashes = run_rules(ctx, rules)
    info = model_info(ctx, model)
    info["context"] = ctx
    info["unused_modules"] = unused_modules(ctx)
    info["crashes"] = [f"rule {c.code} crashed: {c.error}" for c in crashes]
    return diags, info
