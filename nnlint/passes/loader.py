"""Find the models in a user's file, build them, and find an input for each.

Runs in the child process (``worker``), where importing user code is safe. Precedence,
first that applies to the file wins:

1. CLI: ``--model Name`` (+ ``--kwargs``, ``--input-shape``, ``--input-dtype``);
2. ``[[tool.nnlint.models]]`` entries whose ``target`` is this file;
3. the file's ``nnlint_examples()`` (dicts with ``nnlint.example.EXAMPLE_KEYS``, or Examples);
4. automatic: every top-level ``nn.Module`` subclass defined in the file that is not only a
   building block of another class there, nor a base class; built from its defaults, from
   the literal arguments of a call to it found in the file (``__main__`` block, test
   functions), or with a config dataclass whose fields all default (nanoGPT's
   ``GPT(GPTConfig())``). Its input comes from that call's tensor when there is one, from
   Lightning's ``example_input_array``, else from the first layer the forward uses.

Models are built on the meta device: building GPT-2-XL there costs ~0.3 GB instead of
6.4 GB (docs/MEASUREMENTS.md). ``Candidate.build`` can build them for real later (the
probe), once their measured size fits the budget.

This module only gathers the loader's public names; each job lives in its own module of
the graph package: ``user_import`` (importing the file), ``file_scan`` (what its source
says), ``candidates`` (which models, built how), ``specs`` (example-input specs),
``build`` (meta or real), ``infer_inputs`` (an input from the first layer) and ``hints``
(the NN002 declaration to paste).
"""

from nnlint.passes.graph.build import build_meta, build_real, to_meta
from nnlint.passes.graph.candidates import (
    DISCOVERY_NOTES,
    Candidate,
    auto_classes,
    auto_classes_in_source,
    class_line,
    examples_from,
    find_candidates,
    loss_from_name,
)
from nnlint.passes.graph.file_scan import FileFacts, scan_source
from nnlint.passes.graph.hints import declaration_hint
from nnlint.passes.graph.infer_inputs import (
    SEQ_LEN,
    InferResult,
    first_layers,
    forward_params,
    infer_inputs,
    search_fitting_sizes,
    try_forward,
)
from nnlint.passes.graph.literal_eval import LiteralEval
from nnlint.passes.graph.specs import (
    DTYPES,
    InputSpec,
    TensorSpec,
    spec_from_declared,
    spec_from_inputs,
    spec_from_value,
)
from nnlint.passes.graph.user_import import SLICES, ImportFailure, import_file

__all__ = [
    "DISCOVERY_NOTES",
    "DTYPES",
    "SEQ_LEN",
    "SLICES",
    "Candidate",
    "FileFacts",
    "ImportFailure",
    "InferResult",
    "InputSpec",
    "LiteralEval",
    "TensorSpec",
    "auto_classes",
    "auto_classes_in_source",
    "build_meta",
    "build_real",
    "class_line",
    "declaration_hint",
    "examples_from",
    "find_candidates",
    "first_layers",
    "forward_params",
    "import_file",
    "infer_inputs",
    "loss_from_name",
    "scan_source",
    "search_fitting_sizes",
    "spec_from_declared",
    "spec_from_inputs",
    "spec_from_value",
    "to_meta",
    "try_forward",
]
