"""Finds the models in a file and how to build each: declared, ``nnlint_examples()``, or automatic."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from torch import nn

from nnlint.example import EXAMPLE_KEYS, Example
from nnlint.passes.graph.file_scan import FileFacts, scan_source
from nnlint.passes.graph.literal_eval import LiteralEval, NotLiteral
from nnlint.passes.graph.specs import InputSpec, TensorSpec, spec_from_declared
from nnlint.passes.graph.user_import import SLICES

CONFIG_NAME = re.compile(r"config|conf|cfg|args|params|hparams|options|settings|spec", re.I)
BASE_NAME = re.compile(r"^(Base|Abstract)|(Base|Mixin|Interface|ABC)$")


@dataclass
class Candidate:
    name: str
    line: int | None
    origin: str  # cli | pyproject | examples | auto
    build: Callable[[], Any] | None = None
    inputs: InputSpec | None = None
    cls: type | None = None
    example: Example | None = None  # from nnlint_examples(): model/inputs already built (meta)
    example_index: int | None = None
    loss: Any = None
    loss_name: str | None = None
    target: Any = None
    classes: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: why it cannot be checked (-> NN002), with the snippet that would fix it
    problem: str | None = None
    kwargs_hint: str = ""

    @property
    def declared(self) -> bool:
        return self.origin != "auto"


def _is_module_class(obj: Any) -> TypeGuard[type[nn.Module]]:
    return isinstance(obj, type) and issubclass(obj, nn.Module)


def _has_forward(cls: type) -> bool:
    fwd = getattr(cls, "forward", None)
    base_fwd = nn.Module.forward
    if fwd is None or fwd is base_fwd:
        return False
    try:
        src = inspect.getsource(fwd)
        body = ast.parse(inspect.cleandoc("\n" + src) if src.startswith((" ", "\t")) else src).body[0]
        if not isinstance(body, (ast.FunctionDef, ast.AsyncFunctionDef)):  # `forward = a_lambda`, ...
            return True
        stmts = [s for s in body.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        if len(stmts) == 1 and isinstance(stmts[0], ast.Raise):
            return False
        if not stmts or len(stmts) == 1 and isinstance(stmts[0], ast.Pass):
            return False
    except (OSError, TypeError, SyntaxError, IndexError):
        pass
    return True


def class_line(cls: Any) -> int | None:
    try:
        return inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return None


def loss_from_name(name: str | None) -> Any:
    if not name:
        return None
    if ":" in name:
        mod, fn = name.split(":", 1)
        return getattr(importlib.import_module(mod), fn)
    short = name.split(".")[-1]
    if hasattr(nn, short):
        return getattr(nn, short)()
    import torch.nn.functional as F

    if hasattr(F, short):
        return getattr(F, short)
    raise ValueError(f"unknown loss {name!r}: use a torch.nn loss class name (CrossEntropyLoss) or 'module:function'")


def auto_classes(module: Any, facts: FileFacts) -> list[type]:
    """Top-level nn.Module subclasses of this file that look like models."""
    out = []
    called_outside = {n for n, c in facts.classes.items() if c.calls}
    for name, cf in facts.classes.items():
        obj = getattr(module, name, None)
        if not _is_module_class(obj) or getattr(obj, "__module__", None) != module.__name__:
            continue
        if name in called_outside:
            out.append(obj)
            continue
        if cf.used_in & set(facts.classes) - {name}:
            continue  # a building block of another class
        if name in facts.subclassed or BASE_NAME.search(name) or inspect.isabstract(obj):
            continue
        if not _has_forward(obj):
            continue
        out.append(obj)
    return out


def auto_classes_in_source(text: str) -> list[str]:
    """What ``auto_classes`` would find, read from the source alone: for a file that could
    not be imported, so that its models still count as not checked. A class counts when it
    derives, through the file's own classes, from a ``...Module`` base."""
    facts = scan_source(text)
    modules: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, cf in facts.classes.items():
            last = {b.split(".")[-1] for b in cf.bases}
            if name not in modules and any(b.endswith("Module") or b in modules for b in last):
                modules.add(name)
                changed = True
    called_outside = {n for n, c in facts.classes.items() if c.calls}
    out = []
    for name, cf in facts.classes.items():
        if name not in modules:
            continue
        if name not in called_outside and (
            cf.used_in & set(facts.classes) - {name}
            or name in facts.subclassed
            or BASE_NAME.search(name)
            or name.endswith("Loss")
        ):
            continue
        out.append(name)
    return out


