"""The Python API for tests: ``nnlint.check(model, inputs)`` runs the graph pass (when
installed) and the probe in-process on your model object and returns a ``Report`` of the
same diagnostics the command line gives, pointing at your source lines.

```python
import nnlint, torch
from mypkg.model import Net

def test_model_is_healthy():
    nnlint.check(Net(), torch.randn(8, 1, 28, 28)).assert_clean()
```

The model is left as it was: train/eval mode, parameters, buffers, ``.grad``, hooks,
``requires_grad`` flags, device and RNG states are restored.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nnlint import registry, suppression
from nnlint.diagnostics import Diagnostic, Severity

if TYPE_CHECKING:
    from nnlint.config import Config
    from nnlint.engine import Options, RunResult
    from nnlint.passes.runner import DynamicResult
    from nnlint.rule import Rule

__all__ = ["check", "Report", "lint_in_process"]


@dataclass
class Report:
    """The diagnostics for one model, sorted by line. ``errors`` lists internal problems
    (a rule that crashed, a pass that could not run); the other checks still ran."""

    diagnostics: list[Diagnostic]
    model: str
    path: str
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the probe's per-layer measurements (gradient norms, activation scales, dead fractions)
    stats: dict[str, Any] | None = field(default=None, repr=False)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.diagnostics)

    def __len__(self) -> int:
        return len(self.diagnostics)

    def __bool__(self) -> bool:  # a Report is truthy when it has findings
        return bool(self.diagnostics)

    def _repr_html_(self) -> str:
        """Jupyter shows the same page as ``nnlint --report``: findings, charts, module tree."""
        from nnlint import report

        return report.render(self.stats, self.diagnostics, fragment=True, title=self.model)

    def codes(self) -> list[str]:
        return [d.code for d in self.diagnostics]

    def by_code(self, code: str) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.code.startswith(code)]

    def __str__(self) -> str:
        if not self.diagnostics:
            head = f"{self.model}: no problems found"
        else:
            counts = {s: sum(1 for d in self.diagnostics if d.severity is s) for s in Severity}
            parts = [f"{n} {s.value}{'s' if n != 1 else ''}" for s, n in counts.items() if n]
            head = f"{self.model}: {len(self.diagnostics)} problem{'s' if len(self.diagnostics) != 1 else ''} ({', '.join(parts)})"
        lines = [head]
        for d in self.diagnostics:
            where = f"{self.model}.{d.module}" if d.module else self.model
            lines.append(
                f"  {d.path}:{d.line}:{d.column}: {d.code} [{d.severity.value}] {d.name} ({where}): {d.message}"
            )
        for e in self.errors:
            lines.append(f"  internal: {e}")
        for n in self.notes:
            lines.append(f"  note: {n}")
        return "\n".join(lines)

    def assert_clean(self, ignore: Iterable[str] | None = None) -> None:
        """Raise ``AssertionError`` listing every diagnostic (code, module, message), except
        those whose code starts with one of ``ignore`` (e.g. ``["NN313", "NN2"]``)."""
        skip = tuple(ignore or ())
        left = [d for d in self.diagnostics if not (skip and d.code.startswith(skip))]
        if not left:
            return
        lines = [f"nnlint found {len(left)} problem{'s' if len(left) != 1 else ''} in {self.model}:"]
        for d in left:
            where = d.module or self.model
            lines.append(f"  {d.code} {d.name} at {where} ({os.path.basename(d.path)}:{d.line}): {d.message}")
        raise AssertionError("\n".join(lines))


def _rules(
    select: list[str] | None, ignore: list[str] | None, thresholds: dict[str, dict[str, float]] | None
) -> list[Any]:
    from nnlint.config import ConfigError, check_selectors

    for value, what in ((select, "select"), (ignore, "ignore")):
        if value is not None and isinstance(value, str):
            raise TypeError(f"{what}= takes a list of codes, e.g. [{value!r}]")
        try:
            check_selectors(list(value or []), what)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    all_rules = registry.all_rules()
    overrides: dict[str, dict[str, float]] = {}
    for key, values in (thresholds or {}).items():
        rule = all_rules.get(key) or next((r for r in all_rules.values() if r.name == key), None)
        if rule is None:
            raise ValueError(f"thresholds: unknown rule {key!r}")
        for name in values:
            if name not in rule.thresholds:
                known = ", ".join(rule.thresholds) or "none"
                raise ValueError(f"thresholds[{key!r}]: unknown threshold {name!r} (known: {known})")
        overrides[rule.code] = {k: float(v) for k, v in values.items()}
    chosen = [r for r in registry.select(select, ignore) if r.pass_ in ("graph", "probe", "data")]
    return [r(overrides.get(r.code)) for r in chosen]


def _source(model: Any) -> tuple[str, str | None]:
    try:
        path = inspect.getsourcefile(type(model))
    except (TypeError, OSError):
        path = None
    if not path:
        return f"<{type(model).__name__}>", None
    try:
        with open(path, encoding="utf-8") as fh:
            return path, fh.read()
    except OSError:
        return path, None


def _batch(inputs: Any) -> int | None:
    import torch

    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.ndim else None
    items = inputs.values() if isinstance(inputs, dict) else inputs if isinstance(inputs, (list, tuple)) else ()
    for t in items:
        if isinstance(t, torch.Tensor) and t.ndim:
            return int(t.shape[0])
    return None


def _optimizer_checks(
    model: Any,
    optimizer: Any,
    select: list[str] | None,
    ignore: list[str] | None,
    thresholds: dict[str, dict[str, float]] | None,
    path: str,
    name: str,
    text: str | None,
) -> list[Diagnostic]:
    """Rules with a ``check_optimizer(model, optimizers)`` hook, on the user's optimizer."""
    from nnlint import findings
    from nnlint.passes.probe import span_of

    out: list[Diagnostic] = []
    lines = text.splitlines() if text is not None else None
    for rule in registry.select(select, ignore):
        hook = getattr(rule, "check_optimizer", None)
        if hook is None:
            continue
        # Any: check_optimizer is an optional hook (found by getattr above), not part of Rule
        r: Any = rule((thresholds or {}).get(rule.code))
        for f in r.check_optimizer(model, optimizer):
            out.append(findings.to_diagnostic(r, f, path, span_of(f, model, path, lines), model=name))
    return out


