"""Discovers rules under ``nnlint.rules``, checks their invariants and selects them by
code prefix. The rule list lives nowhere else."""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import lru_cache

from nnlint.contexts.probe import Extra
from nnlint.rule import DOC_HEADINGS, Rule

CODE_RE = re.compile(r"^NN[0-9]{3}$")
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
PASS_BY_PREFIX = {"NN0": "tool", "NN1": "source", "NN2": "graph", "NN3": "probe", "NN4": "source", "NN5": "data"}


class RegistryError(Exception):
    pass


@lru_cache(maxsize=1)
def all_rules() -> dict[str, type[Rule]]:
    """Every rule class by code, sorted by code."""
    return discover()


@lru_cache(maxsize=8)
def discover(packages: tuple[str, ...] | None = None) -> dict[str, type[Rule]]:
    """The rule classes under ``nnlint.rules`` (only under the sub-packages named in
    ``packages``, e.g. ``("graph", "probe")``, when given: a worker that never runs the source
    pass does not import it), by code, sorted by code."""
    import nnlint.rules as pkg

    found: dict[str, type[Rule]] = {}
    if packages is None:
        names = [info.name for info in pkgutil.walk_packages(pkg.__path__, prefix="nnlint.rules.")]
    else:
        names = []
        for sub in packages:
            try:
                subpkg = importlib.import_module(f"nnlint.rules.{sub}")
            except ImportError:
                continue
            names += [info.name for info in pkgutil.iter_modules(subpkg.__path__, prefix=f"nnlint.rules.{sub}.")]
    for name in names:
        if name.rsplit(".", 1)[-1].startswith("_"):
            continue
        mod = importlib.import_module(name)
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, Rule) and obj.__module__ == mod.__name__ and obj.code:
                if obj.code in found and found[obj.code] is not obj:
                    raise RegistryError(
                        f"duplicate rule code {obj.code}: {found[obj.code].__module__} and {mod.__name__}"
                    )
                found[obj.code] = obj
    return dict(sorted(found.items()))


def check_invariants(rules: dict[str, type[Rule]]) -> list[str]:
    """Problems with the rule set: bad codes/names, missing docs or examples."""
    problems = []
    names: dict[str, str] = {}
    for code, rule in rules.items():
        if not CODE_RE.match(code):
            problems.append(f"{code}: code must look like NN123")
        if not NAME_RE.match(rule.name or ""):
            problems.append(f"{code}: name {rule.name!r} must be kebab-case")
        if rule.name in names:
            problems.append(f"{code}: name {rule.name!r} already used by {names[rule.name]}")
        names[rule.name] = code
        expected_pass = PASS_BY_PREFIX.get(code[:3])
        if expected_pass and rule.pass_ != expected_pass:
            problems.append(f"{code}: pass {rule.pass_!r}, expected {expected_pass!r}")
        doc = rule.docs()
        for heading in DOC_HEADINGS:
            if f"## {heading}" not in doc:
                problems.append(f"{code}: docstring lacks '## {heading}'")
        for need in rule.needs:
            if not isinstance(need, Extra):
                problems.append(f"{code}: needs {need!r}, not a member of nnlint.contexts.probe.Extra")
        if rule.pass_ != "tool" and not rule.INVALID:
            problems.append(f"{code}: no INVALID examples")
        if rule.pass_ != "tool" and not rule.VALID:
            problems.append(f"{code}: no VALID examples")
    return problems


def matches(code: str, selector: str) -> bool:
    return selector == "ALL" or code.startswith(selector)


def valid_selector(selector: str) -> bool:
    if selector == "ALL":
        return True
    if not re.match(r"^NN[0-9]{0,3}$", selector):
        return False
    return any(code.startswith(selector) for code in all_rules())


def select(
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    extend_select: list[str] | None = None,
) -> list[type[Rule]]:
    """Ruff's semantics: start from ``select`` (default ALL minus opt-in rules), add
    ``extend_select``, remove ``ignore``; the most specific selector wins, so
    ``--select ALL --ignore NN1 --extend-select NN104`` keeps NN104. Opt-in rules are only
    on when named by their full code (or switched on by their flag)."""
    chosen = []
    sel = list(select or ["ALL"]) + list(extend_select or [])
    ign = list(ignore or [])
    for code, rule in all_rules().items():
        best_sel = max((len(s) if s != "ALL" else 0 for s in sel if matches(code, s)), default=-1)
        best_ign = max((len(s) if s != "ALL" else 0 for s in ign if matches(code, s)), default=-1)
        if best_sel < 0 or best_ign >= best_sel:
            continue
        if rule.opt_in and code not in sel:
            continue
        chosen.append(rule)
    return chosen
