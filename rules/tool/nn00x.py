"""NN0: findings about nnlint's own run over a file. The engine and the runner raise these;
they are rules so that codes, docs, selection and suppression work uniformly."""

from nnlint.diagnostics import Severity
from nnlint.rule import ToolRule


class SyntaxErrorRule(ToolRule):
    """## What it does
    Reports a file that cannot be parsed as Python (or is not UTF-8 text, or is binary).

    ## Why is this bad?
    Nothing else can be checked in a file that does not parse; the other files are still
    linted.

    ## Example
    ```python
    def forward(self, x)
        return x
    ```

    ## Use instead
    ```python
    def forward(self, x):
        return x
    ```

    ## References
    - Python language reference, "Full grammar specification".
    """

    code = "NN001"
    name = "syntax-error"
    severity = Severity.ERROR


class ModelNotConstructed(ToolRule):
    """## What it does
    Says that a top-level `nn.Module` subclass could not be built or given an example input
    automatically, so the graph and probe passes did not check it. The message shows the
    exact declaration that would fix it.

    ## Why is this bad?
    It is not a bug in your model; but the model's runtime behaviour (shapes, gradients,
    initial loss) went unchecked. Source rules still ran.

    ## Example
    ```python
    class Net(nn.Module):
        def __init__(self, backbone, num_classes): ...
    ```

    ## Use instead
    Declare how to build it, in the file (no nnlint import needed):
    ```python
    def nnlint_examples():
        return [{"model": Net(make_backbone(), 10), "inputs": torch.randn(8, 3, 32, 32)}]
    ```
    or in `pyproject.toml`:
    ```toml
    [[tool.nnlint.models]]
    target = "pkg/model.py:Net"
    kwargs = {num_classes = 10}
    inputs = [{shape = [8, 3, 32, 32]}]
    ```

    ## References
    - nnlint README, "Telling nnlint how to build a model".
    """

    code = "NN002"
    name = "model-not-constructed"
    severity = Severity.INFO


class ImportFailed(ToolRule):
    """## What it does
    Reports that importing the file raised; the message carries the exception and points
    at the line of your file where it was raised.

    ## Why is this bad?
    A file that fails to import cannot be used for training either; the graph and probe
    passes could not run.

    ## Example
    ```python
    import torch
    NUM = int("ten")
    ```

    ## Use instead
    ```python
    NUM = 10
    ```

    ## References
    - Python docs, "The import system".
    """

    code = "NN003"
    name = "import-failed"
    severity = Severity.ERROR


class TraceFallback(ToolRule):
    """## What it does
    Says that neither `torch.fx` nor `torch.export` (which follows Python control flow on
    concrete shapes, on fake tensors) could capture the model — typically a branch on the
    *values* of a tensor — and the graph rules ran on forward hooks instead, which see
    modules but not every operation. The message gives both tools' reasons.

    ## Why is this bad?
    It is not a bug. Some graph findings (dead computations between modules) are not
    available on the fallback.

    ## Example
    ```python
    def forward(self, x):
        if x.sum() > 0:
            return self.a(x)
        return self.b(x)
    ```

    ## Use instead
    Nothing to change; `torch.where` or `torch.cond` makes such code traceable if you want
    full graph checks.

    ## References
    - torch.fx documentation, "Limitations of Symbolic Tracing".
    - torch.export documentation, "Data-dependent control flow" (non-strict export).
    """

    code = "NN004"
    name = "trace-fallback"
    severity = Severity.INFO


class RunAborted(ToolRule):
    """## What it does
    Reports that building or running the model crashed its child process (segfault, out of
    memory, killed) or exceeded the time limit, and in which step (import, build, trace,
    forward, backward). nnlint itself keeps going with the other files.

    ## Why is this bad?
    A forward that hangs or crashes on a small random batch will do the same in training.

    ## Example
    ```python
    def forward(self, x):
        while True:
            x = self.layer(x)
    ```

    ## Use instead
    Make the loop terminate; raise `--timeout` if the model is merely slow.

    ## References
    - nnlint README, "Safe execution".
    """

    code = "NN005"
    name = "run-aborted"
    severity = Severity.ERROR


class ProbeSkipped(ToolRule):
    """## What it does
    Says that the model is too large for the probe's memory budget (its size measured on
    the meta device), so it was not run with real tensors; graph findings still stand.

    ## Why is this bad?
    It is not a bug: probe rules (NN3xx) did not run for this model.

    ## Example
    A 7B-parameter model on a machine with 24 GiB of memory.

    ## Use instead
    Probe a smaller configuration of the same architecture via `nnlint_examples()`, or
    raise `probe-memory-fraction` in `[tool.nnlint]`.

    ## References
    - nnlint README, "The probe".
    """

    code = "NN006"
    name = "probe-skipped"
    severity = Severity.INFO


class ImportEnvironment(ToolRule):
    """## What it does
    Says that importing the file failed because of the environment nnlint runs in, not
    because of a bug in the file: a package that is not installed where nnlint runs, an
    environment variable that a launcher such as `torchrun` sets, a data file, command-line
    arguments the file requires, or a download or write that nnlint refused. The message says
    what was missing and what would let nnlint check the file's models.

    ## Why is this bad?
    It is not a bug in your file: its models were not checked (the summary counts them as
    not checked). Source rules still ran. A bug raised at import (`int("ten")`) is NN003.

    ## Example
    ```python
    import os
    import gymnasium  # not installed in the pre-commit hook's environment
    WORLD_SIZE = int(os.environ["WORLD_SIZE"])  # set by torchrun
    ```

    ## Use instead
    Install the package where nnlint runs (for the pre-commit hook, list it in
    `additional_dependencies`), set the variable when running nnlint, or keep the script's
    work under `if __name__ == "__main__":` and declare how to build the models:
    ```python
    def nnlint_examples():
        return [{"model": Net(world_size=1), "inputs": torch.randn(8, 16)}]
    ```

    ## References
    - pre-commit documentation, "Config file: `additional_dependencies`".
    - PyTorch documentation, "torchrun (Elastic Launch)": environment variables.
    """

    code = "NN007"
    name = "import-environment"
    severity = Severity.INFO
