from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from nnlint import fixes
from nnlint.contexts.source import SourceContext, dotted
from nnlint.diagnostics import Fix, Severity
from nnlint.rule import Finding, Invalid, SourceRule, Valid

from ._loops import Analysis, analysis, is_no_grad_item, iter_statements, method_name, walk


class HiddenStateNotDetached(SourceRule):
    """## What it does
    Flags recurrent state carried from one batch to the next without `.detach()`:
    - in a training loop (a loop that calls `backward()`), `output, hidden = model(x,
      hidden)` where nothing in the loop body detaches or re-creates `hidden`;
    - in a module's `forward`, state stored on the module (`out, self.hidden =
      self.rnn(x, self.hidden)`, `self.h = self.cell(x, self.h)`) and fed back on the next
      call, with no `.detach()` of it and no method that resets it.

    It stays silent when the state is detached (`hidden.detach()`, `detach_()`, a
    `repackage_hidden` helper: any reassignment in the loop body), re-created per batch
    (`hidden = model.init_hidden(bs)`), carried only inside one sequence (a loop over time
    steps with the backward after it), or when the file only evaluates the model.

    ## Why is this bad?
    The state returned by an RNN is part of the current batch's autograd graph. Feeding it
    into the next batch chains every batch's graph to the previous ones: the second
    `loss.backward()` fails with "Trying to backward through the graph a second time"
    (the first backward freed the shared part), and with `retain_graph=True` added to
    silence that, backpropagation runs through the whole history — memory and time grow
    every step until training stalls or runs out of memory.

    ## Example
    ```python
    hidden = model.init_hidden(batch_size)
    for x, y in loader:
        optimizer.zero_grad()
        output, hidden = model(x, hidden)
        loss = criterion(output, y)
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    hidden = model.init_hidden(batch_size)
    for x, y in loader:
        hidden = hidden.detach()  # for an LSTM: tuple(h.detach() for h in hidden)
        optimizer.zero_grad()
        output, hidden = model(x, hidden)
        ...
    ```

    ## References
    - PyTorch examples, word_language_model `main.py`: `repackage_hidden` "Wraps hidden
      states in new Tensors, to detach them from their history"
      (https://github.com/pytorch/examples/blob/main/word_language_model/main.py).
    - PyTorch forums, "RuntimeError: Trying to backward through the graph a second time"
      with stateful RNNs (truncated backpropagation through time).
    """

    code = "NN410"
    name = "hidden-state-not-detached"
    fix_applicability = "unsafe"
    fix_summary = "`.detach()` the carried hidden state where it is passed back in"
    severity = Severity.ERROR

    VALID = [
        Valid(
            """
            hidden = model.init_hidden(32)
            for x, y in loader:
                hidden = repackage_hidden(hidden)
                optimizer.zero_grad()
                output, hidden = model(x, hidden)
                criterion(output, y).backward()
                optimizer.step()
            """,
            note="the word_language_model example: repackaged every batch",
        ),
        Valid(
            """
            for x, y in loader:
                hidden = model.init_hidden(x.size(0))
                optimizer.zero_grad()
                output, hidden = model(x, hidden)
                criterion(output, y).backward()
                optimizer.step()
            """,
            note="re-created per batch",
        ),
        Valid(
            """
            h = None
            for x, y in loader:
                optimizer.zero_grad()
                out, h = model(x, h)
                criterion(out, y).backward()
                optimizer.step()
                h.detach_()
            """,
            note="detached in place",
        ),
        Valid(
            """
            import torch

            hidden = None
            with torch.no_grad():
                for x in stream:
                    out, hidden = model(x, hidden)
                    print(out.argmax(-1))
            """,
            note="evaluation only: nothing is backpropagated",
        ),
        Valid(
            """
            for x, y in loader:
                h = torch.zeros(1, x.size(1), 64)
                for t in range(x.size(0)):
                    out, h = cell(x[t], h)
                loss = criterion(out, y)
                loss.backward()
                optimizer.step()
            """,
            note="state carried over time steps of one sequence, reset per batch",
        ),
        Valid(
            """
            import torch.nn as nn

            class Stateful(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.rnn = nn.GRU(8, 16, batch_first=True)
                    self.hidden = None

                def forward(self, x):
                    out, h = self.rnn(x, self.hidden)
                    self.hidden = h.detach()
                    return out
            """,
            note="the stored state is detached",
        ),
        Valid(
            """
            import torch.nn as nn

            class Stateful(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.rnn = nn.GRU(8, 16, batch_first=True)
                    self.hidden = None

                def reset_state(self):
                    self.hidden = None

                def forward(self, x):
                    out, self.hidden = self.rnn(x, self.hidden)
                    return out
            """,
            note="a reset method re-initialises the state",
        ),
        Valid(
            """
            import torch.nn as nn

            class Encoder(nn.Module):
                def forward(self, x):
                    out, hidden = self.rnn(x)
                    self.last = out
                    return out, hidden
            """,
            note="the stored value is never fed back",
        ),
        Valid(
            """
            import torch

            hidden = model.init_hidden(8)
            for data, target in batches:
                hidden[0].detach_()
                hidden[1].detach_()
                output, hidden = model(data, hidden)
                loss = criterion(output, target)
                loss.backward()
                opt.step()
                opt.zero_grad()
            """,
            note="in-place detach_() on each element of the (h, c) state",
        ),
    ]

    INVALID = [
        Invalid(
            """
            hidden = model.init_hidden(32)
            for x, y in loader:
                optimizer.zero_grad()
                output, hidden = model(x, hidden)
                loss = criterion(output, y)
                loss.backward(retain_graph=True)
                optimizer.step()
            """,
            line=4,
            contains="hidden",
        ),
        Invalid(
            """
            import torch.nn as nn

            class CharRNN(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.rnn = nn.LSTM(32, 128, batch_first=True)
                    self.fc = nn.Linear(128, 32)
                    self.state = None

                def forward(self, x):
                    out, self.state = self.rnn(x, self.state)
                    return self.fc(out)
            """,
            line=11,
            contains="self.state",
        ),
        Invalid(
            """
            def train(model, loader, optimizer, criterion):
                h, c = model.zero_state()
                for x, y in loader:
                    optimizer.zero_grad()
                    out, (h, c) = model(x, (h, c))
                    criterion(out, y).backward()
                    optimizer.step()
            """,
            line=5,
            contains="h, c",
        ),
    ]

    def check(self, ctx: SourceContext) -> Iterator[Finding]:
        if "hidden" not in ctx.text and "state" not in ctx.text and not ctx.loops:
            return
        a = analysis(ctx)
        yield from self._loops(ctx, a)
        yield from self._modules(ctx, a)

    # out, hidden = model(x, hidden) in a training loop -------------------------------------
    def _loops(self, ctx: SourceContext, a: Analysis) -> Iterator[Finding]:
        for loop, func in ctx.loops:
            body = list(loop.body.body) if isinstance(loop.body, cst.IndentedBlock) else []
            stmts = list(iter_statements(body, into_loops=False))
            carried = None
            for st in stmts:
                if isinstance(st, cst.Assign) and isinstance(st.value, cst.Call):
                    names = _fed_back(st)
                    if names:
                        carried = (st, st.value, names)
                        break
            if carried is None:
                continue
            st, call, names = carried
            if not a.facts(loop.body, func).first("backward"):
                continue
            if a.in_no_grad(st):
                continue
            if _released(stmts, st, names):
                continue
            shown = ", ".join(names)
            yield Finding(
                f"`{shown}` returned by `{ctx.code(call.func)}` is fed back into the next batch without "
                f"`.detach()`: each batch's graph is chained to the previous ones, so the second backward() fails "
                f'("Trying to backward through the graph a second time") or, with retain_graph=True, '
                f"backpropagation runs through the whole history and slows down and grows in memory every step. "
                f"Detach the state at the start of each batch (`{_detach_hint(ctx, names)}`) or re-create it",
                node=st,
                evidence={"state": list(names)},
                fix=None if _starts_as_none(a, names) else self._fix(ctx, call, names),
            )

    def _fix(self, ctx: SourceContext, call: cst.Call, names: list[str]) -> Fix | None:
        """Detach the state where it is passed in; offered only where the state is plain
        names (a single name in a file with an LSTM may be an (h, c) tuple)."""
        if len(names) == 1 and "LSTM" in ctx.text:
            return None
        edits = []
        for x in call.args:
            nodes = [el.value for el in x.value.elements] if isinstance(x.value, cst.Tuple) else [x.value]
            for node in nodes:
                n = dotted(node)
                if n in names:
                    edits.append(fixes.replace(ctx, node, f"{n}.detach()"))
        if not edits:
            return None
        return self.make_fix("detach the carried state where it is passed in", *edits)

    # self.hidden stored in forward and fed back -------------------------------------------
    def _modules(self, ctx: SourceContext, a: Analysis) -> Iterator[Finding]:
        if "self." not in ctx.text:
            return
        evaluates_only = ".backward(" not in ctx.text and any(k in ctx.text for k in ("no_grad", "inference_mode"))
        if evaluates_only:
            return
        for cls in ctx.module_classes():
            fwd = cls.methods.get("forward")
            if fwd is None:
                continue
            if any(is_no_grad_item(ctx, d.decorator) for d in fwd.decorators):
                continue
            stmts = list(iter_statements(list(fwd.body.body)))
            for st in stmts:
                if not isinstance(st, cst.Assign):
                    continue
                stored = [n for n in _targets(st) if n.startswith("self.")]
                if not stored:
                    continue
                for name in stored:
                    if not _read_as_argument(fwd, name):
                        continue  # never fed back into a call
                    if _detached_anywhere(ctx, name, st) or _reset_elsewhere(cls, fwd, name):
                        continue
                    yield Finding(
                        f"`{name}` stores the recurrent state in forward and feeds it back on the next call without "
                        f"`.detach()`: every batch's graph is chained to the previous ones, so the second backward() "
                        f'fails ("Trying to backward through the graph a second time") or, with retain_graph=True, '
                        f"backpropagation runs through the whole history. Store `{_detach_hint(ctx, [name])}`, or "
                        f"reset the state before each batch",
                        node=st,
                        evidence={"state": [name]},
                    )
                    break