def find_candidates(module: Any, path: str, text: str, req: dict[str, Any]) -> list[Candidate]:
    facts = scan_source(text)
    batch = int(req.get("batch_size") or 8)
    loss_name = facts.loss_name
    cands: list[Candidate] = []
    if req.get("model"):
        name = req["model"]
        obj = getattr(module, name, None)
        if obj is None:
            return []
        c = _declared(module, path, name, obj, req.get("kwargs") or {}, origin="cli", batch=batch)
        if req.get("input_shape"):
            dtype = req.get("input_dtype") or "float32"
            c.inputs = spec_from_declared([{"shape": req["input_shape"], "dtype": dtype}], "--input-shape")
            c.meta["fix_high"] = True
        c.loss_name = loss_name
        return [c]
    declared = req.get("declared") or []
    if declared:
        for entry in declared:
            target = str(entry.get("target", ""))
            name = target.rsplit(":", 1)[-1] if ":" in target else ""
            obj = getattr(module, name, None)
            if obj is None:
                cands.append(
                    Candidate(
                        name=name or target,
                        line=1,
                        origin="pyproject",
                        problem=f"[[tool.nnlint.models]] target {target!r}: {os.path.basename(path)} "
                        f"defines no {name!r}",
                    )
                )
                continue
            c = _declared(module, path, name, obj, entry.get("kwargs") or {}, origin="pyproject", batch=batch)
            if entry.get("name"):
                c.name = str(entry["name"])
            if entry.get("inputs"):
                try:
                    c.inputs = spec_from_declared(list(entry["inputs"]), f"pyproject {target}")
                    c.meta["fix_high"] = True
                except (ValueError, TypeError) as exc:
                    c.problem = f"[[tool.nnlint.models]] target {target!r}: inputs: {exc}"
            if entry.get("loss"):
                try:
                    c.loss = loss_from_name(str(entry["loss"]))
                    c.loss_name = str(entry["loss"]).split(".")[-1].split(":")[-1]
                except Exception as exc:
                    c.problem = f"[[tool.nnlint.models]] target {target!r}: loss: {exc}"
            c.loss_name = c.loss_name or loss_name
            if entry.get("classes"):
                c.classes = int(entry["classes"])
            if entry.get("target-shape"):
                c.meta["target_shape"] = list(entry["target-shape"])
            cands.append(c)
        return cands
    fn = getattr(module, "nnlint_examples", None)
    if callable(fn) and getattr(fn, "__module__", None) == module.__name__:
        return [
            Candidate(
                name="nnlint_examples",
                line=facts.examples_line or class_line(fn),
                origin="examples",
                build=fn,
                loss_name=loss_name,
            )
        ]
    for cls in auto_classes(module, facts):
        cands.append(_auto(module, cls, facts, req, batch, loss_name))
    return _more_candidates(module, path, text, facts, req, batch, loss_name, cands)


#: what discovery left out and why, for ``--verbose`` (filled by find_candidates)
DISCOVERY_NOTES: list[str] = []


