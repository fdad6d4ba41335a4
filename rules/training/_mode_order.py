"""Ordering queries on a training script's model mode (NN403): what last set a model's mode before a call.

Also whether eval() ran before an evaluation loop, and which models are the ones being trained.
"""

from __future__ import annotations

import libcst as cst

from nnlint.contexts.source import FunctionInfo

from ._calls import last_part, root, snake
from ._loops import AUX_MODEL_NAME, Analysis
from ._modes import compiled_for_inference


def subject_matches(subject: str, model: str) -> bool:
    if not subject:
        return True  # get_model().eval(): cannot tell which, assume it is this one
    return (
        subject == model
        or model.startswith(subject + ".")
        or subject.startswith(model + ".")
        or (subject == "self" and model.startswith("self."))
    )


def mode_before(
    a: Analysis, func: FunctionInfo | None, node: cst.CSTNode, model: str | None
) -> tuple[str, cst.CSTNode, str | None] | None:
    """What last happened to the model's mode in ``func`` before ``node``, as (kind,
    call, subject): kind "eval", "train" (train mode asked for on purpose: BatchNorm
    recalibration, MC dropout) or "backward" (it was trained since), directly or in a
    helper defined in this file (call is then the helper's call). None when nothing
    did. ``model=None`` accepts any model."""
    order = a.order(func)
    here = order.get(id(node))
    if here is None:
        return None
    latest: tuple[int, tuple[str, cst.CSTNode, str | None]] | None = None

    def relevant(kind: str, subject: str | None) -> bool:
        return kind == "backward" or (
            kind in ("eval", "train") and (model is None or subject_matches(subject or "", model))
        )

    for c in a.calls_in(func):
        pos = order.get(id(c))
        if pos is None or pos >= here or (latest is not None and pos < latest[0]):
            continue
        found = None
        kind = a.classify(c)
        if kind is not None and relevant(*kind):
            found = (kind[0], c, kind[1])
        callee = a.resolve_local(c, func)
        if callee is not None and callee is not func:
            for e in a.facts(callee.node.body, callee).events:
                if relevant(e.kind, e.subject):
                    found = (e.kind, c, e.subject)
        if found is not None:
            latest = (pos, found)
    return latest[1] if latest is not None else None


def eval_in_scope_before(a: Analysis, func: FunctionInfo | None, node: cst.CSTNode, model: str | None) -> bool:
    mode = mode_before(a, func, node, model)
    return mode is not None and mode[0] in ("eval", "train")


def parameter_names(func: FunctionInfo) -> set[str]:
    p = func.node.params
    return {x.name.value for x in [*p.posonly_params, *p.params, *p.kwonly_params]}


def eval_before(a: Analysis, model: str, call: cst.Call, func: FunctionInfo | None) -> tuple[bool, cst.Call | None]:
    """(eval() ran before ``call``, a call site of the evaluation function that lacks it)."""
    mode = mode_before(a, func, call, model)
    if mode is not None and mode[0] in ("eval", "train"):
        return True, None
    if func is None or mode is not None:
        return compiled_for_inference(a, model), None
    if compiled_for_inference(a, model):
        return True, None
    sites = a.call_sites(func)
    missing = next((c for c, f in sites if not eval_in_scope_before(a, f, c, None)), None)
    if sites and missing is None:
        return True, None
    if root(model).split(".")[0] not in parameter_names(func) or root(model).startswith("self."):
        # a global model or an attribute: set to eval elsewhere in the file counts
        for c, f in a.ctx.calls:
            if f is func:
                continue
            kind = a.classify(c)
            if kind is not None and kind[0] == "eval" and kind[1] and subject_matches(kind[1], model):
                return True, None
    return False, missing


def may_be_trained(a: Analysis, subject: str, trained: set[str]) -> bool:
    """Is ``subject`` (switched to eval mode) the whole model being trained? A frozen
    teacher, an EMA copy, a perceptual-loss network, or a submodule frozen on purpose
    (`model.backbone.eval()` to keep its BatchNorm statistics) stay in eval mode by design."""
    if not subject or subject == "self":
        return True
    if trained:
        return any(subject in (t, t + ".module") or t == subject + ".module" for t in trained)
    if "." in subject and not subject.startswith("self.") or subject.count(".") > 1:
        return False
    return a.is_model_like(subject, None) and not AUX_MODEL_NAME.search(snake(last_part(subject)))
