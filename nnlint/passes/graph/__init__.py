"""The graph pass: trace a model, propagate shapes, run the graph rules on one context.

One job per module: ``capture`` chooses the capture (``capture_fx``, ``capture_export``,
``capture_eager``; ``tensors``/``inputs``/``errors``/``state`` serve them), ``lines`` maps
frames to the user's file, ``source_facts`` reads the file's source, ``ownership`` drops
findings about library code, ``info`` reports sizes, ``run`` builds the context
(``nnlint.contexts.graph.GraphContext``) and runs the rules through ``nnlint.findings``
(``spans`` is the graph's own way of placing a finding on the user's line).

Tracing: ``torch.fx`` symbolic tracing first; every node gets the line of the user's file
it came from (read from the live frames when fx creates the node: fx's own
``record_stack_traces`` symbolizes through torch._inductor, a 1.5 s import per process).
Many real models cannot be traced that way (docs/MEASUREMENTS.md: nanoGPT's
``assert t <= block_size`` on a traced size): those go through ``torch.export(strict=False)``
(``capture_export``: Python control flow runs on fake tensors with concrete sizes; every
node keeps ``nn_module_stack`` and ``stack_trace``), converted to the same graph. Only
when that fails too (a branch on tensor values), the fallback runs the model eagerly
under forward hooks (one node per torch.nn leaf
module call) and a ``TorchFunctionMode`` recorder (one node per torch function or tensor
method called between modules, with its user line). Both produce the same ``GNode`` graph,
so every graph rule works on either; NN004 says when the fallback ran. Python control flow
on sizes is no problem for the eager run: sizes are concrete.

Shapes: large models are built on the meta device (``loader``/``worker``), so the forward
runs on meta tensors: shapes and dtypes are real, no weight or activation memory is
allocated (GPT-2-XL: ~0.3 GB instead of 6.4 GB). Small models (<= 256 MB of weights) run
on real CPU tensors instead: the meta device's first pointwise op imports torch._dynamo
(~2.5 s per process), far more than a small model's forward. Ops without a meta kernel or
that need data (``.item()``, boolean masks) end a meta forward with
``Failure.kind == "meta"``; the worker then retries on real tensors when the model fits
the memory budget. (``make_fx`` under ``FakeTensorMode`` would trace the same programs;
the eager recorder keeps module boundaries and ``F.*`` calls as the user wrote them,
which is what the rules reason about.)

Rules get a ``GraphContext``; a rule never traces or runs anything itself.
"""

from nnlint.contexts.graph import (
    Failure,
    GNode,
    GraphContext,
    Trace,
    describe_module,
    expected_input,
    is_leaf,
    short_shape,
)
from nnlint.passes.graph.capture import capture
from nnlint.passes.graph.capture_eager import trace_eager
from nnlint.passes.graph.capture_fx import trace_fx
from nnlint.passes.graph.errors import classify_error
from nnlint.passes.graph.info import infer_classes, model_info, unused_modules
from nnlint.passes.graph.inputs import bind_inputs, split_inputs
from nnlint.passes.graph.lines import UserFile
from nnlint.passes.graph.run import build_context, run_graph, run_rules
from nnlint.passes.graph.source_facts import SourceFacts
from nnlint.passes.graph.spans import related_line, span_of
from nnlint.passes.graph.state import preserved

__all__ = [
    "Failure",
    "GNode",
    "GraphContext",
    "SourceFacts",
    "Trace",
    "UserFile",
    "bind_inputs",
    "build_context",
    "capture",
    "classify_error",
    "describe_module",
    "expected_input",
    "infer_classes",
    "is_leaf",
    "model_info",
    "preserved",
    "related_line",
    "run_graph",
    "run_rules",
    "short_shape",
    "span_of",
    "split_inputs",
    "trace_eager",
    "trace_fx",
    "unused_modules",
]