def _more_candidates(
    module: Any,
    path: str,
    text: str,
    facts: FileFacts,
    req: dict[str, Any],
    batch: int,
    loss_name: str | None,
    cands: list[Candidate],
) -> list[Candidate]:
    """Module-level instances and factories, and the models that need a value the script
    computes (see ``discovery``); notes for ``--verbose`` on every class left out."""
    from nnlint.passes.graph import discovery

    DISCOVERY_NOTES.clear()
    sl = SLICES.get(module.__name__)
    try:
        body = ast.parse(text).body
    except SyntaxError:
        return cands
    class_nodes = {n.name: n for n in body if isinstance(n, ast.ClassDef)}
    found = {c.name for c in cands}
    # classes of the file that the slice could not define (a decorator or base it needs is not computed)
    for name, cf in facts.classes.items():
        if (
            getattr(module, name, None) is None
            and sl is not None
            and name in sl.unavailable
            and re.search(r"Module|Sequential|Lightning", " ".join(cf.bases))
        ):
            line, why = sl.unavailable[name]
            cands.append(
                Candidate(
                    name=name,
                    line=cf.line,
                    origin="auto",
                    loss_name=loss_name,
                    problem=f"its definition needs a value the script computes ({why})",
                )
            )
            found.add(name)
    # models that read a value only the script computes
    for c in cands:
        node = class_nodes.get(c.name)
        if c.origin != "auto" or node is None or c.problem and c.name not in facts.classes:
            continue
        missing = discovery.needed_unavailable(body, discovery.methods_that_build(node), sl)
        via = None
        if not missing and c.problem and sl is not None:
            for _, call, _ in facts.classes[c.name].calls:
                args = [*call.args, *(k.value for k in call.keywords)]
                missing = sl.missing_for({n for a in args for n in _names_in(a)})
                if missing:
                    via = f"the call at line {call.lineno}"
                    break
        if missing:
            c.problem = discovery.missing_text(missing, via)
            c.meta.pop("attempts", None)
        fetch = discovery.downloads(body, discovery.methods_that_build(node))
        if fetch is not None and not c.problem:
            c.problem = (
                f"building it downloads weights (line {fetch[0]}: {fetch[1]}), and nnlint never downloads; "
                "pass pretrained=False/weights=None in a declaration"
            )
            c.meta.pop("attempts", None)
    # skipped classes, never silently
    for name, cf in facts.classes.items():
        obj = getattr(module, name, None)
        if name in found or not _is_module_class(obj) or getattr(obj, "__module__", None) != module.__name__:
            continue
        why = discovery.why_skipped(name, obj, facts, BASE_NAME)
        if why:
            DISCOVERY_NOTES.append(f"{name} (line {cf.line}) not checked on its own: {why}")
    # loss modules of the file (class ContrastiveLoss(nn.Module)) are not models
    for c in list(cands):
        if c.origin == "auto" and discovery.LOSS_NAME.search(c.name) and c.name in facts.classes:
            cands.remove(c)
            DISCOVERY_NOTES.append(f"{c.name} (line {c.line}) not checked: a loss module, not a model")
    # module-level instances of other types: nn.Sequential, transformers and torchvision models
    for name, obj, line in discovery.instances(module, text, set(facts.classes)):
        c = _declared(module, path, name, obj, {}, origin="auto", batch=batch)
        c.line = c.line or line
        c.loss_name = loss_name
        hf = discovery.config_inputs(obj, batch)
        if hf is not None:
            c.inputs = InputSpec(
                kwargs={k: TensorSpec(**v) for k, v in hf.items()}, origin=f"{type(obj).__name__}'s config"
            )
        c.meta["how"] = f"the module-level instance `{name}` (line {line})"
        cands.append(c)
        found.add(name)
    # module-level models the slice could not build (weights to download, a size read from data)
    unavailable = sl.unavailable if sl is not None else {}
    for name, (line, callee) in sl.instances.items() if sl is not None else []:
        if (
            name in found
            or name not in unavailable
            or callee.split(".")[0] in facts.classes
            or getattr(module, name, None) is not None
        ):
            continue
        why = unavailable[name][1]
        cands.append(
            Candidate(
                name=name,
                line=line,
                origin="auto",
                loss_name=loss_name,
                problem=f"the module-level model `{name}` (line {line}) is {why[0].lower() + why[1:]}",
            )
        )
        found.add(name)
    # factories: def resnet50(pretrained=False): return ResNet(...)
    covered = {c.name for c in cands if c.meta.get("attempts")}
    per_class: dict[str, str] = {}
    for name, fn, line in discovery.factories(module, text)[:16]:
        if name in found:
            continue
        cls_name = discovery.returned_class(body, name)
        if cls_name in covered:
            DISCOVERY_NOTES.append(f"{name}() (line {line}) builds {cls_name}, which is checked as a class")
            continue
        if cls_name and cls_name in per_class:
            DISCOVERY_NOTES.append(
                f"{name}() (line {line}) builds {cls_name} like {per_class[cls_name]}(), "
                "which is checked; not built again"
            )
            continue
        if cls_name:
            per_class[cls_name] = name
            cands = [c for c in cands if not (c.name == cls_name and c.origin == "auto" and not c.meta.get("attempts"))]
        c = _declared(module, path, name, fn, {}, origin="auto", batch=batch)
        c.line = line
        c.loss_name = loss_name
        c.meta["how"] = f"the factory {name}() (line {line})"
        fn_node = next((n for n in body if isinstance(n, ast.FunctionDef) and n.name == name), None)
        missing = discovery.needed_unavailable(body, [fn_node], sl) if fn_node is not None else []
        if missing:
            c.problem = discovery.missing_text(missing)
        cands.append(c)
        found.add(name)
    return _drop_parts(cands, body, facts)


