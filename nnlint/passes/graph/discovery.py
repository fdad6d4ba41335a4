"""More models, and why the others were not checked (issue 11.4).

``loader.find_candidates`` finds the file's ``nn.Module`` classes; this module adds

- module-level model instances whose type is not one of those classes: ``G = nn.Sequential(...)``,
  ``model = BertForSequenceClassification(BertConfig(...))``, ``net = resnet18()``;
- module-level factory functions whose arguments all have defaults and that return an
  ``nn.Module`` (``def ResNet50(): return ResNet(Bottleneck, [3, 4, 6, 3])``); one per class
  is built (the others are listed in ``--verbose``), and the class itself is then checked
  through it;
- for a class or factory that reads a value only the script computes (``slicing``), a
  candidate that is reported (NN002) with the value, its line, and what to declare;

and records, for ``--verbose``, every class it leaves out and why (building blocks, abstract
bases), so that no class is skipped silently.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

from torch import nn

from nnlint.passes import slicing

LOSS_NAME = __import__("re").compile(r"(Loss|Criterion|Objective)$")

#: factory names that are the script's work, never called to find a model
_NOT_FACTORIES = slicing.WORK_FUNCTIONS | {
    "nnlint_examples",
    "weights_init",
    "init_weights",
    "reset_grad",
    "denorm",
    "to_var",
    "get_args",
    "parse_args",
    "set_seed",
    "seed_everything",
}


def methods_that_build(cls_node: ast.ClassDef) -> list[ast.AST]:
    """What building and running a class reads: its class body, ``__init__``, ``forward``
    (and the helpers they call, through ``slicing.names_needed_by``)."""
    out: list[ast.AST] = []
    for s in cls_node.body:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if s.name in ("__init__", "forward", "__post_init__", "setup", "_forward_impl") or s.name.startswith("_"):
                out.append(s)
            else:
                out.extend(d for d in (*s.args.defaults, *s.decorator_list) if d is not None)
        else:
            out.append(s)
    out.extend(cls_node.bases)
    return out


def needed_unavailable(body: list[ast.stmt], roots: list[ast.AST], sl: Any) -> list[tuple[str, int, str]]:
    """The values ``roots`` read that the slice did not compute: [(name, line, why)]."""
    if sl is None or not sl.unavailable:
        return []
    defs = {n.name: n for n in body if isinstance(n, ast.ClassDef)}
    names: set[str] = set()
    todo = list(roots)
    seen: set[int] = set()
    funcs = {n.name: n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for name in slicing.free_names(node):
            names.add(name)
            if name in funcs:
                todo.append(funcs[name])
            elif name in defs:
                todo.extend(methods_that_build(defs[name]))
    return sl.missing_for(names)


def missing_text(missing: list[tuple[str, int, str]], via: str | None = None) -> str:
    name, line, why = missing[0]
    more = f" (and {', '.join(m[0] for m in missing[1:4])})" if len(missing) > 1 else ""
    what = f"{via} passes `{name}`{more}" if via else f"it reads `{name}`{more}"
    return (
        f"{what}, which the file sets at line {line}: {why}; nnlint runs only the file's "
        "definitions and the values they need, never its script"
    )


def _returns_module_statically(fn: ast.FunctionDef, body_classes: set[str], judge: Any) -> bool:
    """A ``return`` of a call to a file class, a torch.nn/torchvision/transformers model, or
    of a name bound to one in the function."""
    local: dict[str, ast.expr] = {}
    for n in ast.walk(fn):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            local[n.targets[0].id] = n.value
    for n in ast.walk(fn):
        if isinstance(n, ast.Return) and n.value is not None:
            v = n.value
            if isinstance(v, ast.Name) and v.id in local:
                v = local[v.id]
            if isinstance(v, ast.Call) and slicing.model_like(v, judge):
                return True
    return False


def factories(module: Any, text: str) -> list[tuple[str, Any, int]]:
    """Module-level functions of the file whose arguments all have defaults and that
    return an ``nn.Module`` (judged from the source; built later): [(name, function, line)]."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    judge = slicing.Judge(tree.body)
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    out = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_") or node.name in _NOT_FACTORIES:
            continue
        a = node.args
        if len(a.defaults) != len(a.posonlyargs) + len(a.args) or any(d is None for d in a.kw_defaults):
            continue
        if not _returns_module_statically(node, classes, judge) or not judge.function_ok(node.name):
            continue
        fn = getattr(module, node.name, None)
        if callable(fn) and getattr(fn, "__module__", None) == module.__name__:
            out.append((node.name, fn, node.lineno))
    return out


