"""Child process that runs one user file: ``python -m nnlint.passes.worker``.

Protocol (see ``runner``): one JSON request on stdin. Replies are JSON lines written to
the process's original stdout, which the parent points at a file: ``step`` events before
each step (import, build, trace, forward, probe ...) so that a crash or hang can be named,
``diagnostic`` events as soon as each model's findings exist (a later crash keeps them),
``model``/``note``/``error`` events and a final ``done``. User code never writes to that
stream: file descriptor 1 and ``sys.stdout`` are pointed at stderr before anything of the
user's runs. ``faulthandler`` writes a traceback to a side file on SIGSEGV and on SIGUSR1
(which the parent sends before killing a hung child), so NN005 can name the user's line.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from nnlint.rule import Rule

from nnlint.passes.sizes import gb

PROBE_PASSES = ("probe", "data")
#: models up to this size (weights) are traced on real CPU tensors: the meta device's
#: first pointwise op imports torch._dynamo (~2.5 s per process), more than building and
#: running a small model for real; larger ones go to the meta device
REAL_GRAPH_MAX_BYTES = 256 << 20


class Worker:
    def __init__(self, req: dict[str, Any], proto: TextIO) -> None:
        self.req = req
        self.proto = proto
        #: the path as the user gave it (reported), and where the file is: the child runs in
        #: a private temporary folder, so a relative path is resolved by the parent
        self.display: str = req["path"]
        self.path: str = req.get("abs_path") or req["path"]
        self.codes: set[str] = set(req.get("codes") or [])
        self.models = 0
        self.not_checked = 0
        self.not_probed = 0
        self._real_examples: Any = None
        self._data: Any = None
        self._data_loaded = False
        #: per model: its parameter count and whether its input is nnlint's guess, sent with
        #: each step so that a time limit met in it can be worded (runner.timeout_finding)
        self.model_facts: dict[str, dict[str, Any]] = {}

    # protocol ---------------------------------------------------------------------------
    def send(self, event: str, **payload: Any) -> None:
        payload["event"] = event
        if self.display != self.path:
            d = payload.get("diagnostic")
            if isinstance(d, dict) and d.get("path") == self.path:
                d["path"] = self.display
            for key in ("text",):
                if isinstance(payload.get(key), str):
                    payload[key] = payload[key].replace(self.path, self.display)
        self.proto.write(json.dumps(payload, default=str) + "\n")
        self.proto.flush()

    def step(self, step: str, model: str | None = None, line: int | None = None) -> None:
        facts = self.model_facts.get(model or "", {})
        self.send("step", step=step, model=model, line=line, t=round(time.monotonic(), 3), **facts)

    def tool(
        self,
        code: str,
        message: str,
        line: int | None,
        model: str | None = None,
        evidence: dict | None = None,
        module: str | None = None,
    ) -> None:
        if code not in self.codes:
            return
        from nnlint.diagnostics import Diagnostic

        rule = self.tool_rules[code]
        line = line or 1
        column, end_column = self._span(line)
        d = Diagnostic(
            code=code,
            name=rule.name,
            severity=rule.severity,
            message=message,
            pass_="tool",
            path=self.path,
            line=line,
            column=column,
            end_column=end_column,
            model=model,
            module=module,
            evidence=evidence or {},
        )
        self.send("diagnostic", diagnostic=d.to_dict())

    def _span(self, line: int) -> tuple[int, int | None]:
        """The columns of the code on ``line`` of the user's file (1-based; indentation and
        trailing blanks left out); (1, None) for a blank or missing line."""
        lines = getattr(self, "text", "").splitlines()
        src = lines[line - 1] if 0 < line <= len(lines) else ""
        if not src.strip():
            return 1, None
        return len(src) - len(src.lstrip()) + 1, len(src.rstrip()) + 1

    def rule_finding(self, code: str, message: str, line: int, model: str, guesses: dict | None) -> None:
        """A finding of another pass's rule seen by the probe (BCELoss raising on a
        non-probability): reported under that rule, marked so that the same finding from
        the source pass wins."""
        if code not in self.codes:
            return
        from nnlint.diagnostics import Diagnostic
        from nnlint.registry import all_rules

        rule = all_rules().get(code)
        if rule is None:
            return
        column, _ = self._span(line)
        d = Diagnostic(
            code=code,
            name=rule.name,
            severity=rule.severity,
            message=message,
            pass_="probe",
            path=self.path,
            line=line,
            column=column,
            model=model,
            evidence={"seen_by": "probe"},
            guesses=guesses,
        )
        self.send("diagnostic", diagnostic=d.to_dict())

    def diagnostics(self, diags: list, guesses: dict | None = None) -> None:
        from nnlint.passes.grouping import group_instances

        for d in group_instances(list(diags)):
            if guesses and d.pass_ in ("graph", "probe", "data") and not d.guesses:
                d = d.with_(guesses=dict(guesses))
            self.send("diagnostic", diagnostic=d.to_dict())

    # the run ----------------------------------------------------------------------------
    def run(self) -> None:
        self.step("import")
        import torch

        threads = int(self.req.get("threads") or 0)
        if threads > 0:
            torch.set_num_threads(threads)
        _seed_user_rngs()  # the same weights and example inputs on every run
        from nnlint.passes import graph, loader

        self.graph, self.loader = graph, loader
        self.load_rules()
        try:
            import tokenize

            with tokenize.open(self.path) as fh:  # honours a PEP 263 coding cookie
                self.text = fh.read()
        except (OSError, UnicodeDecodeError, SyntaxError) as exc:
            self.send("error", text=f"{self.path}: cannot read: {exc}")
            return
        sys.argv = [self.path]  # user code that parses argv at import sees no options
        if self.req.get("sys_path"):  # a notebook's program: its own folder's modules import
            sys.path.insert(0, self.req["sys_path"])
        if self.req.get("cwd") and self.req["cwd"] not in sys.path:
            sys.path.append(self.req["cwd"])  # where `python -m` would have found the user's modules
        if self.req.get("sandbox"):
            from nnlint.passes import sandbox

            sandbox.install(self.req["sandbox"])
        try:
            module = loader.import_file(self.path)
        except loader.ImportFailure as f:
            where = "" if f.line is not None or not f.where else f" (raised in {f.where})"
            raised = f"importing the file raised {_exc_text(f.exc)}{where}"
            blocked = len(loader.auto_classes_in_source(self.text))  # none of its models was checked
            evidence = {"models_not_checked": blocked}
            if f.environment:  # not the file's bug: NN007 says what would let nnlint check
                self.tool("NN007", f"{raised}: {f.environment}", f.line or 1, evidence=evidence)
            else:
                self.tool("NN003", raised, f.line or 1, evidence=evidence)
            self.not_checked += blocked
            self.report_blocked()
            return
        sl = loader.SLICES.get(module.__name__)
        if sl is not None and sl.reduced:
            self.send(
                "verbose",
                text=f"{self.display}: ran only the definitions and the values they need "
                f"({len(sl.dropped_lines)} module-level statements of the script left out)",
            )
        self.user = graph.UserFile(self.path)
        self.facts = graph.SourceFacts(self.text)
        self.module = module
        self.step("discover")
        cands = loader.find_candidates(module, self.path, self.text, self.req)
        for text in getattr(loader, "DISCOVERY_NOTES", []):
            self.send("verbose", text=f"{self.display}: {text}")
        from nnlint.passes import pairing

        pairing.apply(cands, self.text)  # which loss goes with which model: by value flow
        from nnlint.passes import model_dtype

        model_dtype.apply(cands, self.text)  # seq.double() in the script: built and fed in float64
        if self.req.get("model") and not cands:
            self.send("model_missing", name=self.req["model"])
        for cand in cands:
            try:
                if cand.origin == "examples":
                    self.check_examples(cand)
                else:
                    self.check_candidate(cand)
            except (Exception, SystemExit) as exc:  # user code raising outside the guarded steps, or our bug
                line = self.user.line_from_traceback(exc.__traceback__)
                if line is not None:
                    self.tool("NN005", f"{cand.name}: {_exc_text(exc)}", line, model=cand.name)
                    self.not_checked += 1
                else:
                    self.send(
                        "error",
                        text=f"{self.path}: internal error while checking {cand.name}: "
                        f"{_exc_text(exc)} at {_where(exc)}; please report this",
                    )
        self.report_blocked()

    def report_blocked(self) -> None:
        """Say what the guards refused (a download, a write outside the temporary folder)."""
        try:
            from nnlint.passes import sandbox
        except ImportError:
            return
        seen: set[str] = set()
        for what in sandbox.blocked():
            if what not in seen:
                seen.add(what)
                self.send(
                    "note",
                    text=f"{self.display}: refused while linting ({what}); nnlint never downloads or "
                    "writes outside its temporary folder",
                )

    def load_rules(self) -> None:
        from nnlint import registry

        self.tool_rules = registry.discover(("tool",))
        thresholds = self.req.get("thresholds") or {}
        dynamic = registry.discover(("graph", "probe", "data"))
        chosen = [cls(thresholds.get(code)) for code, cls in dynamic.items() if code in self.codes]
        self.graph_rules: list[Rule] = [r for r in chosen if r.pass_ == "graph"]
        self.probe_rules: list[Rule] = [r for r in chosen if r.pass_ != "graph"]

    # one declared/discovered model --------------------------------------------------------
    def check_candidate(self, cand: Any) -> None:
        import torch

        loader = self.loader
        batch = int(self.req.get("batch_size") or 8)
        if cand.problem:
            self.not_checked += 1
            hint = loader.declaration_hint(cand, self.path, cand.inputs, batch)
            self.tool("NN002", f"{cand.name} was not checked: {cand.problem}; {hint}", cand.line, model=cand.name)
            return
        if cand.meta.get("instance"):
            model = cand.build()
            self.check_model(cand, model, cand.build, cand.inputs, device=_device_of(model))
            return
        attempts = cand.meta.get("attempts") or [(cand.name, cand.build, None)]
        meta_model = None
        spec = cand.inputs
        build = None
        errors: list[tuple[str, BaseException | None]] = []
        for desc, fn, attempt_spec in attempts:
            self.step("build", cand.name, cand.line)
            try:
                meta_model = loader.build_meta(fn)
            except BaseException as exc:  # user code
                if isinstance(exc, KeyboardInterrupt):
                    raise
                if self.graph.classify_error(exc) == "meta":
                    build, meta_model = fn, None  # its __init__ needs data: only a real build works
                    spec = spec or attempt_spec
                    break
                errors.append((f"{desc} raised {_exc_text(exc)}" if cand.origin == "auto" else _exc_text(exc), exc))
                continue
            if not isinstance(meta_model, torch.nn.Module):
                errors.append((f"{desc} returned a {type(meta_model).__name__}, not an nn.Module", None))
                continue
            build = fn
            spec = spec or attempt_spec
            cand.meta.setdefault("how", desc)
            break
        if build is None:
            why, error = errors[-1] if errors else ("no way to build it", None)
            self.build_failed(cand, why, error)
            return
        size = self.graph.model_info(None, meta_model)["param_bytes"] if meta_model is not None else 0
        if meta_model is None or size <= REAL_GRAPH_MAX_BYTES:
            # small: real CPU tensors are cheaper than the meta device's one-time warm-up
            self.step("build", cand.name, cand.line)
            try:
                _seed_user_rngs()
                model = build()
            except (Exception, SystemExit) as exc:
                self.build_failed(cand, _exc_text(exc), exc)
                return
            del meta_model
            self.check_model(cand, model, build, spec, device="cpu")
        else:
            self.check_model(cand, meta_model, build, spec, device="meta")

    def build_failed(self, cand: Any, why: str, exc: BaseException | None = None) -> None:
        self.not_checked += 1
        if cand.declared:
            line = self.user.line_from_traceback(exc.__traceback__) if exc is not None else None
            at = f" at line {line}" if line and line != cand.line else ""
            self.tool("NN005", f"building {cand.name} failed: {why}{at}", line or cand.line, model=cand.name)
        else:
            hint = self.loader.declaration_hint(cand, self.path, cand.inputs, int(self.req.get("batch_size") or 8))
            self.tool(
                "NN002", f"{cand.name} could not be built automatically ({why}); {hint}", cand.line, model=cand.name
            )

    def check_model(self, cand: Any, model: Any, build: Any, spec: Any, device: str, real_example: Any = None) -> None:
        graph, loader = self.graph, self.loader
        from nnlint.passes import guesses

        batch = int(self.req.get("batch_size") or 8)
        name = cand.name
        line = cand.line
        self.model_facts[name] = {
            "params": sum(p.numel() for p in model.parameters()),
            "guessed": spec is None or guesses.input_source(spec) == guesses.GUESSED,
        }
        if spec is None:
            self.step("forward", name, line)
            inferred = loader.infer_inputs(model, batch, device=device, deadline=time.monotonic() + 20)
            if inferred.spec is None:
                self.not_checked += 1
                hint = loader.declaration_hint(cand, self.path, None, batch)
                self.tool(
                    "NN002",
                    f"{name} was built but no input could be inferred ({inferred.reason}); {hint}",
                    line,
                    model=name,
                )
                return
            spec = inferred.spec
            # a guessed input satisfies the file's own constants first (sequence_length = 28)
            spec = guesses.prefer_file_constants(model, spec, self.text, device, loader.try_forward)
            spec = guesses.prefer_batch_preserving(model, spec, device)
        self.fix_int_ranges(model, spec)
        self.step("trace", name, line)
        ctx = self.context(cand, model, spec, device, real_example)
        if ctx.failure is not None and ctx.failure.kind == "meta" and device == "meta":
            # an op without a meta kernel, or one that needs data: run it for real if it fits
            info = graph.model_info(None, model)
            budget = self.budget()
            if info["param_bytes"] * 2 > budget:
                self.not_checked += 1
                self.tool(
                    "NN006",
                    f"{name} cannot be shape-checked on the meta device ({ctx.failure.exc_type}: "
                    f"{_first_line(ctx.failure.message)}) and is too large to run for real "
                    f"({gb(info['param_bytes'])} of weights > budget {gb(budget)}); graph and "
                    "probe checks skipped",
                    line,
                    model=name,
                    evidence=info,
                )
                return
            self.step("build", name, line)
            try:
                model = real_example.model if real_example is not None else build()
            except Exception as exc:
                self.not_checked += 1
                self.tool("NN005", f"building {name} for real failed: {_exc_text(exc)}", line, model=name)
                return
            device = "cpu"
            self.step("trace", name, line)
            ctx = self.context(cand, model, spec, device, real_example)
        failure = ctx.failure
        if failure is not None:
            guessed = guesses.input_source(spec) == guesses.GUESSED
            if (
                failure.kind == "shape"
                and guessed
                and not (ctx.input_search or {}).get("exhausted")
                and (cand.declared or failure.first_layer_ran)
            ):
                # a guessed input that fails is not a finding: the guess may be what is wrong
                self.not_probed += 1
                hint = loader.declaration_hint(cand, self.path, spec, batch)
                self.tool(
                    "NN002",
                    f"{name} was built, but its forward rejected the guessed input "
                    f"{_inputs_desc(spec)} ({failure.exc_type}: {_first_line(failure.message)}); "
                    f"nnlint cannot tell a shape bug from a wrong guess; {hint}",
                    line,
                    model=name,
                )
                return
            if failure.kind == "shape" and (cand.declared or failure.first_layer_ran):
                if not (ctx.input_search or {}).get("exhausted"):
                    self.step("forward", name, line)
                    fits = loader.search_fitting_sizes(model, spec, device) or []
                    if fits or ctx.input_search or cand.declared:
                        ctx.input_search = {**(ctx.input_search or {}), "fits": fits, "declared": cand.declared}
            elif cand.declared:
                self.not_checked += 1
                self.tool(
                    "NN005",
                    f"the forward of {name} on {_inputs_desc(spec)} raised "
                    f"{failure.exc_type}: {_first_line(failure.message)}",
                    failure.line or line,
                    model=name,
                    module=failure.module,
                )
                return
            else:
                self.not_checked += 1
                hint = loader.declaration_hint(cand, self.path, spec, batch)
                self.tool(
                    "NN002",
                    f"{name} was built, but its forward rejected the inferred input "
                    f"{_inputs_desc(spec)} ({failure.exc_type}: {_first_line(failure.message)}); {hint}",
                    line,
                    model=name,
                )
                return
        self.models += 1
        self.send("model", name=name)
        self.send("verbose", text=_model_line(self.display, cand, spec))
        if ctx.classes is None:
            ctx.classes = _classes(ctx)
        self.step("forward", name, line)
        diags, crashes = graph.run_rules(ctx, self.graph_rules)
        self.diagnostics(diags, guesses.describe(cand, spec, real_example))
        for c in crashes:
            self.send("error", text=c.describe(self.path, name))
        if ctx.fallback and failure is None:
            self.tool(
                "NN004",
                f"torch.fx could not trace {name} ({ctx.trace_error}); graph rules ran on forward "
                "hooks and recorded torch calls instead",
                line,
                model=name,
            )
        if failure is not None or not self.probe_rules:
            return
        self.probe(cand, ctx, model, build, spec, device, real_example)

    def context(self, cand: Any, model: Any, spec: Any, device: str, real_example: Any) -> Any:
        if real_example is not None and real_example.inputs is not None and device != "meta":
            args, kwargs = self.graph.split_inputs(real_example.inputs)
        else:
            args, kwargs = spec.make(device)
        ctx = self.graph.build_context(
            model,
            args,
            kwargs,
            path=self.path,
            model_name=cand.name,
            user=self.user,
            source=self.facts,
            inputs_desc=_inputs_desc(spec),
            input_search=spec.search,
            loss_name=cand.loss_name,
            classes=cand.classes,
            model_line=cand.line,
            module_lines=cand.meta.get("module_lines"),
        )
        from nnlint.passes.guesses import input_source

        ctx.input_source = input_source(spec)  # rules word a fix only from a declared/file input
        return ctx

    def fix_int_ranges(self, model: Any, spec: Any) -> None:
        """An integer input declared without a range (--input-dtype long) gets indices below
        the first embedding's size."""
        from torch import nn

        emb = next((m for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))), None)
        for t in list(spec.args) + list(spec.kwargs.values()):
            if (
                isinstance(t, self.loader.TensorSpec)
                and not t.dtype.startswith(("float", "bfloat", "bool"))
                and (t.high is None or t.high == 2)
                and emb is not None
            ):
                t.low, t.high = 0, emb.num_embeddings

    # the probe ---------------------------------------------------------------------------
    def budget(self) -> int:
        fraction = float(self.req.get("probe_memory_fraction") or 0.25)
        device = self.req.get("device") or "auto"
        free = None
        if device in ("auto", "cuda"):
            try:
                import torch

                if torch.cuda.is_available():
                    free = torch.cuda.mem_get_info()[0]
            except Exception:
                free = None
        if free is None:
            free = _mem_available()
        return int(free * fraction)

    def probe(self, cand: Any, ctx: Any, model: Any, build: Any, spec: Any, device: str, real_example: Any) -> None:
        try:
            from nnlint.passes.probe import run_probe
        except ImportError:
            return  # the probe pass is not installed (yet): graph findings stand
        graph = self.graph
        name, line = cand.name, cand.line
        info = graph.model_info(ctx, model)
        budget = self.budget()
        if info["estimated_bytes"] > budget:
            self.not_probed += 1
            frac = float(self.req.get("probe_memory_fraction") or 0.25)
            self.tool(
                "NN006",
                f"{name} has {_count(info['parameters'])} parameters ({gb(info['param_bytes'])} of "
                f"weights, ~{gb(info['estimated_bytes'])} for one forward+backward); the probe budget "
                f"is {gb(budget)} ({frac:.0%} of free memory), so probe rules did not run; graph "
                "findings stand. Probe a smaller configuration via nnlint_examples(), or raise "
                "probe-memory-fraction",
                line,
                model=name,
                evidence=info,
            )
            return
        from nnlint.example import Example

        if real_example is not None and device != "meta":
            example = real_example
            if example.inputs is None:
                example.inputs = spec.as_example_inputs("cpu")
        elif cand.origin == "examples" and device == "meta":
            self.step("build", name, line)
            try:
                example = self.real_example(cand.meta["index"])
            except Exception as exc:
                self.not_probed += 1
                self.tool(
                    "NN005",
                    f"nnlint_examples() raised {_exc_text(exc)} when run for the probe",
                    self.user.line_from_traceback(exc.__traceback__) or line,
                    model=name,
                )
                return
        else:
            real = model
            if device == "meta":
                self.step("build", name, line)
                try:
                    _seed_user_rngs()
                    real = build()
                except Exception as exc:
                    self.not_probed += 1
                    self.tool(
                        "NN005",
                        f"building {name} for the probe failed: {_exc_text(exc)}",
                        self.user.line_from_traceback(exc.__traceback__) or line,
                        model=name,
                    )
                    return
            example = Example(
                model=real,
                inputs=spec.as_example_inputs("cpu"),
                loss=cand.loss,
                target=cand.target,
                name=name,
                classes=ctx.classes,
            )
        example.classes = example.classes or ctx.classes
        example.meta = dict(example.meta or {})
        example.meta.setdefault("loss_name", cand.loss_name)
        example.meta.setdefault("line", line)
        example.meta.setdefault("output_shapes", [list(s) for s in ctx.output_shapes])
        # modules the forward never runs or whose output it discards (NN202's findings):
        # their parameters get no gradient by construction, the probe need not say it again
        example.meta.setdefault("unused_modules", self.graph.unused_modules(ctx))
        for k, v in cand.meta.items():
            if k not in ("attempts", "index"):
                example.meta.setdefault(k, v)
        if any(r.pass_ == "data" for r in self.probe_rules) and example.data is None:
            example.data = self.load_data()
        settings = {
            "device": self.req.get("device") or "auto",
            "batch_size": int(self.req.get("batch_size") or 8),
            "overfit": bool(self.req.get("overfit")),
            "overfit_steps": int(self.req.get("overfit_steps") or 30),
            "memory_budget_bytes": budget,
            "estimated_bytes": info["estimated_bytes"],
            "progress": lambda step: self.step(step, name, line),
        }
        self.step("probe", name, line)
        try:
            result = run_probe(example, self.probe_rules, settings, self.path, name)
        except Exception as exc:
            inner = getattr(exc, "exc", None) or exc.__cause__ or exc
            phase = getattr(exc, "phase", None)
            uline = self.user.line_from_traceback(inner.__traceback__) or self.user.line_from_traceback(
                exc.__traceback__
            )
            from nnlint.passes import guesses

            hit = (
                guesses.loss_failure(cand, example, inner, example.meta.get("output_shapes"))
                if phase == "loss"
                else None
            )
            from nnlint.passes import model_dtype

            if hit is None and model_dtype.mismatch(inner) and guesses.input_source(spec) != guesses.DECLARED:
                # a dtype clash on an input whose dtype nnlint guessed: the guess may be what is wrong
                self.not_probed += 1
                hint = self.loader.declaration_hint(cand, self.path, spec, int(self.req.get("batch_size") or 8))
                self.tool(
                    "NN002",
                    f"{name} was built, but the probe's {phase or 'run'} on the guessed input {_inputs_desc(spec)} "
                    f"raised {_exc_text(inner)}; nnlint cannot tell a dtype bug from a wrong guess of the "
                    f"dtype; {hint}",
                    uline or line,
                    model=name,
                )
            elif hit is not None:
                # the probe's loss raised because of a bug a rule describes: that rule, at the loss line
                self.not_probed += 1
                code, text, at = hit
                if code == "NN002":
                    self.tool("NN002", text, line, model=name)
                else:
                    self.rule_finding(code, text, at or line, name, guesses.describe(cand, spec, example))
            elif phase is not None or uline is not None:
                self.not_probed += 1
                self.tool(
                    "NN005",
                    f"the probe's {phase or 'run'} of {name} raised {_exc_text(inner)}",
                    uline or line,
                    model=name,
                )
            else:
                self.send(
                    "error",
                    text=f"{self.path}: internal error in the probe of {name}: {_exc_text(exc)} "
                    f"at {_where(exc)}; please report this",
                )
            return
        from nnlint.passes import guesses

        found = list(result or [])
        if guesses.input_source(spec) == guesses.GUESSED and example.target is None:
            # a finding that rests on a guessed input must hold on a second plausible input
            def rerun() -> list | None:
                alt = guesses.alternate_spec(example.model, spec, "cpu", self.loader.try_forward)
                if alt is None:
                    return None
                self.step("probe second input", name, line)
                ex2 = Example(
                    model=example.model,
                    inputs=alt.as_example_inputs("cpu"),
                    loss=example.loss,
                    target=None,
                    name=example.name,
                    classes=example.classes,
                    meta=dict(example.meta),
                )
                rules = [r for r in self.probe_rules if r.code in guesses.INPUT_DEPENDENT]
                try:
                    return list(run_probe(ex2, rules, settings, self.path, name) or [])
                except Exception:
                    return None
                finally:
                    rerun.alt = alt  # type: ignore[attr-defined]  # a function attribute: the input it used

            found, dropped = guesses.confirm(found, rerun)
            if dropped:
                alt = getattr(rerun, "alt", None)
                codes = ", ".join(sorted({d.code for d in dropped}))
                hint = self.loader.declaration_hint(cand, self.path, spec, int(self.req.get("batch_size") or 8))
                self.send(
                    "note",
                    text=f"{self.path}: {name}: {codes} seen on the guessed input {_inputs_desc(spec)} "
                    f"but not on {_inputs_desc(alt) if alt else 'a second size'}: not reported; "
                    f"{hint}",
                )
        self.diagnostics(found, guesses.describe(cand, spec, example))
        if self.req.get("report") and getattr(result, "stats", None):
            self.send("stats", model=name, stats=result.stats)
        for text in getattr(result, "errors", None) or []:
            self.send("error", text=text)
        for text in getattr(result, "notes", None) or []:
            self.send("note", text=f"{self.path}: {name}: {text}")

    def load_data(self) -> Any:
        if self._data_loaded:
            return self._data
        self._data_loaded = True
        spec = self.req.get("data")
        if not spec:
            return None
        import importlib

        mod_name, _, fn_name = spec.partition(":")
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())
        try:
            fn = getattr(importlib.import_module(mod_name), fn_name or "batches")
            self._data = fn()
        except Exception as exc:
            self.send("error", text=f"--data {spec}: {_exc_text(exc)}")
        return self._data

    # nnlint_examples() ---------------------------------------------------------------------
    def check_examples(self, cand: Any) -> None:
        """Call nnlint_examples() on the meta device first (sizes, no memory); when all its
        models are small, call it again for real and check those (cheaper than meta's
        warm-up, and the probe reuses them)."""
        loader = self.loader
        import torch

        self.step("build", "nnlint_examples", cand.line)
        examples = None
        try:
            with torch.device("meta"):
                examples = loader.examples_from(cand.build())
            for ex in examples:
                if not isinstance(ex.model, torch.nn.Module) and callable(ex.model):
                    ex.model = loader.build_meta(ex.model)
                loader.to_meta(ex.model)
            size = sum(self.graph.model_info(None, ex.model)["param_bytes"] for ex in examples)
        except Exception:
            size = 0  # it needs real data to build: call it for real
        device = "meta"
        if examples is None or size <= REAL_GRAPH_MAX_BYTES:
            self.step("build", "nnlint_examples", cand.line)
            try:
                examples = [self.real_example(i) for i in range(len(self.real_examples()))]
            except Exception as exc:
                self.not_checked += 1
                self.tool(
                    "NN005",
                    f"nnlint_examples() raised {_exc_text(exc)}",
                    self.user.line_from_traceback(exc.__traceback__) or cand.line,
                )
                return
            device = "cpu"
        for i, ex in enumerate(examples):
            model = ex.model
            if not isinstance(model, torch.nn.Module):
                self.tool(
                    "NN005", f"nnlint_examples()[{i}]: 'model' is a {type(model).__name__}, not an nn.Module", cand.line
                )
                continue
            name = ex.name or type(model).__name__
            if not ex.name and sum(1 for e in examples if not e.name and type(e.model) is type(model)) > 1:
                name = f"{name}[{i}]"
            cls_line = (
                loader.class_line(type(model))
                if getattr(type(model), "__module__", None) == self.module.__name__
                else None
            )
            sub = loader.Candidate(
                name=name,
                line=cls_line or cand.line,
                origin="examples",
                cls=type(model),
                loss=ex.loss,
                loss_name=(ex.meta or {}).get("loss_name") or _loss_name(ex.loss) or cand.loss_name,
                target=ex.target,
                classes=ex.classes,
            )
            sub.meta.update(ex.meta or {})
            sub.meta["index"] = i
            if ex.inputs is None:
                spec = None
            else:
                spec = loader.spec_from_inputs(ex.inputs, f"nnlint_examples()[{i}]")
            self.check_model(
                sub,
                model,
                lambda i=i: self.real_example(i).model,
                spec,
                device=device,
                real_example=ex if device == "cpu" else None,
            )

    def real_examples(self) -> list[Any]:
        if self._real_examples is None:
            _seed_user_rngs()
            self._real_examples = self.loader.examples_from(self.module.nnlint_examples())
        return self._real_examples

    def real_example(self, index: int) -> Any:
        ex = self.real_examples()[index]
        if not hasattr(ex.model, "parameters") and callable(ex.model):
            ex.model = ex.model()
        return ex