def _drop_parts(cands: list[Candidate], body: list[ast.stmt], facts: FileFacts) -> list[Candidate]:
    """A helper class of the file (``Block(in_ch, out_ch)``) that is only built inside a
    module-level model or a factory that is checked is a part of it, not a model of its
    own: it is checked through that model, never reported alone."""
    where: dict[tuple[int, int], str] = {}
    for c in cands:
        how = str(c.meta.get("how", ""))
        if c.origin != "auto" or c.problem or not how.startswith(("the factory", "the module-level instance")):
            continue
        for node in body:
            if (
                isinstance(node, ast.FunctionDef)
                and node.name == c.name
                or isinstance(node, (ast.Assign, ast.AnnAssign))
                and c.name
                in {
                    t.id
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(t, ast.Name)
                }
            ):
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Call):
                        where[(sub.lineno, sub.col_offset)] = c.name
    out = []
    for c in cands:
        cf = facts.classes.get(c.name)
        if (
            c.origin == "auto"
            and cf is not None
            and cf.calls
            and not c.meta.get("how", "").startswith(("the factory", "the module-level"))
        ):
            owners = {where.get((call.lineno, call.col_offset)) for _, call, _ in cf.calls}
            named = {o for o in owners if o is not None}
            if len(named) == len(owners):  # every call is inside another candidate
                DISCOVERY_NOTES.append(
                    f"{c.name} (line {cf.line}) not checked on its own: a part of "
                    f"{', '.join(sorted(named))}, checked through it"
                )
                continue
        out.append(c)
    return out


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _declared(module: Any, path: str, name: str, obj: Any, kwargs: dict, origin: str, batch: int) -> Candidate:
    line = class_line(obj) if getattr(obj, "__module__", None) == module.__name__ else None
    c = Candidate(name=name, line=line, origin=origin, cls=obj if isinstance(obj, type) else None)
    if isinstance(obj, nn.Module):
        c.build = lambda: obj
        c.meta["instance"] = True  # already built (a module-level instance): used as it is
        from nnlint.passes import locate

        try:
            with open(path, encoding="utf-8") as fh:
                lines = locate.assignment_lines(fh.read(), name)
        except (OSError, UnicodeDecodeError):
            lines = {}
        if lines:
            c.meta["module_lines"] = lines
            c.line = lines[""]
    elif callable(obj):
        c.build = lambda: obj(**kwargs)
        if not isinstance(obj, type) and getattr(obj, "__module__", None) == module.__name__:
            from nnlint.passes import locate

            c.meta["module_lines"] = locate.factory_lines(obj)
    else:
        c.problem = f"{name} is neither an nn.Module class nor a factory function"
    c.kwargs_hint = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return c


