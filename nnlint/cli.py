"""``nnlint [check] PATH...``, ``nnlint rule CODE``, ``nnlint rules``.

``main(argv)`` returns the exit code: 0 clean, 1 findings (errors or warnings; info alone
does not fail a run), 2 usage or internal error. It never lets a traceback reach the user.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

import nnlint
from nnlint import config as config_mod
from nnlint import registry
from nnlint.config import ConfigError

SUBCOMMANDS = ("check", "rule", "rules", "clean", "server")
FORMATS = ("text", "json", "sarif", "github")


def _codes(value: str) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()]


def _shape(value: str) -> list[int]:
    try:
        dims = [int(x) for x in value.replace("x", ",").split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 8,3,32,32, got {value!r}") from None
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"dimensions must be positive integers, got {value!r}")
    return dims


def _json_obj(value: str) -> dict:
    try:
        obj = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}): {value!r}") from None
    if not isinstance(obj, dict):
        raise argparse.ArgumentTypeError("expected a JSON object such as '{\"num_classes\": 10}'")
    return obj


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2 already; keep its message short
        self.print_usage(sys.stderr)
        self.exit(2, f"nnlint: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nnlint", description="Find silent bugs in PyTorch model code.")
    parser.add_argument("--version", action="version", version=f"nnlint {nnlint.__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    check = sub.add_parser("check", help="lint files and folders (the default command)")
    check.add_argument("paths", nargs="*", default=["."], help="files or folders (default: .)")
    check.add_argument("--format", choices=FORMATS, default=None, help="output format (default: text)")
    check.add_argument(
        "--select", type=_codes, help="comma-separated codes or prefixes to enable (e.g. NN1,NN301, ALL)"
    )
    check.add_argument("--ignore", type=_codes, help="comma-separated codes or prefixes to disable")
    check.add_argument("--extend-select", type=_codes, help="codes or prefixes to add to the selection")
    check.add_argument("--static", action="store_true", help="source pass only: never imports torch or user code")
    check.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    check.add_argument("--config", type=Path, help="pyproject.toml to read [tool.nnlint] from (default: nearest)")
    check.add_argument("--isolated", action="store_true", help="ignore every configuration file")
    check.add_argument("-j", "--jobs", type=int, help="parallel processes (default: CPU count)")
    check.add_argument("-o", "--output-file", type=Path, help="write the report here instead of stdout")
    check.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache")
    check.add_argument("--cache-dir", help="where the result cache lives (default: .nnlint_cache at the project root)")
    check.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour text output (default: on a TTY, unless NO_COLOR)",
    )
    fx = check.add_argument_group("fixes (source rules; see the fix table in the README)")
    fx.add_argument("--fix", action="store_true", help="apply safe fixes, then report what is left")
    fx.add_argument(
        "--unsafe-fixes", action="store_true", help="apply unsafe fixes too (review them: they change behaviour)"
    )
    fx.add_argument("--diff", action="store_true", help="print the fixes as a unified diff and write nothing")
    fx.add_argument("--add-noqa", action="store_true", help="append '# noqa: CODE' to every reported line")
    check.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="write one self-contained HTML report per checked model into DIR (needs nnlint[report])",
    )
    check.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="list each model found: how it was built, its input and loss and where they came from, "
        "and every class left out and why (stderr)",
    )
    dyn = check.add_argument_group("graph and probe passes (run user code in a child process)")
    dyn.add_argument("--model", help="class or factory to build (default: discovered)")
    dyn.add_argument("--input-shape", type=_shape, help="example input shape, e.g. 8,3,32,32")
    dyn.add_argument(
        "--input-dtype",
        choices=("float", "float32", "float16", "bfloat16", "long", "int64", "int", "bool"),
        help="example input dtype",
    )
    dyn.add_argument("--kwargs", type=_json_obj, help="constructor arguments as JSON, e.g. '{\"num_classes\": 10}'")
    dyn.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), help="where the probe runs (default: auto = CUDA when available)"
    )
    dyn.add_argument("--timeout", type=float, help="seconds each file's user code may run (default 60)")
    dyn.add_argument(
        "--memory-limit-mb",
        type=float,
        help="resident memory (MB) each file's child process may use (default: half of the machine's)",
    )
    dyn.add_argument(
        "--overfit", action="store_true", help="also run the deep probe NN312 (optimizer steps on one batch)"
    )
    dyn.add_argument(
        "--data", help="module:function returning an iterable of (inputs, target) batches for the data probe (NN5)"
    )

    rule = sub.add_parser("rule", help="print a rule's documentation")
    rule.add_argument("code", help="a rule code (NN101) or name (reused-layer-input)")
    rules = sub.add_parser("rules", help="list all rules")
    rules.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    clean = sub.add_parser("clean", help="remove the result cache (.nnlint_cache) of the project here")
    clean.add_argument("path", nargs="?", default=".", help="a folder in the project (default: .)")
    clean.add_argument("--cache-dir", help="the cache folder to remove (default: the project's)")
    server = sub.add_parser("server", help="run the language server (LSP over stdio; needs nnlint[lsp])")
    server.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (the default)")
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Subcommands win over paths of the same name (lint a folder called "rules" with
    # `nnlint check rules` or `nnlint ./rules`), as in ruff.
    if not args_list or (args_list[0] not in SUBCOMMANDS and args_list[0] not in ("-h", "--help", "--version")):
        args_list = ["check", *args_list]
    parser = build_parser()
    try:
        # argparse prints --version, --help and usage errors to sys.stdout/sys.stderr;
        # send them to the streams the caller gave us.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(args_list)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    try:
        if args.command == "rule":
            return _cmd_rule(args.code, out, err)
        if args.command == "rules":
            return _cmd_rules(args.format, out)
        if args.command == "clean":
            return _cmd_clean(args, out, err)
        if args.command == "server":
            from nnlint import server

            return server.main(err)
        return _cmd_check(args, out, err)
    except ConfigError as exc:
        err.write(f"nnlint: configuration error: {exc}\n")
        return 2
    except BrokenPipeError:  # `nnlint rules | head`: the reader left; not an error of ours
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, out.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 0
    except KeyboardInterrupt:
        err.write("nnlint: interrupted\n")
        return 2
    except Exception as exc:  # the promise: never a traceback
        if os.environ.get("NNLINT_DEBUG"):
            raise
        err.write(
            f"nnlint: internal error: {type(exc).__name__}: {exc} (set NNLINT_DEBUG=1 for the traceback; please report it)\n"
        )
        return 2


def _find_rule(code: str):
    rules = registry.all_rules()
    return rules.get(code.upper()) or next((r for r in rules.values() if r.name == code), None)


def _cmd_rule(code: str, out: TextIO, err: TextIO) -> int:
    rule = _find_rule(code)
    if rule is None:
        err.write(f"nnlint: unknown rule '{code}' (see `nnlint rules`)\n")
        return 2
    out.write(f"# {rule.code} {rule.name} ({rule.severity.value}, {rule.pass_} pass)\n\n")
    out.write(rule.docs() + "\n")
    if rule.thresholds:
        out.write("\n## Thresholds ([tool.nnlint.thresholds." + rule.code + "])\n")
        for k, v in rule.thresholds.items():
            out.write(f"- {k} = {v}\n")
    return 0


def rules_table_markdown() -> str:
    lines = ["| code | name | severity | pass | what it finds |", "|---|---|---|---|---|"]
    for code, rule in registry.all_rules().items():
        summary = rule.summary().replace("|", "\\|")
        lines.append(f"| {code} | {rule.name} | {rule.severity.value} | {rule.pass_} | {summary} |")
    return "\n".join(lines) + "\n"


def _cmd_rules(fmt: str, out: TextIO) -> int:
    rules = registry.all_rules()
    if fmt == "json":
        json.dump(
            [
                {
                    "code": c,
                    "name": r.name,
                    "severity": r.severity.value,
                    "pass": r.pass_,
                    "summary": r.summary(),
                    "opt_in": r.opt_in,
                    "thresholds": r.thresholds,
                }
                for c, r in rules.items()
            ],
            out,
            indent=2,
        )
        out.write("\n")
    elif fmt == "markdown":
        out.write(rules_table_markdown())
    else:
        width = max(len(r.name) for r in rules.values())
        for code, rule in rules.items():
            out.write(f"{code}  {rule.name:<{width}}  {rule.severity.value:<7}  {rule.pass_:<6}  {rule.summary()}\n")
    return 0


def _cmd_clean(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from nnlint import cache

    start = Path(args.path)
    cfg = config_mod.load(config_mod.find_pyproject(start if start.exists() else Path(".")))
    if cfg.root is None and start.is_dir():
        cfg.root = start
    directory = cache.cache_dir_for(cfg, args.cache_dir)
    if not directory.exists():
        out.write(f"no cache at {directory}\n")
        return 0
    if not cache.clean(directory):
        err.write(f"nnlint: {directory} has no nnlint CACHEDIR.TAG; not removing it\n")
        return 2
    out.write(f"removed {directory}\n")
    return 0


def _cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from nnlint import engine

    if not args.static and args.paths and len(args.paths) <= 8 and all(os.path.isfile(p) for p in args.paths):
        # named files: start the warm worker's torch import now, beside reading the config
        # and the rules (a one-file run's critical path); a folder waits for its file list
        engine.prestart_worker(list(args.paths), config_mod.Config(), engine.Options())

    if args.isolated:
        cfg = config_mod.Config()
    elif args.config is not None:
        cfg = config_mod.load(args.config)
    else:
        first = Path(args.paths[0]) if args.paths else Path(".")
        cfg = config_mod.load(config_mod.find_pyproject(first if first.exists() else Path(".")))
    for name in ("select", "ignore", "extend_select"):
        value = getattr(args, name)
        if value is not None:
            config_mod.check_selectors(value, f"--{name.replace('_', '-')}")
            setattr(cfg, name, value)
    if args.device:
        cfg.device = args.device
    if args.timeout is not None:
        if args.timeout <= 0:
            raise ConfigError("--timeout must be positive")
        cfg.timeout = args.timeout
    if args.memory_limit_mb is not None:
        if args.memory_limit_mb <= 0:
            raise ConfigError("--memory-limit-mb must be positive")
        cfg.memory_limit_mb = args.memory_limit_mb
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError("--jobs must be at least 1")
    if (args.input_shape or args.input_dtype) and not args.model:
        raise ConfigError("--input-shape and --input-dtype describe the input of one model: name it with --model")
    rules = registry.select(cfg.select, cfg.ignore, cfg.extend_select)
    if args.overfit:
        rules = rules + [
            r
            for r in registry.select(["NN312"])
            if r not in rules and not any(r.code.startswith(i) for i in cfg.ignore)
        ]
    opts = engine.Options(
        static=args.static,
        jobs=args.jobs,
        overfit=args.overfit,
        model=args.model,
        input_shape=args.input_shape,
        input_dtype=args.input_dtype,
        kwargs=args.kwargs,
        data=args.data,
        cache=not args.no_cache and args.report is None,
        cache_dir=args.cache_dir,
        report=str(args.report) if args.report is not None else None,
    )
    if args.diff or args.fix or args.unsafe_fixes:
        from nnlint import fixes

        files, problems = engine.collect_files(args.paths, cfg)
        outcomes = fixes.fix_files(files, rules, cfg, unsafe=args.unsafe_fixes, write=not args.diff)
        for o in outcomes:
            if o.error:
                err.write(f"nnlint: {o.path}: fixes stopped: {o.error}\n")
        changed = [o for o in outcomes if o.changed]
        n = sum(sum(o.applied.values()) for o in changed)
        hidden = sum(o.hidden for o in outcomes)
        more = f"; {hidden} more with --unsafe-fixes" if hidden else ""
        if args.diff:
            for o in changed:
                out.write(fixes.unified_diff(o))
            for p in problems:
                err.write(f"nnlint: error: {p}\n")
            err.write(
                f"nnlint: {n} fix{'es' * (n != 1)} available in {len(changed)} file{'s' * (len(changed) != 1)}{more}\n"
            )
            return 2 if problems else (1 if changed and not args.exit_zero else 0)
        if n:
            codes: dict[str, int] = {}
            for o in changed:
                for c, k in o.applied.items():
                    codes[c] = codes.get(c, 0) + k
            listing = ", ".join(f"{c} x{k}" for c, k in sorted(codes.items()))
            err.write(
                f"nnlint: Fixed {n} problem{'s' * (n != 1)} ({listing}) in {len(changed)} file{'s' * (len(changed) != 1)}{more}.\n"
            )
        elif hidden:
            err.write(f"nnlint: no safe fix applies; {hidden} unsafe fix{'es' * (hidden != 1)} with --unsafe-fixes.\n")
    result = engine.lint(args.paths, cfg, opts, rules)
    if args.add_noqa:
        from nnlint import fixes

        added = fixes.add_noqa(result.diagnostics)
        total = sum(added.values())
        err.write(
            f"nnlint: Added {total} noqa directive{'s' * (total != 1)} in {sum(1 for v in added.values() if v)} file"
            f"{'s' * (sum(1 for v in added.values() if v) != 1)}.\n"
        )
        return 2 if result.errors else 0
    if args.report is not None:
        from nnlint import report as report_mod

        for written in report_mod.write_reports(result, args.report, err):
            err.write(f"nnlint: report written to {written}\n")
    from nnlint.reporters import REPORTERS

    fmt = args.format or "text"
    color = {"auto": None, "always": True, "never": False}[args.color]
    if args.output_file is not None:
        try:
            fh = open(args.output_file, "w", encoding="utf-8")
        except OSError as exc:
            err.write(f"nnlint: error: cannot write the report to {args.output_file}: {exc.strerror or exc}\n")
            return 2
        with fh:
            REPORTERS[fmt](result, fh, color=False)
    else:
        REPORTERS[fmt](result, out, color=color)
    if getattr(args, "verbose", False):
        for line in result.verbose:
            err.write(f"nnlint: {line}\n")
    for note in result.notes:
        err.write(f"nnlint: {note}\n")
    for problem in result.errors:
        err.write(f"nnlint: error: {problem}\n")
    if result.errors:
        return 2
    failing = [d for d in result.diagnostics if d.severity.value in ("error", "warning")]
    return 1 if failing and not args.exit_zero else 0
