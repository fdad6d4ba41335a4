"""Facts about the linted file's source that graph rules need: where attributes are read, which lines are side effects."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from nnlint.vocab import PURE_FUNCTIONS


@dataclass
class Ref:
    function: str
    line: int
    conditional: bool


class SourceFacts:
    """``ast`` facts about the linted file: where ``.name`` attributes are read, and
    which assignments' values are used only under a condition."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines()
        try:
            self.tree: ast.Module | None = ast.parse(text)
        except SyntaxError:
            self.tree = None
        self.refs: dict[str, list[Ref]] = {}
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        #: names imports bind (`F`, `torch`, `np`): `F.softmax` is not a read of `self.softmax`
        self.imported: set[str] = set()
        if self.tree is not None:
            for n in ast.walk(self.tree):
                if isinstance(n, (ast.Import, ast.ImportFrom)):
                    self.imported.update((a.asname or a.name).split(".")[0] for a in n.names)
            self._index(self.tree, None, False)

    def _index(self, node: ast.AST, func: str | None, cond: bool) -> None:
        for child in ast.iter_child_nodes(node):
            c_func, c_cond = func, cond
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions.append(child)
                c_func, c_cond = child.name, False
            elif (
                isinstance(node, (ast.If, ast.IfExp, ast.While, ast.BoolOp, ast.Try, ast.Match))
                or isinstance(node, ast.For)
                and child is not node.iter
            ):
                c_cond = True
            if (
                isinstance(child, ast.Attribute)
                and isinstance(child.ctx, ast.Load)
                and not (isinstance(child.value, ast.Name) and child.value.id in self.imported)
            ):
                self.refs.setdefault(child.attr, []).append(Ref(func or "<module>", child.lineno, c_cond))
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Name)
                and child.func.id in ("getattr", "hasattr")
                and len(child.args) >= 2
                and isinstance(child.args[1], ast.Constant)
                and isinstance(child.args[1].value, str)
            ):
                self.refs.setdefault(child.args[1].value, []).append(Ref(func or "<module>", child.lineno, c_cond))
            self._index(child, c_func, c_cond)

    def function_at(self, line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        best = None
        for f in self.functions:
            if f.lineno <= line <= (f.end_lineno or f.lineno):
                if best is None or f.lineno >= best.lineno:
                    best = f
        return best

    def line_text(self, line: int | None) -> str:
        if line and 0 < line <= len(self.lines):
            return self.lines[line - 1].strip()
        return ""

    def is_side_effect_line(self, line: int | None) -> bool:
        """Statements whose purpose is a side effect: storing on self, printing, logging,
        appending to a list, assertions."""
        if self.tree is None or not line:
            return False
        func = self.function_at(line)
        scope = func if func is not None else self.tree
        for stmt in ast.walk(scope):
            if not isinstance(stmt, ast.stmt) or not (stmt.lineno <= line <= (stmt.end_lineno or stmt.lineno)):
                continue
            if isinstance(
                stmt,
                (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For, ast.While, ast.With, ast.Try),
            ):
                continue
            if isinstance(stmt, ast.Assert):
                return True
            if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                if any(isinstance(t, (ast.Attribute, ast.Subscript)) for t in targets):
                    return True
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                # a bare call: print(...), log(...), buf.append(...) -- but not a pure tensor
                # function whose result is thrown away (`F.relu(x)` as a statement)
                return not _pure_call(stmt.value)
        return False

    def used_only_conditionally(self, line: int | None) -> bool:
        """The value assigned at ``line`` (``a = ...``) is read only inside an if/else or
        conditional expression before ``a`` is assigned again: the flag-switched branch
        pattern (``aux = self.aux(f)`` ... ``if self.use_aux: return out, aux``)."""
        if self.tree is None or not line:
            return False
        func = self.function_at(line)
        if func is None:
            return False
        names: set[str] = set()
        assign_end = line
        for stmt in ast.walk(func):
            if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and stmt.lineno <= line <= (
                stmt.end_lineno or stmt.lineno
            ):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for t in targets:
                    names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
                assign_end = stmt.end_lineno or stmt.lineno
        if not names:
            return False
        later_assign = min(
            (
                n.lineno
                for n in ast.walk(func)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id in names and n.lineno > assign_end
            ),
            default=10**9,
        )
        conditional_reads = 0
        reads = 0

        def walk(node: ast.AST, cond: bool) -> None:
            nonlocal reads, conditional_reads
            for child in ast.iter_child_nodes(node):
                c = cond or isinstance(node, (ast.If, ast.IfExp, ast.While, ast.BoolOp, ast.Try))
                if (
                    isinstance(child, ast.Name)
                    and isinstance(child.ctx, ast.Load)
                    and child.id in names
                    and assign_end < child.lineno <= later_assign
                ):
                    reads += 1
                    conditional_reads += c
                walk(child, c)

        walk(func, False)
        return reads > 0 and reads == conditional_reads

    def after_flag_return(self, line: int | None) -> bool:
        """``line`` follows, in its function, an ``if <switch>: ... return`` whose test reads
        a parameter with a default (``return_embed=False``, the caller's choice) or a
        ``self.`` attribute (the constructor's): an early return a flag chooses, not a slip."""
        if self.tree is None or not line:
            return False
        func = self.function_at(line)
        if func is None:
            return False
        a = func.args
        switches = {p.arg for p in a.args[len(a.args) - len(a.defaults) :]}
        switches |= {p.arg for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None}
        for stmt in ast.walk(func):
            if not isinstance(stmt, ast.If) or (stmt.end_lineno or stmt.lineno) >= line:
                continue
            if not stmt.body or not isinstance(stmt.body[-1], ast.Return):
                continue
            called = {id(c.func) for c in ast.walk(stmt.test) if isinstance(c, ast.Call)}
            names = {n.id for n in ast.walk(stmt.test) if isinstance(n, ast.Name) and id(n) not in called}
            if names and names <= switches | {"self", "None", "True", "False"}:
                return True  # a switch alone decides, not the data (`if x.shape[0] == 1`)
        return False


def _pure_call(call: ast.Call) -> bool:
    f = call.func
    if not isinstance(f, ast.Attribute) or f.attr not in PURE_FUNCTIONS:
        return False
    base = f.value
    if isinstance(base, ast.Attribute) and base.attr == "functional":
        return True  # torch.nn.functional.relu(x)
    if isinstance(base, ast.Name):
        return True  # F.relu(x), torch.relu(x), x.relu()
    return False
