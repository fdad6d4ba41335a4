"""How a time limit met in nnlint's own work is worded: a large model on nnlint's guessed input, or an extra measurement (a tool limit, not a finding)."""

from __future__ import annotations

from typing import Any

#: from this many parameters, one forward on a guessed input can take the whole time limit on
#: a CPU (vit-pytorch's CCT(): 88 M parameters, 3136 tokens at the 224x224 its positional
#: embedding demands, ~20 s for ONE sample on 2 cores); a hang in a smaller model stays NN005
LARGE_MODEL_PARAMS = 10_000_000

#: steps that run the model's forward (or backward) on nnlint's input
MODEL_STEPS = ("forward", "trace", "probe")


#: the probe's optional extra measurements (run after its forward and backward, only for the
#: rules that need them): a time limit met there is nnlint's own cost, not the model's hang
EXTRA_STEPS = ("probe zero-init check", "probe non-finite search", "probe eval-mode checks", "probe overfit")


def slow_guess_message(last_step: dict[str, Any] | None, timeout: float, where: str, at: str) -> str | None:
    """The NN002 message for a time limit met in a large model's forward on a guessed input,
    or in one of the probe's extra measurements after its forward and backward had run; None
    when the time limit is an NN005 finding (a small model, the user's own input, a step that
    runs no forward)."""
    step = last_step or {}
    params = step.get("params")
    name = str(step.get("step") or "")
    if name in EXTRA_STEPS:
        return (
            f"{step.get('model')} was not fully checked: its forward and backward ran, but nnlint's own "
            f"extra measurement met the time limit of {timeout:g} s {where}{at} (on a busy or small machine "
            "these repeat the forward per sample); raise timeout in [tool.nnlint] or --timeout, or declare "
            "a smaller example in nnlint_examples()"
        )
    if not step.get("guessed") or not isinstance(params, int) or params < LARGE_MODEL_PARAMS:
        return None
    if not any(name.startswith(s) for s in MODEL_STEPS):
        return None
    return (
        f"{step.get('model')} was not checked: the run met the time limit of {timeout:g} s {where}{at}, "
        f"running nnlint's guessed input through a model of {params / 1e6:.1f} M parameters on the CPU; "
        "nnlint cannot tell a slow model from a hang there. Declare a smaller example in "
        "nnlint_examples() (a smaller input or configuration), or raise timeout in [tool.nnlint] "
        "or --timeout"
    )
