"""Settings from ``[tool.nnlint]`` in the nearest ``pyproject.toml`` (tomllib), with CLI
flags winning. Unknown keys, codes or threshold names are errors, never ignored."""

from __future__ import annotations

import fnmatch
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """Bad configuration: the CLI prints it and exits 2."""


DEFAULT_TIMEOUT_S = 60.0

# key -> (type check, description). Keys use pyproject's kebab-case.
KNOWN_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "select": (list, "rule codes or prefixes to enable (default ALL)"),
    "ignore": (list, "rule codes or prefixes to disable"),
    "extend-select": (list, "codes added to select"),
    "per-file-ignores": (dict, "glob -> list of codes ignored in matching files"),
    "exclude": (list, "globs of paths never linted"),
    "thresholds": (dict, "CODE -> {name = value} overriding a rule's default thresholds"),
    "timeout": ((int, float), "seconds each file's user code may run (import, build, trace, probe)"),
    "memory-limit-mb": ((int, float), "resident-memory limit (MB) for the child process running user code, polled"),
    "probe-memory-fraction": ((int, float), "fraction of free memory a model may need for the probe to run it"),
    "device": (str, "auto | cpu | cuda: where the probe runs"),
    "batch-size": (int, "probe batch size (at least 2)"),
    "jobs": (int, "parallel processes for the source pass"),
    "overfit-steps": (int, "optimizer steps of the opt-in --overfit probe (NN312)"),
    "models": (list, "[[tool.nnlint.models]] declarations: target, kwargs, inputs, loss"),
    "cache-dir": (str, "where the result cache lives (default .nnlint_cache at the project root)"),
}


@dataclass
class Config:
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    extend_select: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT_S
    memory_limit_mb: float | None = None
    probe_memory_fraction: float = 0.25
    device: str = "auto"
    batch_size: int = 8
    jobs: int | None = None
    overfit_steps: int = 30
    models: list[dict[str, Any]] = field(default_factory=list)
    cache_dir: str | None = None
    #: directory of the pyproject.toml the settings came from (globs are relative to it)
    root: Path | None = None
    source_file: Path | None = None

    def ignored_codes_for(self, path: str) -> list[str]:
        out: list[str] = []
        if not self.per_file_ignores:
            return out
        candidates = {path, Path(path).as_posix()}
        try:
            if self.root is not None:
                candidates.add(Path(os.path.abspath(path)).relative_to(self.root.resolve()).as_posix())
        except ValueError:
            pass
        for pattern, codes in self.per_file_ignores.items():
            if any(fnmatch.fnmatch(c, pattern) or fnmatch.fnmatch(Path(c).name, pattern) for c in candidates):
                out.extend(codes)
        return out

    def is_excluded(self, path: Path) -> bool:
        if not self.exclude:
            return False
        rel = path.as_posix()
        try:
            if self.root is not None:
                rel = path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            pass
        return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(path.name, p) for p in self.exclude)


def find_pyproject(start: Path) -> Path | None:
    """Nearest pyproject.toml at or above ``start`` that has a [tool.nnlint] table."""
    start = start.resolve()
    if start.is_file():
        start = start.parent
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
                raise ConfigError(f"{candidate}: cannot read: {exc}") from exc
            if "nnlint" in data.get("tool", {}):
                return candidate
    return None


def load(path: Path | None) -> Config:
    if path is None:
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such config file") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    table = data.get("tool", {}).get("nnlint", {})
    cfg = from_table(table, where=f"{path} [tool.nnlint]")
    cfg.root = path.parent
    cfg.source_file = path
    return cfg


def from_table(table: dict[str, Any], where: str = "[tool.nnlint]") -> Config:
    from nnlint import registry

    cfg = Config()
    for key, value in table.items():
        if key not in KNOWN_KEYS:
            close = [k for k in KNOWN_KEYS if k.replace("-", "") == key.replace("_", "").replace("-", "")]
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}: unknown key '{key}'{hint}; known keys: {', '.join(KNOWN_KEYS)}")
        kind = KNOWN_KEYS[key][0]
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise ConfigError(f"{where}: '{key}' must be {_kind_name(kind)}, got {value!r}")
    for key in ("select", "ignore", "extend-select"):
        if key in table:
            codes = [str(c) for c in table[key]]
            check_selectors(codes, f"{where} {key}")
            setattr(cfg, key.replace("-", "_"), codes)
    if "per-file-ignores" in table:
        for pattern, codes in table["per-file-ignores"].items():
            if not isinstance(codes, list):
                raise ConfigError(f"{where} per-file-ignores: '{pattern}' must map to a list of codes")
            check_selectors([str(c) for c in codes], f"{where} per-file-ignores '{pattern}'")
            cfg.per_file_ignores[pattern] = [str(c) for c in codes]
    if "exclude" in table:
        cfg.exclude = [str(p) for p in table["exclude"]]
    if "thresholds" in table:
        rules = registry.all_rules()
        for code, values in table["thresholds"].items():
            rule = rules.get(code) or next((r for r in rules.values() if r.name == code), None)
            if rule is None:
                raise ConfigError(f"{where} thresholds: unknown rule '{code}'")
            if not isinstance(values, dict):
                raise ConfigError(f"{where} thresholds.{code}: must be a table of name = number")
            for name, value in values.items():
                if name not in rule.thresholds:
                    known = ", ".join(rule.thresholds) or "none"
                    raise ConfigError(f"{where} thresholds.{code}: unknown threshold '{name}' (known: {known})")
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ConfigError(f"{where} thresholds.{code}.{name}: must be a number, got {value!r}")
            cfg.thresholds[rule.code] = {k: float(v) for k, v in values.items()}
    if "timeout" in table:
        cfg.timeout = float(table["timeout"])
        if cfg.timeout <= 0:
            raise ConfigError(f"{where}: 'timeout' must be positive")
    if "memory-limit-mb" in table:
        cfg.memory_limit_mb = float(table["memory-limit-mb"])
    if "probe-memory-fraction" in table:
        cfg.probe_memory_fraction = float(table["probe-memory-fraction"])
    if "device" in table:
        if table["device"] not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"{where}: 'device' must be auto, cpu or cuda, got {table['device']!r}")
        cfg.device = table["device"]
    if "batch-size" in table:
        if table["batch-size"] < 2:
            raise ConfigError(f"{where}: 'batch-size' must be at least 2")
        cfg.batch_size = table["batch-size"]
    if "jobs" in table:
        cfg.jobs = table["jobs"]
    if "overfit-steps" in table:
        cfg.overfit_steps = table["overfit-steps"]
    if "cache-dir" in table:
        cfg.cache_dir = str(table["cache-dir"])
    if "models" in table:
        for i, entry in enumerate(table["models"]):
            if not isinstance(entry, dict) or "target" not in entry:
                raise ConfigError(f'{where} models[{i}]: each entry needs target = "path.py:Name"')
            unknown = set(entry) - {"target", "kwargs", "inputs", "loss", "name", "target-shape", "classes"}
            if unknown:
                raise ConfigError(f"{where} models[{i}]: unknown key(s) {', '.join(sorted(unknown))}")
        cfg.models = list(table["models"])
    return cfg


def check_selectors(codes: list[str], where: str) -> None:
    from nnlint import registry

    for code in codes:
        if not registry.valid_selector(code):
            raise ConfigError(f"{where}: unknown rule code or prefix '{code}' (see `nnlint rules`)")


def _kind_name(kind: Any) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return {list: "a list", dict: "a table", str: "a string", int: "an integer"}.get(kind, kind.__name__)
