"""A small value-flow analysis shared by the output-head and loss rules (NN103-NN108, NN113).

Each function body is walked once in statement order; every name (and every ``self.x``
attribute) maps to a ``Val`` that says what is known about the value:

- ``tag``: the last thing that shaped it: ``softmax``, ``log_softmax``, ``sigmoid``, ``act``
  (any other non-identity activation: relu, gelu, tanh...), ``logits`` (the output of an
  affine layer, Linear/Conv, with nothing after it) or ``None`` (unknown);
- ``k``: the head width (out_features/out_channels of the affine layer that made it);
- ``batched``: ``"yes"`` when dim 0 is known to be the batch (a DataLoader batch, a
  ``x.view(x.size(0), -1)`` flatten, BatchNorm2d, a model's output on a batch...),
  ``"input"`` inside ``forward`` when dim 0 is the batch iff the caller passed a batch,
  ``"maybe"`` for a 2-D/4-D random tensor, which counts as a batch once fed to a model;
- ``target``: for loss targets, ``index`` (class indices), ``float``, ``onehot``;
- ``obj``: for non-tensors: a torch layer built in the file, an ``nn.Sequential``, an
  instance of a model class of the file, a loss module, a DataLoader.

Calling a model instance yields what its ``forward`` returns (analysed once per class);
calling a Sequential folds its layers; functions of the file are bound from their call
sites. Branches merge (a value that differs between branches becomes unknown) and loops
are walked twice, so that a value from a previous iteration is never taken for certain.
Unknown is the default everywhere: the rules only fire on positive evidence.

What the rules read is a ``Flow``: the loss calls with their input and target values,
argmax predictions, and softmax calls over ``dim=0``. It is computed once per file.
"""

from __future__ import annotations

import weakref

import libcst as cst

from nnlint.analysis.flow_records import Flow, LossUse
from nnlint.analysis.interpreter import Interpreter
from nnlint.analysis.syntax import line_of, short_expr
from nnlint.analysis.values import Val
from nnlint.contexts.source import SourceContext

_CACHE: weakref.WeakKeyDictionary[SourceContext, Flow] = weakref.WeakKeyDictionary()


def flow(ctx: SourceContext) -> Flow:
    """The file's value flow, computed on first use and shared by every rule."""
    got = _CACHE.get(ctx)
    if got is None:
        got = Interpreter(ctx).run()
        _CACHE[ctx] = got
    return got


# message helpers shared by the rules


def act_name(v: Val) -> str:
    """How the op that made ``v`` reads in a message: `F.softmax` -> softmax, nn.Softmax -> Softmax."""
    return v.act or v.tag or "?"


def describe(ctx: SourceContext, expr: cst.BaseExpression, v: Val, verb: str = "went through") -> str:
    """ "`probs` went through softmax (line 12)" / "`out` (the output of Net) went
    through Softmax (line 20)"."""
    name = f"`{short_expr(ctx, expr)}`"
    if v.model and v.model != short_expr(ctx, expr):
        name += f" (the output of {v.model})"
    line = line_of(ctx, v.at)
    where = f" (line {line})" if line is not None else ""
    return f"{name} {verb} {act_name(v)}{where}"


def loss_name(u: LossUse) -> str:
    return u.display if u.display[:1].isupper() else f"F.{u.display}"
