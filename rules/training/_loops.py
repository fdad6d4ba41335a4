"""The training-script analysis the NN4 rules share: events (backward, step, zero_grad, eval...) per loop.

Not a rule (the registry skips underscore modules); what a single name or call is lives in
rules/training/_calls.py. Everything here works from what the source pass already indexed (``ctx.calls``,
``ctx.loops``, ``ctx.functions``) plus, only when a rule asks for it, one extra walk of
the file for assignments and ``torch.no_grad()`` regions. The result is cached per
``SourceContext``, so the seven NN4 rules share one analysis of a file. No metadata
providers, no re-parsing, no torch.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

import libcst as cst

from nnlint.contexts.source import ClassInfo, FunctionInfo, SourceContext, child_nodes, dotted
from nnlint.vocab import DATALOADER_CLASSES, OPTIMIZER_CLASSES

from ._calls import (
    eval_subject,
    is_backward,
    is_clip,
    is_grad_reset,
    is_no_grad_item,
    is_train_mode,
    is_zero_grad,
    last_part,
    method_name,
    receiver,
    receiver_name,
    snake,
    unwrap_iter,
    walk,
)

#: how deep calls to functions defined in the same file are followed
MAX_HELPER_DEPTH = 3


_OPT_NAME = re.compile(r"optim|^opt$|^opt_|_opt$|^opt[a-z0-9]$")
_SCHED_NAME = re.compile(r"sched|(^|_)lr($|_)|warmup")
_MODEL_NAME = re.compile(r"model|net|network|encoder|decoder|classifier|backbone|generator|discriminator|transformer")
_LOADER_NAME = re.compile(r"loader|batches|dataset|iterator|(^|_)(dl|ds|data|iter)($|_)")
AUX_MODEL_NAME = re.compile(r"ema|teacher|target|frozen|(^|_)ref($|_)|reference|pretrained|vgg|lpips|inception|clip")


# events ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """Something a training step does: kind is one of backward, step, zero, clip, eval,
    train. ``anchor`` lies in the body that was analysed (the call itself, or the call of
    the helper that does it); ``node`` is the call itself, possibly inside that helper."""

    kind: str
    anchor: cst.CSTNode
    node: cst.CSTNode
    subject: str | None = None
    via: str | None = None


@dataclass
class Facts:
    events: list[Event] = field(default_factory=list)
    #: a loop inside (directly or in a helper) calls both backward() and an optimizer step
    inner_train_loop: bool = False

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def first(self, kind: str) -> Event | None:
        return next((e for e in self.events if e.kind == kind), None)

    def trains(self) -> bool:
        return self.first("backward") is not None and self.first("step") is not None


@dataclass
class Assignment:
    target: str
    value: cst.BaseExpression | None  # None: unpacked from a tuple, a for target, or +=
    node: cst.CSTNode  # the small statement (or the for loop) that assigns
    func: FunctionInfo | None


def sub_blocks(node: cst.CSTNode) -> Iterator[list]:
    """The statement lists directly under a compound statement (body, else, except,
    finally, elif chains, match cases)."""
    for child in child_nodes(node):
        if isinstance(child, cst.BaseSuite):
            yield list(child.body)
        elif isinstance(
            child, (cst.If, cst.Else, cst.ExceptHandler, cst.ExceptStarHandler, cst.Finally, cst.MatchCase)
        ):
            yield from sub_blocks(child)


def iter_statements(stmts: list, *, into_loops: bool = True) -> Iterator[cst.CSTNode]:
    """Small statements and compound statements under ``stmts``, in source order,
    skipping nested defs (and nested loops' bodies unless ``into_loops``)."""
    stack = list(reversed(stmts))
    while stack:
        st = stack.pop()
        if isinstance(st, cst.SimpleStatementLine):
            stack.extend(reversed(st.body))
            continue
        yield st
        if isinstance(st, (cst.FunctionDef, cst.ClassDef, cst.BaseSmallStatement)):
            continue
        if not into_loops and isinstance(st, (cst.For, cst.While)):
            continue
        inner = [x for block in sub_blocks(st) for x in block]
        stack.extend(reversed(inner))


class Analysis:
    """Per-file facts the NN4 rules share. Build with ``analysis(ctx)``."""

    def __init__(self, ctx: SourceContext) -> None:
        # a proxy: the cache below is keyed weakly by ctx, and a strong reference from
        # its value would keep every linted file's tree alive
        self.ctx = weakref.proxy(ctx)
        self.funcs_by_node: dict[int, FunctionInfo] = {id(f.node): f for f in ctx.functions}
        self.plain_funcs: dict[str, FunctionInfo] = {f.name: f for f in ctx.functions if f.cls is None}
        self.calls_by_func: dict[int, list[cst.Call]] = {}
        for call, f in ctx.calls:
            self.calls_by_func.setdefault(id(f.node) if f is not None else 0, []).append(call)
        self.mentions_no_grad = any(k in ctx.text for k in ("no_grad", "inference_mode", "set_grad_enabled"))
        self._facts: dict[int, Facts] = {}
        self._kinds: dict[int, tuple[str, str | None] | None] = {}
        self._walked = False
        self._assigns: dict[str, list[Assignment]] = {}
        self._assigns_by_func: dict[int, list[Assignment]] = {}
        self._returns_by_func: dict[int, list[cst.Return]] = {}
        self._stmt_order: dict[int, int] = {}
        self._nograd: set[int] = set()
        self._chain_eval: dict[int, str] = {}
        self._order: dict[int, dict[int, int]] = {}
        self._opt_vars: set[str] | None = None
        self._trained: set[str] | None = None
        self._method_class: dict[int, ClassInfo] | None = None
        self._ctor_args: dict[int, cst.Call] | None = None
        self._sites: dict[int, list[tuple[cst.Call, FunctionInfo | None]]] | None = None

    def calls_in(self, func: FunctionInfo | None) -> list[cst.Call]:
        return self.calls_by_func.get(id(func.node) if func is not None else 0, [])

    # local functions -------------------------------------------------------------------
    def _class_of(self, func: FunctionInfo) -> ClassInfo | None:
        """The class of a method, or of the method a def is nested in."""
        if func.cls is not None:
            return func.cls
        if self._method_class is None:
            self._method_class = {}
            for info in self.ctx.functions:
                if info.cls is not None:
                    for inner in walk(info.node.body, cst.FunctionDef, into_defs=True):
                        self._method_class.setdefault(id(inner), info.cls)
        return self._method_class.get(id(func.node))

    def resolve_local(self, call: cst.Call, func: FunctionInfo | None) -> FunctionInfo | None:
        """The function defined in this file that ``call`` runs: ``helper(...)`` or
        ``self.method(...)`` of the enclosing class."""
        f = call.func
        if isinstance(f, cst.Name):
            if f.value in self.ctx.aliases:
                return None
            return self.plain_funcs.get(f.value)
        if (
            isinstance(f, cst.Attribute)
            and isinstance(f.value, cst.Name)
            and f.value.value == "self"
            and func is not None
        ):
            cls = self._class_of(func)
            if cls is not None and f.attr.value in cls.methods:
                return self.funcs_by_node.get(id(cls.methods[f.attr.value]))
        return None

    def call_sites(self, func: FunctionInfo) -> list[tuple[cst.Call, FunctionInfo | None]]:
        """Where this file calls ``func``."""
        if self._sites is None:
            self._sites = {}
            for c, f in self.ctx.calls:
                callee = self.resolve_local(c, f)
                if callee is not None:
                    self._sites.setdefault(id(callee.node), []).append((c, f))
        return self._sites.get(id(func.node), [])

    # optimizers ------------------------------------------------------------------------
    def is_optimizer_ctor(self, call: cst.Call) -> bool:
        q = self.ctx.qualname(call) or ""
        if q.startswith(("torch.optim.lr_scheduler", "torch.optim.swa_utils")):
            return False
        if q.startswith("torch.optim."):
            return True
        name = last_part(q)
        return name in OPTIMIZER_CLASSES or ("optim" in name.lower() and "sched" not in name.lower())

    def optimizer_vars(self) -> set[str]:
        if self._opt_vars is None:
            self._opt_vars = {
                a.target
                for items in self.assignments().values()
                for a in items
                if isinstance(a.value, cst.Call) and self.is_optimizer_ctor(a.value)
            }
        return self._opt_vars

    def is_step(self, call: cst.Call) -> bool:
        """An optimizer step: ``optimizer.step()``, ``scaler.step(opt)``,
        ``xm.optimizer_step(opt)``; never ``scheduler.step()`` or ``env.step(a)``."""
        m = method_name(call)
        if m == "optimizer_step":
            return True
        if m != "step":
            return False
        recv = receiver(call)
        name = receiver_name(call)
        if name is None and isinstance(recv, cst.Call):
            name = dotted(recv.func)  # self.optimizers().step()
        if not name:
            return False
        low = snake(last_part(name))
        if _SCHED_NAME.search(low):
            return False
        if _OPT_NAME.search(low):
            return True
        if "scaler" in low and call.args:
            return True
        return name in self.optimizer_vars()

    def trained_models(self) -> set[str]:
        """Dotted names whose ``.parameters()`` are handed to an optimizer."""
        if self._trained is None:
            out: set[str] = set()
            for call, _ in self.ctx.calls:
                if method_name(call) not in ("parameters", "named_parameters"):
                    continue
                name = receiver_name(call)
                if name and any(self.is_optimizer_ctor(c) for c in self._enclosing_ctor_calls(call)):
                    out.add(name)
            self._trained = out
        return self._trained

    def _enclosing_ctor_calls(self, inner: cst.Call) -> list[cst.Call]:
        if self._ctor_args is None:
            self._ctor_args = {}
            for call, _ in self.ctx.calls:
                if self.is_optimizer_ctor(call):
                    for a in call.args:
                        for n in [a.value, *walk(a.value, cst.Call)]:
                            if isinstance(n, cst.Call):
                                self._ctor_args[id(n)] = call
        found = self._ctor_args.get(id(inner))
        return [found] if found is not None else []

    # events ----------------------------------------------------------------------------
    def classify(self, call: cst.Call) -> tuple[str, str | None] | None:
        key = id(call)
        if key in self._kinds:
            return self._kinds[key]
        kind: tuple[str, str | None] | None = None
        if is_backward(self.ctx, call):
            kind = ("backward", None)
        elif is_zero_grad(call):
            kind = ("zero", None)
        elif self.is_step(call):
            kind = ("step", None)
        elif is_clip(self.ctx, call):
            kind = ("clip", None)
        else:
            subject = eval_subject(call)
            if subject is not None:
                kind = ("eval", subject or self.chain_eval_subject(call))
            elif is_train_mode(call):
                kind = ("train", receiver_name(call))
        self._kinds[key] = kind
        return kind

    def facts(self, body: cst.CSTNode, func: FunctionInfo | None, _stack: tuple[int, ...] = ()) -> Facts:
        """What running ``body`` (a loop or function body) does, following calls to
        functions defined in this file."""
        key = id(body)
        if key in self._facts:
            return self._facts[key]
        out = Facts()
        for n in walk(body, into_loops=False):
            if isinstance(n, cst.Call):
                kind = self.classify(n)
                if kind is not None:
                    out.events.append(Event(kind[0], n, n, kind[1]))
                callee = self.resolve_local(n, func)
                if callee is not None and id(callee.node) not in _stack and len(_stack) < MAX_HELPER_DEPTH:
                    sub = self.facts(callee.node.body, callee, _stack + (id(callee.node),))
                    out.events.extend(Event(e.kind, n, e.node, e.subject, e.via or callee.name) for e in sub.events)
                    out.inner_train_loop |= sub.inner_train_loop
            elif isinstance(n, cst.Assign) and is_grad_reset(n):
                out.events.append(Event("zero", n, n))
            elif isinstance(n, (cst.For, cst.While)):
                sub = self.facts(n.body, func, _stack)
                out.events.extend(sub.events)
                out.inner_train_loop |= sub.inner_train_loop or sub.trains()
        self._facts[key] = out
        return out

    # one statement-level walk: assignments, returns, no_grad regions -----------------------
    def _walk(self) -> None:
        if self._walked:
            return
        self._walked = True
        ctx = self.ctx
        scan_nograd = self.mentions_no_grad
        scopes: list[tuple[list, FunctionInfo | None, bool]] = [(list(ctx.module.body), None, False)]
        for f in ctx.functions:
            ng = scan_nograd and any(is_no_grad_item(ctx, d.decorator) for d in f.node.decorators)
            scopes.append((list(f.node.body.body), f, ng))
        for stmts, func, ng in scopes:
            self._walk_block(stmts, func, ng, scan_nograd, [0])

    def _walk_block(
        self, stmts: list, func: FunctionInfo | None, ng: bool, scan_nograd: bool, counter: list[int]
    ) -> None:
        key = id(func.node) if func is not None else 0
        for st in stmts:
            if ng:
                self._nograd.add(id(st))
            if isinstance(st, (cst.SimpleStatementLine, cst.BaseSmallStatement)):
                for small in st.body if isinstance(st, cst.SimpleStatementLine) else [st]:
                    counter[0] += 1
                    self._stmt_order[id(small)] = counter[0]
                    if ng:
                        self._nograd.add(id(small))
                    if isinstance(small, cst.Assign):
                        for t in small.targets:
                            self._record(t.target, small.value, small, func)
                    elif isinstance(small, cst.AnnAssign) and small.value is not None:
                        self._record(small.target, small.value, small, func)
                    elif isinstance(small, cst.AugAssign):
                        self._record(small.target, None, small, func)
                    elif isinstance(small, cst.Return):
                        self._returns_by_func.setdefault(key, []).append(small)
                continue
            if isinstance(st, (cst.FunctionDef, cst.ClassDef)):
                continue  # its own scope (methods and nested defs are in ctx.functions)
            counter[0] += 1
            self._stmt_order[id(st)] = counter[0]
            if isinstance(st, cst.For):
                self._record(st.target, None, st, func)
            inner_ng = ng or (
                scan_nograd and isinstance(st, cst.With) and any(is_no_grad_item(self.ctx, it.item) for it in st.items)
            )
            for block in sub_blocks(st):
                self._walk_block(block, func, inner_ng, scan_nograd, counter)

    def _record(
        self, target: cst.BaseExpression, value: cst.BaseExpression | None, node: cst.CSTNode, func: FunctionInfo | None
    ) -> None:
        if isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                self._record(el.value, None, node, func)
            return
        if isinstance(target, cst.StarredElement):
            self._record(target.value, None, node, func)
            return
        name = dotted(target)
        if name is None:
            return
        a = Assignment(name, value, node, func)
        self._assigns.setdefault(name, []).append(a)
        self._assigns_by_func.setdefault(id(func.node) if func is not None else 0, []).append(a)
        # model = Net().to(device).eval(): the eval() call's subject is the target
        v = value
        while isinstance(v, cst.Call) and isinstance(v.func, cst.Attribute):
            if eval_subject(v) == "":
                self._chain_eval[id(v)] = name
            v = v.func.value

    def assignments(self) -> dict[str, list[Assignment]]:
        self._walk()
        return self._assigns

    def assignments_in(self, func: FunctionInfo | None) -> list[Assignment]:
        self._walk()
        return self._assigns_by_func.get(id(func.node) if func is not None else 0, [])

    def returns_in(self, func: FunctionInfo | None) -> list[cst.Return]:
        self._walk()
        return self._returns_by_func.get(id(func.node) if func is not None else 0, [])

    def statement_order(self, stmt: cst.CSTNode) -> int | None:
        """Source-order index of a statement within its scope."""
        self._walk()
        return self._stmt_order.get(id(stmt))

    def in_no_grad(self, stmt: cst.CSTNode) -> bool:
        """``stmt`` (a statement) runs under torch.no_grad()/inference_mode()."""
        if not self.mentions_no_grad:
            return False
        self._walk()
        return id(stmt) in self._nograd

    def chain_eval_subject(self, call: cst.Call) -> str:
        self._walk()
        return self._chain_eval.get(id(call), "")

    def order(self, func: FunctionInfo | None) -> dict[int, int]:
        """Preorder position of every node of a scope (a function body or the module),
        built on demand for the few scopes that need it."""
        key = id(func.node) if func is not None else 0
        if key not in self._order:
            scope = self.ctx.module if func is None else func.node.body
            self._order[key] = {id(n): i for i, n in enumerate(walk(scope))}
        return self._order[key]

    def scope_of(self, func: FunctionInfo | None) -> cst.CSTNode:
        return self.ctx.module if func is None else func.node.body

    # what names are ----------------------------------------------------------------------
    def values_of(self, name: str) -> list[cst.BaseExpression]:
        return [a.value for a in self.assignments().get(name, []) if a.value is not None]

    def is_dataloader_call(self, expr: cst.BaseExpression) -> bool:
        return isinstance(expr, cst.Call) and self.ctx.qualname(expr) in DATALOADER_CLASSES

    def is_loader_like(self, expr: cst.BaseExpression) -> bool:
        """The iterable of a loop looks like batches from a data loader."""
        for e in unwrap_iter(self.ctx, expr):
            if self.is_dataloader_call(e):
                return True
            if isinstance(e, cst.Call) and isinstance(e.func, cst.Attribute):
                if "loader" in e.func.attr.value.lower():  # self.val_dataloader()
                    return True
                continue
            name = dotted(e)
            if name is None:
                continue
            if _LOADER_NAME.search(snake(last_part(name))):
                return True
            if any(self.is_dataloader_call(v) for v in self.values_of(name)):
                return True
        return False

    def is_model_like(self, name: str, func: FunctionInfo | None) -> bool:
        """``name`` (a dotted callee) looks like an nn.Module instance."""
        head = name.split(".")[0]
        if head in self.ctx.aliases or name in self.plain_funcs or name in self.ctx.class_by_name:
            return False
        if name == "self":
            return False
        low = snake(last_part(name))
        if _MODEL_NAME.search(low) and not re.search(r"loss|criterion|metric", low):
            return True
        module_classes = None
        for v in self.values_of(name):
            while (
                isinstance(v, cst.Call)
                and isinstance(v.func, cst.Attribute)
                and v.func.attr.value in ("to", "cuda", "cpu", "half", "float", "eval", "train")
            ):
                v = v.func.value
            if not isinstance(v, cst.Call):
                continue
            if module_classes is None:
                module_classes = {c.name for c in self.ctx.module_classes()}
            q = self.ctx.qualname(v) or ""
            if q in module_classes or q.startswith(("torchvision.models.", "timm.")) or q.endswith(".from_pretrained"):
                return True
        return False


_CACHE: weakref.WeakKeyDictionary[SourceContext, Analysis] = weakref.WeakKeyDictionary()


def analysis(ctx: SourceContext) -> Analysis:
    a = _CACHE.get(ctx)
    if a is None:
        a = _CACHE[ctx] = Analysis(ctx)
    return a