def _names(expr: cst.BaseExpression) -> list[str]:
    """Dotted names in a target or argument, through tuples: ``(h, c)`` -> h, c."""
    if isinstance(expr, (cst.Tuple, cst.List)):
        return [n for el in expr.elements for n in _names(el.value)]
    name = dotted(expr)
    return [name] if name else []


def _targets(st: cst.Assign) -> list[str]:
    return [n for t in st.targets for n in _names(t.target)]


def _fed_back(st: cst.Assign) -> list[str]:
    """State-like names (hidden, state, h, c, mems ...) that are both an argument of the
    call and assigned from its result (``x, y = augment(x, y)`` is not state)."""
    call = st.value
    assert isinstance(call, cst.Call)
    if method_name(call) == "detach":
        return []
    args = [n for x in call.args for n in _names(x.value)]
    return [n for n in _targets(st) if n in args and _state_like(n)]


def _state_like(name: str) -> bool:
    low = name.rsplit(".", 1)[-1].lower()
    return any(k in low for k in ("hid", "state", "mem")) or low in ("h", "c", "hx", "cx", "h0", "c0", "hc")


def _released(stmts: list, carry: cst.Assign, names: list[str]) -> bool:
    """Another assignment of the state in the loop body (detach, repackage, re-create),
    or an in-place ``detach_()``."""
    for st in stmts:
        if st is carry:
            continue
        if isinstance(st, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
            targets = _targets(st) if isinstance(st, cst.Assign) else _names(st.target)
            if set(targets) & set(names):
                return True
        for call in [st, *walk(st, cst.Call)] if not isinstance(st, cst.Call) else [st]:
            if isinstance(call, cst.Call) and method_name(call) in ("detach_", "detach") and _receiver(call) in names:
                return True
            if isinstance(call, cst.Call) and method_name(call) == "detach_" and _detached_element(call, st, names):
                return True
    return False


def _detached_element(call: cst.Call, st: cst.CSTNode, names: list[str]) -> bool:
    """In-place ``detach_()`` on an element of the state: ``hidden[0].detach_()``, or
    ``s.detach_()`` in ``for s in hidden:``."""
    recv = call.func.value if isinstance(call.func, cst.Attribute) else None
    if isinstance(recv, cst.Subscript):
        while isinstance(recv, cst.Subscript):
            recv = recv.value
        return dotted(recv) in names
    return (
        isinstance(st, cst.For)
        and dotted(st.iter) in names
        and isinstance(st.target, cst.Name)
        and dotted(recv) == st.target.value
    )


def _receiver(call: cst.Call) -> str | None:
    return dotted(call.func.value) if isinstance(call.func, cst.Attribute) else None


def _read_as_argument(fwd: cst.FunctionDef, name: str) -> bool:
    for call in walk(fwd.body, cst.Call):
        if any(name in _names(x.value) for x in call.args):
            return True
    return False


def _detached_anywhere(ctx: SourceContext, name: str, stored: cst.Assign) -> bool:
    """``.detach()`` on the stored value or on ``name`` anywhere in the file."""
    for call in walk(stored.value, cst.Call):
        if method_name(call) in ("detach", "detach_"):
            return True
    if isinstance(stored.value, cst.Call) and method_name(stored.value) in ("detach", "detach_"):
        return True
    for call, _ in ctx.calls:
        m = method_name(call)
        if m in ("detach", "detach_") and _receiver(call) == name:
            return True
        callee = (dotted(call.func) or "").lower()
        if ("repackage" in callee or "detach" in callee) and any(name in _names(x.value) for x in call.args):
            return True
    return False


def _reset_elsewhere(cls, fwd: cst.FunctionDef, name: str) -> bool:
    """A method other than ``__init__`` and ``forward`` assigns the state (a reset)."""
    for mname, method in cls.methods.items():
        if method is fwd or mname == "__init__":
            continue
        for st in walk(method.body, cst.Assign):
            if name in _targets(st):
                return True
    return False


def _detach_hint(ctx: SourceContext, names: list[str]) -> str:
    if len(names) == 1:
        n = names[0]
        if "LSTM" in ctx.text:
            return (
                f"{n} = tuple(s.detach() for s in {n})"
                if not n.startswith("self.")
                else "tuple(s.detach() for s in state)"
            )
        return f"{n} = {n}.detach()" if not n.startswith("self.") else f"{n} = state.detach()"
    return ", ".join(names) + " = " + ", ".join(f"{n}.detach()" for n in names)


def _starts_as_none(a: Analysis, names: list[str]) -> bool:
    """``hidden = None`` somewhere: ``hidden.detach()`` would fail on the first batch."""
    return any(isinstance(v, cst.Name) and v.value == "None" for n in names for v in a.values_of(n))