def _model_line(path: str, cand: Any, spec: Any) -> str:
    """``--verbose``: a checked model, how it was built, its input and loss and their sources."""
    how = cand.meta.get("how") or {
        "examples": "nnlint_examples()",
        "cli": "--model",
        "pyproject": "[[tool.nnlint.models]]",
    }.get(cand.origin, cand.name)
    inp = f"{spec.describe()} ({spec.origin or 'inferred from its first layer'})" if spec is not None else "?"
    loss = cand.loss_name or "none"
    where = (
        {
            "auto": "named in the file",
            "examples": "nnlint_examples()",
            "cli": "named in the file",
            "pyproject": "[[tool.nnlint.models]]",
        }.get(cand.origin, "")
        if cand.loss_name
        else "no loss in the file"
    )
    src = cand.meta.get("loss_source")
    if cand.meta.get("objective") == "neutral" and not cand.loss_name:
        loss, where = "none", f"mean of squared outputs: not a classifier, {cand.meta.get('objective_why')}"
    elif src == "file" and cand.loss_name:
        at = cand.meta.get("loss_line")
        where = f"applied to its output at line {at}" if at else "applied to its output in the file"
    elif src == "guessed" and cand.loss_name:
        where = "named in the file but not seen applied to this model's output: a guess"
    return f"{path}:{cand.line or 1}: checked {cand.name}: built by {how}; input {inp}; loss {loss} ({where})"