def check(
    model: Any,
    inputs: Any,
    loss: Callable[..., Any] | None = None,
    target: Any = None,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    thresholds: dict[str, dict[str, float]] | None = None,
    *,
    data: Any = None,
    classes: int | None = None,
    overfit: bool = False,
    overfit_steps: int = 30,
    optimizer: Any = None,
) -> Report:
    """Lint a built model: graph rules (shapes, dead modules ...) and the probe (one seeded
    forward + backward: initial loss, NaN/Inf, gradient flow, dead/saturated units,
    batch independence ...), in this process.

    ``inputs``: a tensor, a tuple of positional tensors or a dict of keyword tensors (one
    batch; at least 4 samples are used). ``loss(output, target)``: your loss, else
    CrossEntropy on random targets for a k-class head, else the mean squared output.
    ``select``/``ignore``: code prefixes as on the command line (``["NN3"]``); NN312 (the
    overfit probe) runs when selected by its full code or with ``overfit=True``.
    ``thresholds``: ``{"NN301": {"high": 2.0}}``. ``data``: an iterable of ``(inputs,
    target)`` batches for the data rules (NN5). ``device``: ``auto`` (CUDA when available),
    ``cpu`` or ``cuda``. ``optimizer``: the optimizer you train with (or a list of them,
    e.g. a GAN's two): rules that compare it with the model (NN408: trainable parameters
    in no param group) run too.

    Raises ``nnlint.passes.probe.ProbeError`` (with the original exception as its cause)
    when the model's own code fails during the run.
    """
    import torch

    from nnlint.example import Example
    from nnlint.passes.probe import run_probe

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"check() needs an nn.Module instance, got {type(model).__name__}")
    if "NN312" in (select or []):
        overfit = True
    rules = _rules(select, ignore, thresholds)
    if overfit and not any(r.code == "NN312" for r in rules) and not any("NN312".startswith(i) for i in (ignore or [])):
        rules.append(registry.all_rules()["NN312"]((thresholds or {}).get("NN312")))
    path, text = _source(model)
    name = type(model).__name__
    errors: list[str] = []
    notes: list[str] = []
    diags: list[Diagnostic] = []
    stats = None

    graph_rules = [r for r in rules if r.pass_ == "graph"]
    unused: list[str] = []
    probe_rules = [r for r in rules if r.pass_ in ("probe", "data")]
    if graph_rules:
        run_graph: Callable[..., tuple[list[Diagnostic], dict[str, Any]]] | None
        try:
            from nnlint.passes.graph import run_graph
        except ImportError:
            run_graph = None
        if run_graph is not None:
            from nnlint.passes.probe import resolve_device
            from nnlint.passes.state import ModelState, seeded_rng

            with seeded_rng(resolve_device("cpu")[0]), ModelState(model):
                try:
                    ex = Example(model=model, inputs=inputs, loss=loss, target=target, name=name, classes=classes)
                    g_diags, info = run_graph(
                        ex,
                        graph_rules,
                        path,
                        name,
                        {"source_text": text, "classes": classes} if text else {"classes": classes},
                    )
                    diags.extend(g_diags)
                    errors.extend(info.get("crashes") or [])
                    unused = info.get("unused_modules") or []
                except Exception as exc:  # the probe still runs; say what failed
                    errors.append(f"graph pass failed: {type(exc).__name__}: {exc}")

    if probe_rules:
        n = _batch(inputs)
        example = Example(
            model=model,
            inputs=inputs,
            loss=loss,
            target=target,
            name=name,
            data=data,
            classes=classes,
            meta={"unused_modules": unused},
        )
        settings = {
            "device": device,
            "batch_size": int(batch_size or max(4, n or 8)),
            "overfit": bool(overfit),
            "overfit_steps": int(overfit_steps),
            "memory_budget_bytes": None,
            "estimated_bytes": None,
        }
        result = run_probe(example, probe_rules, settings, path, name)
        stats = getattr(result, "stats", None)
        diags.extend(result)
        errors.extend(getattr(result, "errors", []) or [])
        notes.extend(getattr(result, "notes", []) or [])

    if optimizer is not None:
        diags.extend(_optimizer_checks(model, optimizer, select, ignore, thresholds, path, name, text))

    if text is not None:
        diags = suppression.apply(diags, {path: text})
    diags.sort(key=lambda d: (d.line, d.code, d.module or "", d.message))
    return Report(diagnostics=diags, model=name, path=path, errors=errors, notes=notes, stats=stats)


