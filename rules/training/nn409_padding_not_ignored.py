from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from nnlint import fixes
from nnlint.analysis.syntax import call_arg, line_of
from nnlint.contexts.source import SourceContext, dotted
from nnlint.diagnostics import Fix, Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

from ._calls import walk
from ._loops import analysis

CE_MODULES = {"torch.nn.CrossEntropyLoss", "torch.nn.modules.loss.CrossEntropyLoss"}
CE_FUNCS = {"torch.nn.functional.cross_entropy"}
PAD_SEQUENCE = {"torch.nn.utils.rnn.pad_sequence"}
PACKING = {
    "torch.nn.utils.rnn.pack_padded_sequence",
    "torch.nn.utils.rnn.pack_sequence",
    "torch.nn.utils.rnn.PackedSequence",
}
#: names of a padding token id
_PAD_NAME = re.compile(r"^(pad|pad_?(token_?)?(id|idx|index|ix)|padding_?(id|idx|index)|pad_token)$", re.IGNORECASE)
#: a tensor flattened over (batch, time) or with classes moved to dim 1: a per-token loss
_TOKEN_LEVEL = re.compile(
    r"\.(view|reshape)\(\s*-1\s*[,)]|\.(view|reshape)\([^)]*\*[^)]*\)|\.flatten\(\s*(0\s*,\s*1|end_dim\s*=\s*1)?\s*\)"
    r"|\.transpose\(\s*1\s*,\s*2\s*\)|\.transpose\(\s*-1\s*,\s*-2\s*\)|\.permute\(\s*0\s*,\s*2\s*,\s*1\s*\)"
    r"|\.mT\b|\[\s*:\s*,\s*1\s*:\s*\]"
)


@dataclass(frozen=True)
class _Pad:
    """How the file pads: the value as written (``PAD``, ``0``) and where."""

    shown: str
    value: int | None
    node: cst.CSTNode
    how: str = ""