def _seed_user_rngs() -> None:
    """Seed the generators user code draws from (weights, `torch.randn` example inputs),
    so that a file gives the same findings on every run."""
    import random

    import torch

    torch.manual_seed(0)
    random.seed(0)
    np = sys.modules.get("numpy")
    if np is not None:
        np.random.seed(0)


def _device_of(model: Any) -> str:
    p = next(iter(model.parameters()), None)
    return "meta" if p is not None and p.device.type == "meta" else "cpu"


def _classes(ctx: Any) -> int | None:
    from nnlint.passes.graph import infer_classes

    return infer_classes(ctx)


def _loss_name(loss: Any) -> str | None:
    if loss is None:
        return None
    from nnlint.vocab import LOSS_CLASS_OF_NAME

    name = getattr(loss, "__name__", None) or type(loss).__name__
    return LOSS_CLASS_OF_NAME.get(name, name)


def _inputs_desc(spec: Any) -> str:
    text = spec.describe()
    return f"{text} ({spec.origin})" if spec.origin else text


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 300 else line[:297] + "..."


def _exc_text(exc: BaseException) -> str:
    msg = _first_line(str(exc))
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _where(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    return f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "?"


def _count(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.2f} B"
    if n >= 1e6:
        return f"{n / 1e6:.1f} M"
    return f"{n:,}"


def _mem_available() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def main(req: dict[str, Any] | None = None) -> None:
    if req is None:  # a fresh process; the warm worker's fork passes the request in
        req = json.loads(sys.stdin.read() or "{}")
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    # user prints go to stderr: fd 1 and sys.stdout both
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    fault: TextIO = sys.stderr
    if req.get("fault_path"):
        fault = open(req["fault_path"], "w")
    faulthandler.enable(file=fault, all_threads=False)
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=fault, all_threads=False, chain=False)
    worker = Worker(req, proto)
    try:
        worker.run()
    except BaseException as exc:  # SystemExit from user code at an unguarded point, or our bug
        if isinstance(exc, KeyboardInterrupt):
            raise
        worker.send(
            "error", text=f"{worker.path}: internal error: {_exc_text(exc)} at {_where(exc)}; please report this"
        )
    try:  # what the result depends on besides the file itself (the result cache's key)
        from nnlint.cache import project_files_imported

        imported: list[str] | None = project_files_imported()
    except Exception:
        imported = None
    worker.send(
        "done",
        models=worker.models,
        models_not_checked=worker.not_checked,
        models_not_probed=worker.not_probed,
        files=imported,
    )
    proto.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown and user atexit handlers


if __name__ == "__main__":
    main()
