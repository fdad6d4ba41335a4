"""Parent side of the dynamic passes: decides which files need user code to run and runs
them in a child process with a time limit. (Placeholder until the graph pass lands.)"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnlint.diagnostics import Diagnostic


@dataclass
class DynamicResult:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    models: int = 0
    models_not_probed: int = 0
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)


def wants(path: str, text: str, cfg, opts) -> bool:
    return False


def run_dynamic(files, texts, cfg, opts, rules) -> DynamicResult:
    return DynamicResult()