def _auto(
    module: Any, cls: type, facts: FileFacts, req: dict[str, Any], batch: int, loss_name: str | None
) -> Candidate:
    cf = facts.classes[cls.__name__]
    c = Candidate(name=cls.__name__, line=cf.line, origin="auto", cls=cls, loss_name=loss_name)
    # each builder is called with no argument; the lambdas' defaults bind the loop's values
    attempts: list[tuple[str, Callable[..., Any], InputSpec | None]] = []
    if req.get("kwargs"):
        kw = dict(req["kwargs"])
        attempts.append((f"{cls.__name__}(**--kwargs)", lambda kw=kw: cls(**kw), None))
    for bindings, call, use in cf.calls:
        ev = LiteralEval(module, bindings, batch)
        try:
            # `*args`/`**kwargs` forwarded by a factory (`def resnet18(**kwargs): return
            # ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)`) are taken as empty
            args = [ev.eval(a) for a in call.args if not isinstance(a, ast.Starred)]
            kwargs = {k.arg: ev.eval(k.value) for k in call.keywords if k.arg}
            if any(isinstance(a, ast.Starred) and not isinstance(a.value, ast.Name) for a in call.args) or any(
                k.arg is None and not isinstance(k.value, ast.Name) for k in call.keywords
            ):
                raise NotLiteral("starred")
        except Exception:
            continue
        spec = None
        if isinstance(use, ast.Call) and (use.args or use.keywords):
            try:
                ev2 = LiteralEval(module, bindings, batch)
                spec = InputSpec(
                    args=[_batchify(ev2.eval(a), batch) for a in use.args],
                    kwargs={k.arg: _batchify(ev2.eval(k.value), batch) for k in use.keywords if k.arg},
                    origin=f"the call at line {use.lineno}",
                )
            except Exception:
                spec = None
        attempts.append((f"the call at line {call.lineno}", lambda a=args, k=kwargs: cls(*a, **k), spec))
    sig = _init_signature(cls)
    required = (
        [
            p
            for p in sig.parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        if sig
        else []
    )
    if sig is not None and not required:
        attempts.append((f"{cls.__name__}()", lambda: cls(), None))
    elif sig is not None:
        options = [_config_options(module, facts, p) for p in required]
        if all(options):
            combos = _combinations(options, limit=8)
            for combo in combos:
                kwargs = {p.name: factory for p, factory in zip(required, combo)}
                desc = ", ".join(f"{p.name}={f.__name__}()" for p, f in zip(required, combo))
                attempts.append(
                    (f"{cls.__name__}({desc})", lambda kw=kwargs: cls(**{k: f() for k, f in kw.items()}), None)
                )
        c.kwargs_hint = ", ".join(f"{p.name}=..." for p in required)
    if not attempts:
        missing = ", ".join(repr(p.name) for p in required)
        c.problem = (
            f"its constructor needs {missing} and the file shows no call to {cls.__name__} with literal arguments"
        )
        return c
    c.meta["attempts"] = attempts
    return c


def _batchify(v: Any, batch: int) -> Any:
    """A file's example call often uses batch 1; the probe needs >= 2 samples."""
    if isinstance(v, TensorSpec) and len(v.shape) >= 2 and v.shape[0] == 1:
        v.shape = (batch, *v.shape[1:])
    return v


def _init_signature(cls: type[Any]) -> inspect.Signature | None:  # any user class
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())[1:]
    params = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return sig.replace(parameters=params)


def _config_options(module: Any, facts: FileFacts, param: inspect.Parameter) -> list[type]:
    """Classes of this file a required constructor parameter could be built from with no
    arguments: its annotation, else config-looking classes (dataclasses first)."""
    out: list[type] = []
    ann = param.annotation
    if ann is not inspect.Parameter.empty:
        if isinstance(ann, str):
            ann = getattr(module, ann.split(".")[-1].strip("'\""), None)
        if (
            isinstance(ann, type)
            and not issubclass(ann, nn.Module)
            and ann.__module__ == module.__name__
            and _default_constructible(ann)
        ):
            return [ann]
        if isinstance(ann, type) and ann not in (dict, object):
            return []
    for name in facts.classes:
        obj = getattr(module, name, None)
        if not isinstance(obj, type) or issubclass(obj, nn.Module) or obj.__module__ != module.__name__:
            continue
        if not (dataclasses.is_dataclass(obj) or CONFIG_NAME.search(name)):
            continue
        if not CONFIG_NAME.search(param.name) and param.name.lower() not in name.lower():
            continue
        if _default_constructible(obj):
            out.append(obj)
    out.sort(key=lambda o: (not dataclasses.is_dataclass(o), name_distance(param.name, o.__name__)))
    return out


def name_distance(a: str, b: str) -> int:
    return 0 if a.lower() in b.lower() else 1


def _default_constructible(cls: type) -> bool:
    if dataclasses.is_dataclass(cls):
        return all(
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            for f in dataclasses.fields(cls)
            if f.init
        )
    sig = _init_signature(cls)
    return sig is not None and all(p.default is not p.empty for p in sig.parameters.values())


def _combinations(options: list[list[type]], limit: int) -> list[tuple[type, ...]]:
    import itertools

    return list(itertools.islice(itertools.product(*options), limit))


def examples_from(value: Any) -> list[Example]:
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for i, item in enumerate(items):
        if isinstance(item, Example):
            out.append(item)
        elif isinstance(item, dict):
            out.append(Example.from_dict(item))
        elif hasattr(item, "model") and hasattr(item, "inputs"):
            out.append(Example(**{k: getattr(item, k) for k in EXAMPLE_KEYS if hasattr(item, k)}))
        else:
            raise ValueError(
                f"nnlint_examples()[{i}] is a {type(item).__name__}; expected a dict with keys "
                f"{', '.join(EXAMPLE_KEYS)}"
            )
    return out