class PaddingNotIgnored(SourceRule):
    """## What it does
    Flags a token-level `nn.CrossEntropyLoss` / `F.cross_entropy` (the logits or targets
    flattened over batch and time, `logits.view(-1, V)`, `targets.reshape(-1)`, or the
    classes moved to dim 1 with `transpose(1, 2)`) in a file that pads its sequences —
    `pad_sequence(..., padding_value=P)`, a `PAD`/`pad_id`/`pad_token_id` constant, or
    `padding_idx=` on an embedding — when the loss has no `ignore_index` for the pad
    value. It stays silent when `ignore_index` is the pad value, when the loss is
    `reduction="none"` (the per-token loss is masked by hand), when the loss gets
    boolean-masked tensors, when the file relabels padding as -100 (the default
    `ignore_index`) and when sequences are packed (`pack_padded_sequence`).

    ## Why is this bad?
    Padded positions are not tokens. Without `ignore_index`, every pad position is a
    target the model must predict, and they are the easiest targets there are ("after
    PAD comes PAD"): a large share of the loss and of the gradient goes into predicting
    padding, the reported loss and perplexity look much better than the model is, and
    with length-sorted batches the signal from short sequences is drowned out.

    ## Example
    ```python
    PAD = 0
    batch = pad_sequence(seqs, batch_first=True, padding_value=PAD)
    criterion = nn.CrossEntropyLoss()
    loss = criterion(logits.view(-1, vocab), batch[:, 1:].reshape(-1))
    ```

    ## Use instead
    ```python
    criterion = nn.CrossEntropyLoss(ignore_index=PAD)
    ```

    ## References
    - PyTorch docs, `torch.nn.CrossEntropyLoss`: `ignore_index` "Specifies a target value
      that is ignored and does not contribute to the input gradient"
      (https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html).
    - PyTorch tutorial "Language Translation with nn.Transformer and torchtext":
      `torch.nn.CrossEntropyLoss(ignore_index=PAD_IDX)`.
    - Hugging Face transformers: labels of padded positions are set to -100 so the loss
      ignores them (`DataCollatorForSeq2Seq`, `label_pad_token_id=-100`).
    """

    code = "NN409"
    name = "padding-not-ignored"
    fix_applicability = "unsafe"
    fix_summary = "add `ignore_index=<pad id>` to the loss"
    severity = Severity.WARNING

    VALID = [
        Valid(
            """
            import torch.nn as nn
            from torch.nn.utils.rnn import pad_sequence

            PAD_IDX = 1
            batch = pad_sequence(seqs, batch_first=True, padding_value=PAD_IDX)
            criterion = nn.CrossEntropyLoss(ignore_index=PAD_IDX)
            loss = criterion(logits.view(-1, logits.size(-1)), batch[:, 1:].reshape(-1))
            """,
            note="ignore_index is the pad id",
        ),
        Valid(
            """
            import torch.nn.functional as F
            from torch.nn.utils.rnn import pad_sequence

            batch = pad_sequence(seqs, batch_first=True)
            per_token = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
            loss = (per_token * mask).sum() / mask.sum()
            """,
            note="reduction='none' and a mask",
        ),
        Valid(
            """
            import torch.nn as nn
            from torch.nn.utils.rnn import pad_sequence

            PAD = 0
            x = pad_sequence(texts, batch_first=True, padding_value=PAD)
            criterion = nn.CrossEntropyLoss()
            loss = criterion(model(x), labels)
            """,
            note="text classification: the inputs are padded, the targets (one per sequence) are not",
        ),
        Valid(
            """
            import torch.nn as nn
            from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

            x = pad_sequence(seqs, batch_first=True)
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            y = pack_padded_sequence(targets, lengths, batch_first=True, enforce_sorted=False).data
            loss = nn.functional.cross_entropy(model(packed).data.view(-1, V), y.view(-1))
            """,
            note="packed sequences carry no padding",
        ),
        Valid(
            """
            import torch.nn.functional as F

            labels = input_ids.clone()
            labels[labels == tokenizer.pad_token_id] = -100
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1))
            """,
            note="padding relabelled -100, the default ignore_index",
        ),
        Valid(
            """
            import torch.nn.functional as F
            from transformers import DataCollatorForLanguageModeling

            collate = DataCollatorForLanguageModeling(tokenizer, mlm=False)
            model.config.pad_token_id = tokenizer.pad_token_id
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), batch["labels"][:, 1:].reshape(-1))
            """,
            note="a Hugging Face collator pads the labels with -100",
        ),
        Valid(
            """
            import torch.nn.functional as F

            PAD = 0
            keep = targets != PAD
            loss = F.cross_entropy(logits[keep], targets[keep])
            """,
            note="the loss only sees the real tokens",
        ),
        Valid(
            """
            import torch.nn.functional as F

            loss = F.cross_entropy(logits.view(-1, V), targets.view(-1))
            """,
            note="no padding in the file (fixed-length chunks of a token stream)",
        ),
    ]

    INVALID = [
        Invalid(
            """
            import torch.nn as nn
            from torch.nn.utils.rnn import pad_sequence

            PAD_IDX = 1
            batch = pad_sequence(seqs, batch_first=True, padding_value=PAD_IDX)
            criterion = nn.CrossEntropyLoss()
            logits = model(batch[:, :-1])
            loss = criterion(logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1))
            """,
            line=6,
            contains="ignore_index=PAD_IDX",
        ),
        Invalid(
            """
            import torch.nn.functional as F
            from torch.nn.utils.rnn import pad_sequence

            tgt = pad_sequence(targets, batch_first=True)
            loss = F.cross_entropy(logits.transpose(1, 2), tgt)
            """,
            line=5,
            contains="padding_value",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class LM(nn.Module):
                def __init__(self, vocab, pad_id):
                    super().__init__()
                    self.emb = nn.Embedding(vocab, 64, padding_idx=pad_id)
                    self.loss_fn = nn.CrossEntropyLoss()

                def loss(self, x, y):
                    return self.loss_fn(self(x).view(-1, self.vocab), y.view(-1))
            """,
            line=8,
            contains="pad_id",
        ),
        Invalid(
            """
            import torch.nn as nn

            PAD = 0
            criterion = nn.CrossEntropyLoss(ignore_index=1)
            loss = criterion(logits.view(-1, V), targets.view(-1))
            """,
            line=4,
            contains="ignore_index=1",
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        text = ctx.text
        if "cross_entropy" not in text and "CrossEntropyLoss" not in text:
            return
        if "pad" not in text.lower():
            return
        if any(ctx.qualname(c) in PACKING for c, _ in ctx.calls):
            return
        pad = _padding(ctx)
        if pad is None:
            return
        # -100 is CrossEntropyLoss's default ignore_index; Hugging Face data collators pad labels with it
        relabelled = bool(re.search(r"-\s*100\b", text)) or "DataCollator" in text
        for call, _func in ctx.calls:
            q = ctx.qualname(call)
            if q in CE_FUNCS:
                uses = [call]
            elif q in CE_MODULES:
                uses = _uses_of_criterion(ctx, call)
            else:
                continue
            where = call
            if (reduction := call_arg(call, None, "reduction")) is not None and _string(reduction.value) == "none":
                continue
            if not uses or not any(_token_level(ctx, u) for u in uses):
                continue
            if any(_masked(u) for u in uses):
                continue
            ignore = call_arg(call, None, "ignore_index")
            if ignore is None:
                if relabelled or pad.value == -100:
                    continue
                yield self._finding(ctx, call, where, pad, None)
                continue
            value = _int(ignore.value)
            if value is not None and pad.value is not None and value != pad.value:
                yield self._finding(ctx, call, ignore.value, pad, value)

    def _finding(
        self, ctx: SourceContext, call: cst.Call, where: cst.CSTNode, pad: _Pad, ignore: int | None
    ) -> Finding:
        pad_line = line_of(ctx, pad.node)
        loss = ctx.code(call.func)
        value = f" (= {pad.value})" if pad.value is not None and pad.shown != str(pad.value) else ""
        how = pad.how or f"with `{pad.shown}`{value}"
        if ignore is None:
            head = f"token-level `{loss}` has no `ignore_index`, but the file pads sequences {how}"
        else:
            head = f"token-level `{loss}` has `ignore_index={ignore}`, but the file pads sequences {how}"
        message = (
            f"{head} (line {pad_line}): every padded position is a target the model is trained to predict, "
            f"the loss is dominated by easy pad tokens and understates the real loss. Pass `ignore_index={pad.shown}` "
            f'(or compute the loss with reduction="none" and mask the padding)'
        )
        return Finding(
            message,
            node=where,
            evidence={"pad": pad.shown, "pad_value": pad.value, "pad_line": pad_line},
            related=((pad.node, f"padding with `{pad.shown}`"),),
            fix=self._fix(ctx, call, pad),
        )

    def _fix(self, ctx: SourceContext, call: cst.Call, pad: _Pad) -> Fix | None:
        """``ignore_index=P``: the name the file uses (PAD_IDX), else the value."""
        value = pad.shown if pad.value is None or re.fullmatch(r"[A-Za-z_][\w.]*", pad.shown) else str(pad.value)
        if pad.how:  # pad_sequence's default: write the number
            value = str(pad.value)
        return self.make_fix(f"pass ignore_index={value}", fixes.set_keyword(ctx, call, "ignore_index", value))


def _padding(ctx: SourceContext) -> _Pad | None:
    """The pad value the file uses, from the strongest evidence: ``pad_sequence``'s
    ``padding_value`` (0 by default), then a pad-id constant, ``padding_idx=``, or a
    tokenizer's ``pad_token_id``."""
    for call, _ in ctx.calls:
        if ctx.qualname(call) in PAD_SEQUENCE:
            pv = call_arg(call, 2, "padding_value")
            if pv is None:
                return _Pad("0", 0, call, "with pad_sequence's default padding_value=0")
            return _Pad(ctx.code(pv.value), _value(ctx, pv.value), call)
    a = analysis(ctx)
    for name, items in a.assignments().items():
        if _PAD_NAME.match(name.rsplit(".", 1)[-1]):
            for item in items:
                if item.value is not None and _value(ctx, item.value) is not None:
                    return _Pad(name, _value(ctx, item.value), item.node)
    for call, _ in ctx.calls:
        pi = call_arg(call, None, "padding_idx")
        if pi is not None:
            return _Pad(ctx.code(pi.value), _value(ctx, pi.value), pi.value)
    for node in walk(ctx.module, cst.Attribute, into_defs=True):
        if node.attr.value in ("pad_token_id", "pad_id", "pad_idx", "pad_index"):
            return _Pad(ctx.code(node), None, node)
    return None


def _value(ctx: SourceContext, expr: cst.BaseExpression) -> int | None:
    v = _int(expr)
    if v is not None:
        return v
    if isinstance(expr, cst.Name):
        vals = [x for x in analysis(ctx).values_of(expr.value)]
        if len(vals) == 1:
            return _int(vals[0])
    return None


def _int(expr: cst.BaseExpression) -> int | None:
    if isinstance(expr, cst.Integer):
        return int(expr.value, 0)
    if (
        isinstance(expr, cst.UnaryOperation)
        and isinstance(expr.operator, cst.Minus)
        and isinstance(expr.expression, cst.Integer)
    ):
        return -int(expr.expression.value, 0)
    return None


def _string(expr: cst.BaseExpression) -> str | None:
    value = expr.evaluated_value if isinstance(expr, cst.SimpleString) else None
    return value if isinstance(value, str) else None  # b"..." is no option name


def _uses_of_criterion(ctx: SourceContext, ctor: cst.Call) -> list[cst.Call]:
    """Calls of the criterion ``ctor`` builds: ``criterion = nn.CrossEntropyLoss()`` then
    ``criterion(...)`` (or ``self.loss_fn(...)``), or ``nn.CrossEntropyLoss()(...)``."""
    names: set[str] = set()
    for node in walk(ctx.module, cst.Assign, into_defs=True):
        if node.value is ctor:
            names.update(n for n in (dotted(t.target) for t in node.targets) if n)
    out = []
    for call, _ in ctx.calls:
        if call.func is ctor or (names and dotted(call.func) in names):
            out.append(call)
    return out


def _token_level(ctx: SourceContext, call: cst.Call) -> bool:
    return any(_TOKEN_LEVEL.search(ctx.code(x.value)) for x in call.args[:2])


def _masked(call: cst.Call) -> bool:
    """The loss gets boolean-selected elements: ``logits[mask]``, ``targets[keep]``."""
    for x in call.args[:2]:
        v = x.value
        while isinstance(v, cst.Call) and isinstance(v.func, cst.Attribute):
            v = v.func.value
        if isinstance(v, cst.Subscript) and len(v.slice) == 1 and isinstance(v.slice[0].slice, cst.Index):
            inner = v.slice[0].slice.value
            if isinstance(inner, (cst.Name, cst.Attribute, cst.Comparison)):
                return True
    return False