def instances(module: Any, text: str, file_classes: set[str]) -> list[tuple[str, nn.Module, int]]:
    """Module-level ``nn.Module`` instances the slice built whose class is not one of the
    file's own (those are checked as classes): [(name, model, line)]. Submodules of another
    instance (``backbone = resnet18(); model = nn.Sequential(backbone, head)``) are left to it."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    lines: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    lines.setdefault(t.id, node.lineno)
    found = []
    for name, line in lines.items():
        obj = getattr(module, name, None)
        if not isinstance(obj, nn.Module) or name.startswith("_"):
            continue
        if type(obj).__name__ in file_classes and getattr(type(obj), "__module__", None) == module.__name__:
            continue
        if type(obj).__module__.startswith("torch.nn.modules.loss") or not any(True for _ in obj.parameters()):
            continue  # a loss or a parameter-free layer: not a model
        if type(obj).__module__.startswith("torch.nn.modules.") and not isinstance(
            obj, (nn.Sequential, nn.ModuleList, nn.ModuleDict)
        ):
            continue  # a single built-in layer (linear = nn.Linear(3, 2) in a tutorial): not a model
        found.append((name, obj, line))
    inner: set[int] = set()
    for _, obj, _ in found:
        for sub in list(obj.modules())[1:]:
            inner.add(id(sub))
    return [f for f in found if id(f[1]) not in inner]


def why_skipped(name: str, obj: Any, facts: Any, base_name: Any) -> str | None:
    """Why ``auto_classes`` leaves a class of the file out, in words (None: it does not)."""
    cf = facts.classes.get(name)
    if cf is None:
        return None
    if inspect.isabstract(obj):
        return "an abstract base class: its subclasses are checked"
    if name in facts.subclassed:
        return "a base class (subclassed in this file): its subclasses are checked"
    users = sorted(cf.used_in & set(facts.classes) - {name})
    if users:
        return f"a building block of {', '.join(users[:3])}, checked through it"
    if base_name.search(name):
        return "named as a base class (Base/Abstract/Mixin/Interface)"
    return "its forward is not implemented (an interface)"


def returned_class(body: list[ast.stmt], fn_name: str) -> str | None:
    """The file class a factory returns an instance of, read from its source."""
    classes = {n.name for n in body if isinstance(n, ast.ClassDef)}
    fn = next((n for n in body if isinstance(n, ast.FunctionDef) and n.name == fn_name), None)
    if fn is None:
        return None
    local: dict[str, ast.expr] = {}
    for n in ast.walk(fn):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            local[n.targets[0].id] = n.value
    for n in ast.walk(fn):
        if isinstance(n, ast.Return) and n.value is not None:
            v = local.get(n.value.id, n.value) if isinstance(n.value, ast.Name) else n.value
            while (
                isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr in ("to", "float", "eval")
            ):
                v = v.func.value
            if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id in classes:
                return v.func.id
    return None


def downloads(body: list[ast.stmt], roots: list[ast.AST]) -> tuple[int, str] | None:
    """A call in what building a model runs that fetches weights (``vgg19(pretrained=True)``,
    ``X.from_pretrained(...)``, ``torch.hub.load(...)``): (line, the call)."""
    funcs = {n.name: n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    todo, seen = list(roots), set()
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for n in ast.walk(node):
            if not isinstance(n, ast.Call):
                continue
            name = slicing.dotted(n.func) or ""
            weights = any(
                k.arg in slicing.WEIGHT_KWARGS
                and not (isinstance(k.value, ast.Constant) and k.value.value in (None, False))
                for k in n.keywords
            )
            if weights or name.endswith((".from_pretrained", "hub.load", "load_state_dict_from_url")):
                return n.lineno, ast.unparse(n)[:80]
            if name in funcs:
                todo.append(funcs[name])
    return None


def config_inputs(model: Any, batch: int, seq: int = 16) -> dict[str, dict] | None:
    """Inputs of a transformers model derived from its config (issue 10.5): ``input_ids``
    below ``vocab_size`` for text, ``pixel_values`` from ``num_channels``/``image_size`` for
    vision, ``input_values`` for audio. None for other models. Values are TensorSpec fields."""
    cfg = getattr(model, "config", None)
    main = getattr(model, "main_input_name", None)
    if cfg is None or main is None or not type(model).__module__.startswith("transformers."):
        return None
    if main == "input_ids":
        vocab = int(getattr(cfg, "vocab_size", 0) or 0)
        if vocab <= 0:
            return None
        limit = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None) or seq
        return {"input_ids": {"shape": (batch, min(seq, int(limit))), "dtype": "int64", "low": 0, "high": vocab}}
    if main == "pixel_values":
        ch = int(getattr(cfg, "num_channels", 3) or 3)
        size = getattr(cfg, "image_size", 224) or 224
        size = size if isinstance(size, int) else int(size[0]) if isinstance(size, (list, tuple)) else 224
        return {"pixel_values": {"shape": (batch, ch, size, size)}}
    if main == "input_values":
        return {"input_values": {"shape": (batch, 16000)}}
    return None
