"""The NN002 message: how to declare a model's input when nnlint could not find one."""

from __future__ import annotations

import os

from nnlint.passes.graph.candidates import Candidate
from nnlint.passes.graph.specs import InputSpec, TensorSpec


def declaration_hint(cand: Candidate, path: str, spec: InputSpec | None, batch: int) -> str:
    name = cand.name
    args = cand.kwargs_hint
    inputs = spec.code() if spec is not None else f"torch.randn({batch}, ...)"
    rel = path.replace(os.sep, "/")
    toml_inputs = ""
    if spec is not None and len(spec.args) == 1 and isinstance(spec.args[0], TensorSpec):
        t = spec.args[0]
        toml_inputs = (
            f", inputs = [{{shape = [{', '.join(map(str, t.shape))}]"
            + (f', dtype = "{t.dtype}", high = {int(t.high or 2)}' if not t.dtype.startswith("float") else "")
            + "}]"
        )
    else:
        toml_inputs = f", inputs = [{{shape = [{batch}, ...]}}]"
    kw_toml = ""
    if args:
        kw_toml = ", kwargs = {" + ", ".join(a.replace("=...", " = ...") for a in args.split(", ")) + "}"
    return (
        "declare it in the file (no nnlint import needed):\n"
        f"    def nnlint_examples():\n"
        f"        model = {name}({args})\n"
        f'        return [{{"model": model, "inputs": {inputs}}}]\n'
        f'or in pyproject.toml: [[tool.nnlint.models]] target = "{rel}:{name}"{kw_toml}{toml_inputs}'
    )
