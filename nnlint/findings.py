"""Running a pass's rules: the one way a rule's ``Finding`` becomes a ``Diagnostic`` and the
one record of a rule that crashed. Each pass keeps only its own way of finding the user's
line (a ``locate`` callable that turns a finding into a ``Span``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from nnlint.diagnostics import Diagnostic, Location
from nnlint.rule import Finding, Rule


@dataclass(frozen=True)
class RuleCrash:
    """A rule raised instead of yielding findings; the other rules still ran."""

    code: str
    #: ``"KeyError: 'x'"``
    error: str
    #: ``file:line`` of the innermost frame, for the bug report
    where: str

    @classmethod
    def of(cls, code: str, exc: BaseException) -> RuleCrash:
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
        return cls(code, f"{type(exc).__name__}: {exc}", where)

    def describe(self, path: str, model: str | None = None) -> str:
        on = f" on {model}" if model else ""
        return (
            f"{path}: internal error: rule {self.code} crashed{on} ({self.error} at {self.where}); "
            "other rules ran. Please report this."
        )


@dataclass(frozen=True)
class Span:
    """Where a finding is reported, 1-based; ``None`` ends are filled in by the reporters."""

    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None


def to_diagnostic(
    rule: Rule | type[Rule],
    f: Finding,
    path: str,
    span: Span,
    related: tuple[Location, ...] = (),
    model: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> Diagnostic:
    """``f`` as the user sees it: the rule's identity, the pass's position, and the finding's
    own severity, model, evidence and fix when it gives them."""
    return Diagnostic(
        code=rule.code,
        name=rule.name,
        severity=f.severity or rule.severity,
        message=f.message,
        pass_=rule.pass_,
        path=path,
        line=span.line,
        column=span.column,
        end_line=span.end_line,
        end_column=span.end_column,
        model=f.model or model,
        module=f.module,
        evidence=f.evidence if evidence is None else evidence,
        fix=f.fix,
        related=related,
    )


def run_rules(
    rules: Iterable[Rule],
    ctx: Any,
    locate: Callable[[Finding], Span],
    *,
    path: str,
    model: str | None = None,
    keep: Callable[[Rule, Finding], bool] | None = None,
    evidence: Callable[[Finding], dict[str, Any]] | None = None,
    related_line: Callable[[Any], int | None] | None = None,
) -> tuple[list[Diagnostic], list[RuleCrash]]:
    """Run every rule on ``ctx``. A rule that raises is returned as a ``RuleCrash`` and none
    of its findings are kept (a half-run rule may be wrong); the other rules still run.
    ``keep`` drops findings the user cannot act on; ``evidence`` rewrites a finding's
    evidence (e.g. to add the run's settings); ``related_line`` turns a ``Finding.related``
    place (a node or a line) into a line of ``path``, and related places it cannot place
    are left out."""
    out: list[Diagnostic] = []
    crashes: list[RuleCrash] = []
    for rule in rules:
        found: list[Diagnostic] = []
        try:
            for f in rule.check(ctx):
                if keep is not None and not keep(rule, f):
                    continue
                found.append(
                    to_diagnostic(
                        rule,
                        f,
                        path,
                        locate(f),
                        related_places(f, path, related_line),
                        model,
                        evidence(f) if evidence is not None else None,
                    )
                )
        except Exception as exc:  # a rule bug must not hide the other rules' findings
            crashes.append(RuleCrash.of(rule.code, exc))
            continue
        out.extend(found)
    return out, crashes


def related_places(f: Finding, path: str, related_line: Callable[[Any], int | None] | None) -> tuple[Location, ...]:
    """``Finding.related`` as locations in ``path``; a place that cannot be placed is left out."""
    places = []
    for where, message in f.related:
        line = where if isinstance(where, int) else related_line(where) if related_line is not None else None
        if line is not None:
            places.append(Location(path=path, line=line, message=message))
    return tuple(places)
