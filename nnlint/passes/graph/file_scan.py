"""What the file's syntax tree says about its models: its classes, the calls that build them and their inputs, the loss."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from nnlint.vocab import LOSS_CLASS_OF_NAME


@dataclass
class ClassFacts:
    name: str
    line: int
    bases: list[str]
    used_in: set[str] = field(default_factory=set)  # other classes whose bodies mention it
    #: (scope bindings, call node, input expression or None) for each call found outside classes
    calls: list[tuple[dict[str, ast.expr], ast.Call, Any]] = field(default_factory=list)


@dataclass
class FileFacts:
    classes: dict[str, ClassFacts]
    loss_name: str | None
    examples_line: int | None
    subclassed: set[str]


def scan_source(text: str) -> FileFacts:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return FileFacts({}, None, None, set())
    classes: dict[str, ClassFacts] = {}
    subclassed: set[str] = set()
    examples_line = None
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases = [_dotted(b) or "" for b in node.bases]
            classes[node.name] = ClassFacts(node.name, node.lineno, bases)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "nnlint_examples":
            examples_line = node.lineno
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for b in classes[node.name].bases:
                if b.split(".")[-1] in classes:
                    subclassed.add(b.split(".")[-1])
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and sub.id in classes and sub.id != node.name:
                    classes[sub.id].used_in.add(node.name)
    # calls outside class bodies: module level (incl. __main__) and functions
    scopes: list[list[ast.stmt]] = [
        [n for n in tree.body if not isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    ]
    for node in _functions_outside_models(tree, set(classes)):
        if node.name != "nnlint_examples":
            scopes.append(node.body)
    module_bindings = _bindings(scopes[0])
    for i, body in enumerate(scopes):
        bindings = dict(module_bindings)
        if i:
            bindings.update(_bindings(body))
        model_vars: dict[str, str] = {}
        for stmt in body:
            for sub in _walk_no_defs(stmt):
                if (
                    isinstance(sub, ast.Assign)
                    and len(sub.targets) == 1
                    and isinstance(sub.targets[0], ast.Name)
                    and isinstance(sub.value, ast.Call)
                    and isinstance(sub.value.func, ast.Name)
                    and sub.value.func.id in classes
                ):
                    model_vars[sub.targets[0].id] = sub.value.func.id
        for stmt in body:
            for sub in _walk_no_defs(stmt):
                if not isinstance(sub, ast.Call):
                    continue
                fn = sub.func
                if isinstance(fn, ast.Name) and fn.id in classes:
                    classes[fn.id].calls.append((bindings, sub, _input_for(fn.id, sub, body, model_vars)))
                    for arg in [*sub.args, *(k.value for k in sub.keywords)]:
                        if isinstance(arg, ast.Name) and arg.id in classes and arg.id != fn.id:
                            classes[arg.id].used_in.add(fn.id)  # ResNet(BasicBlock, ...): a building block
                elif isinstance(fn, ast.Call) and isinstance(fn.func, ast.Name) and fn.func.id in classes:
                    pass  # Model(...)(x): handled through _input_for on the inner call
    loss_name = None
    found = []
    for sub in ast.walk(tree):
        name = sub.attr if isinstance(sub, ast.Attribute) else sub.id if isinstance(sub, ast.Name) else None
        if name in LOSS_CLASS_OF_NAME:
            found.append(LOSS_CLASS_OF_NAME[name])
    if found:
        order = list(dict.fromkeys(LOSS_CLASS_OF_NAME.values()))
        loss_name = min(found, key=order.index)
    return FileFacts(classes, loss_name, examples_line, subclassed)


def _functions_outside_models(tree: ast.Module, class_names: set[str]) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Module-level functions (and their nested ones) and methods of test classes: where a
    file shows how its models are built. Methods of the file's other classes build
    submodules, not models."""
    out = []
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append(node)
            stack.extend(node.body)
        elif isinstance(node, ast.ClassDef):
            if node.name.startswith("Test"):
                stack.extend(node.body)
        elif isinstance(node, (ast.If, ast.With, ast.Try)):
            stack.extend(ast.iter_child_nodes(node))
    return out


def _walk_no_defs(node: ast.AST):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        for c in ast.iter_child_nodes(n):
            if not isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                stack.append(c)


def _bindings(body: list[ast.stmt]) -> dict[str, ast.expr]:
    out: dict[str, ast.expr] = {}
    for stmt in body:
        for sub in _walk_no_defs(stmt):
            if isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name):
                out.setdefault(sub.targets[0].id, sub.value)
            elif isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name) and sub.value is not None:
                out.setdefault(sub.target.id, sub.value)
    return out


def _input_for(cls: str, call: ast.Call, body: list[ast.stmt], model_vars: dict[str, str]) -> Any:
    """The argument(s) the model built by ``call`` is called with in the same scope:
    ``model = Net(); model(x)`` or ``Net()(x)``."""
    var = next((v for v, c in model_vars.items() if c == cls), None)
    for stmt in body:
        for sub in _walk_no_defs(stmt):
            if not isinstance(sub, ast.Call):
                continue
            fn = sub.func
            if fn is call:
                return sub
            if var and isinstance(fn, ast.Name) and fn.id == var:
                return sub
            if (
                var
                and isinstance(fn, ast.Attribute)
                and fn.attr == "forward"
                and isinstance(fn.value, ast.Name)
                and fn.value.id == var
            ):
                return sub
    return None


def _dotted(node: ast.AST) -> str | None:
    from nnlint.passes.slicing import dotted

    return dotted(node)