def lint_in_process(paths: list[str], cfg: Config, opts: Options, rules: list[type[Rule]]) -> RunResult:
    """``engine.lint`` with the graph, probe and data passes run in this process instead of
    in a child process per file: the same request, worker, rules and diagnostics, less
    ~1-3 s per file, and without the child's guards (time limit, memory limit, sandbox,
    crash isolation). For trusted code such as the rules' own examples in nnlint's tests;
    user code is linted with ``engine.lint``. The interpreter's state that the worker changes
    (``sys.path``, ``sys.argv``, ``sys.modules``, the working folder, torch's thread count,
    the random generators) is restored after each file."""
    from nnlint import engine

    return engine.lint(paths, cfg, opts, rules, run_dynamic=_run_dynamic_here)


def _run_dynamic_here(
    files: list[str], texts: dict[str, str], cfg: Config, opts: Options, rules: list[type[Rule]]
) -> DynamicResult:
    """``runner.run_dynamic`` in this process: one ``Worker`` per file, its replies read back
    as the runner reads a child's (a finished child's: nothing here is killed)."""
    import io
    import json

    from nnlint.passes import runner
    from nnlint.passes.runner import DynamicResult
    from nnlint.passes.worker import Worker

    result = DynamicResult()
    codes = [r.code for r in rules]
    jobs = getattr(opts, "jobs", None) or getattr(cfg, "jobs", None) or os.cpu_count() or 1
    jobs = max(1, min(jobs, len(files) or 1))  # as runner.run_dynamic sizes each child's threads
    for path in files:
        r = DynamicResult()
        if path.endswith(".ipynb"):
            r.errors.append(f"{path}: notebooks are linted in a child process only (engine.lint)")
        else:
            proto = io.StringIO()
            with _interpreter_state(path) as folder:
                req = runner.request(
                    path, cfg, opts, codes, max(1, (os.cpu_count() or 1) // jobs), None, cwd=folder["caller_cwd"]
                )
                worker = Worker(req, proto)
                try:
                    worker.run()
                except (Exception, SystemExit) as exc:  # worker.main's last resort, as in a child
                    worker.send("error", text=f"{worker.path}: internal error: {type(exc).__name__}: {exc}")
                worker.send(
                    "done",
                    models=worker.models,
                    models_not_checked=worker.not_checked,
                    models_not_probed=worker.not_probed,
                )
            for e in (json.loads(line) for line in proto.getvalue().splitlines() if line.startswith("{")):
                kind = e.get("event")
                if kind == "diagnostic":
                    r.diagnostics.append(Diagnostic.from_dict(e["diagnostic"]))
                elif kind == "note":
                    r.notes.append(str(e.get("text")))
                elif kind == "verbose":
                    r.verbose.append(str(e.get("text")))
                elif kind == "stats" and isinstance(e.get("stats"), dict):
                    r.stats.append(dict(e["stats"], path=path))
                elif kind == "error":
                    r.errors.append(str(e.get("text")))
                elif kind == "model_missing":
                    r.notes.append(f"{path}: --model {e.get('name')}: not defined in this file")
                elif kind == "done":
                    r.models += int(e.get("models", 0))
                    r.models_not_checked += int(e.get("models_not_checked", 0))
                    r.models_not_probed += int(e.get("models_not_probed", 0))
        result.per_file[path] = r
        result.absorb(r)
    return result


@contextlib.contextmanager
def _interpreter_state(user_file: str) -> Iterator[dict[str, str]]:
    """Run a worker in this process and put back what it changes: the working folder (a
    private temporary one while it runs, as a child's), ``sys.path``, ``sys.argv``, the
    modules it imported (the user's file among them), torch's thread count, the random
    generators and the record of the file's sliced import."""
    import random
    import sys
    import tempfile

    import torch

    from nnlint.passes.graph import user_import

    caller_cwd = os.getcwd()
    user_folder = os.path.dirname(os.path.realpath(user_file)) + os.sep
    np = sys.modules.get("numpy")
    np_rng = np.random.get_state() if np is not None else None
    path, argv, modules = list(sys.path), list(sys.argv), set(sys.modules)
    threads = torch.get_num_threads()
    torch_rng, py_rng = torch.get_rng_state(), random.getstate()
    slices = dict(user_import.SLICES)
    with tempfile.TemporaryDirectory(prefix="nnlint-") as folder:
        os.chdir(folder)
        try:
            yield {"caller_cwd": caller_cwd, "folder": folder}
        finally:
            os.chdir(caller_cwd)
            sys.path[:], sys.argv[:] = path, argv
            for name in set(sys.modules) - modules:  # the user's own modules, not libraries
                file = getattr(sys.modules[name], "__file__", None) or ""
                if name.startswith("_nnlint_user_") or os.path.abspath(file).startswith(user_folder):
                    del sys.modules[name]
            torch.set_num_threads(threads)
            torch.set_rng_state(torch_rng)
            random.setstate(py_rng)
            if np is not None:
                np.random.set_state(np_rng)
            user_import.SLICES.clear()
            user_import.SLICES.update(slices)
