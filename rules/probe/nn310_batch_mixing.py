from __future__ import annotations

from collections.abc import Iterator

from nnlint.contexts.probe import Extra, JacobianDim, ProbeContext
from nnlint.diagnostics import Severity
from nnlint.rule import Finding, Invalid, ProbeRule, Valid

from .common import fmt


class BatchMixing(ProbeRule):
    """## What it does
    In eval mode, backpropagates one sample's output to the whole input batch and fires
    when the gradient reaches other samples: output i depends on input j ≠ i. Measured in
    eval mode (so BatchNorm, which mixes the batch in train mode by design, does not count;
    models with BatchNorm layers that keep no running statistics use batch statistics even in
    eval mode, and are not judged). Token inputs have no gradient: there it changes the tokens
    of one input sample (to other ids the input already holds) and measures how much the other
    output samples move, along the user's own input axes.
    When the first input dimension does mix
    but a later one does not (sequence-first models, `(T, B, ...)`), that later one is taken
    as the batch — unless the tokens' dim 0 reaches a `transformers` model (batch-first by
    contract: `input_ids` is `(batch, seq)`) on another axis: that model then reads the batch as
    its sequence, and the finding is at the user's line that calls it. (Like the rest of the
    probe, this reads dim 0 of the example's inputs as the batch: a file whose examples really
    are `(seq, batch)` tokens, transposed for a transformers model, is reported too.) Outputs that compare samples by design (a B×B similarity matrix, as in
    contrastive heads) are not reported, nor are whole-graph models (node features beside an
    (N, N) adjacency matrix or a (2, E) integer edge index: dim 0 is the node axis, and
    nodes mix by design). When it fires, the probe names the first
    `view`/`reshape` that moved the batch dimension.

    ## Why is this bad?
    A model whose prediction for one sample depends on the other samples in the batch
    trains on leaked information and behaves differently at batch size 1. The usual cause
    is a `view`/`reshape` used where a `transpose`/`permute` was meant, which silently
    reinterprets memory across samples — no error, no crash.

    ## Example
    ```python
    x = self.embed(x)                        # (B, T, H)
    x = x.view(x.size(1), x.size(0), -1)     # meant (T, B, H): mixes samples
    out, _ = self.rnn(x)
    ```

    ## Use instead
    ```python
    x = x.transpose(0, 1)                    # or nn.GRU(..., batch_first=True)
    ```

    ## References
    - Karpathy, "A Recipe for Training Neural Networks" (2019): "use backprop to chart
      dependencies ... set the loss to be something trivial like the sum of all outputs of
      example i ... ensure that you get a non-zero gradient only on the i-th input".
    - "37 Reasons why your Neural Network is not working" (Slav Ivanov), #8 "view vs
      transpose".
    """

    code = "NN310"
    name = "batch-mixing"
    severity = Severity.ERROR
    supersedes = ("NN209",)  # at a view/reshape line both describe the same scrambled axes
    needs = frozenset({Extra.BATCH_JACOBIAN})
    thresholds = {"rtol": 1e-6, "token_rtol": 1e-4, "token_noise": 1e-5}

    VALID = [
        Valid(
            """
            import torch
            import torch.nn as nn

            class GCN(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.lin1 = nn.Linear(16, 32)
                    self.lin2 = nn.Linear(32, 5)

                def forward(self, h, adj):
                    h = torch.relu(adj @ self.lin1(h))
                    return torch.log_softmax(adj @ self.lin2(h), dim=1)

            def nnlint_examples():
                adj = (torch.rand(20, 20) > 0.7).float() + torch.eye(20)
                return [{"model": GCN(), "inputs": (torch.randn(20, 16), adj / adj.sum(1, keepdim=True))}]
            """,
            note="a full-graph GNN: dim 0 is the node axis and nodes mix through the adjacency matrix",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 32)
                    self.bn = nn.BatchNorm1d(32, track_running_stats=False)
                    self.fc2 = nn.Linear(32, 10)

                def forward(self, x):
                    return self.fc2(torch.relu(self.bn(self.fc1(x))))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            note="BatchNorm without running stats uses batch statistics in eval mode too",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(3, 8, 3, padding=1)
                    self.bn = nn.BatchNorm2d(8)
                    self.fc = nn.Linear(8, 10)

                def forward(self, x):
                    return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(4, 3, 8, 8)}]
            """,
            note="BatchNorm mixes the batch only in train mode",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class CLIPHead(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.img = nn.Linear(32, 16)
                    self.txt = nn.Linear(24, 16)

                def forward(self, image, text):
                    a = F.normalize(self.img(image), dim=-1)
                    b = F.normalize(self.txt(text), dim=-1)
                    return a @ b.t() / 0.07

            def nnlint_examples():
                return [{"model": CLIPHead(), "inputs": (torch.randn(8, 32), torch.randn(8, 24))}]
            """,
            note="contrastive logits compare every pair of samples by design",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class SeqFirst(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.rnn = nn.GRU(16, 32)
                    self.fc = nn.Linear(32, 5)

                def forward(self, x):
                    out, _ = self.rnn(x)
                    return self.fc(out)

            def nnlint_examples():
                return [{"model": SeqFirst(), "inputs": torch.randn(12, 6, 16)}]
            """,
            note="(T, B, F) input: dim 0 is time, which an RNN mixes on purpose",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Seq(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.embed = nn.Linear(16, 32)
                    self.rnn = nn.GRU(32, 32)
                    self.fc = nn.Linear(32, 5)

                def forward(self, x):
                    x = self.embed(x).transpose(0, 1)
                    out, _ = self.rnn(x)
                    return self.fc(out[-1])

            def nnlint_examples():
                return [{"model": Seq(), "inputs": torch.randn(8, 12, 16)}]
            """,
            note="transpose, not view",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class LM(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.embed = nn.Embedding(50, 32)
                    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0)
                    self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
                    self.head = nn.Linear(32, 50)

                def forward(self, tokens):  # tokens: (seq, batch)
                    return self.head(self.encoder(self.embed(tokens)))

            def nnlint_examples():
                return [{"model": LM(), "inputs": torch.randint(0, 50, (12, 4))}]
            """,
            note="a sequence-first TransformerEncoder (no batch_first) fed (seq, batch) tokens, as it expects",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn
            from transformers import BertConfig, BertModel

            class Tagger(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.encoder = BertModel(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                                                        num_attention_heads=2, intermediate_size=37,
                                                        max_position_embeddings=64))
                    self.head = nn.Linear(32, 5)

                def forward(self, tokens):  # tokens: (batch, seq)
                    hidden = self.encoder(input_ids=tokens).last_hidden_state
                    return self.head(hidden)

            def nnlint_examples():
                return [{"model": Tagger(), "inputs": torch.randint(0, 99, (4, 16))}]
            """,
            note="a transformers encoder fed (batch, seq) tokens, as it expects",
        ),
        Valid(
            """
            import torch
            import torch.nn as nn

            class Tagger(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.rnn = nn.LSTM(16, 32, batch_first=True)
                    self.head = nn.Linear(32, 5)

                def forward(self, x):  # x: (batch, seq, 16)
                    out, _ = self.rnn(x)
                    return self.head(out[:, -1])

            def nnlint_examples():
                return [{"model": Tagger(), "inputs": torch.randn(4, 10, 16)}]
            """,
            note="the same LSTM built with batch_first=True",
        ),
    ]
    INVALID = [
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Seq(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.embed = nn.Linear(16, 32)
                    self.rnn = nn.GRU(32, 32)
                    self.fc = nn.Linear(32, 5)

                def forward(self, x):
                    x = self.embed(x)
                    x = x.view(x.size(1), x.size(0), -1)
                    out, _ = self.rnn(x)
                    return self.fc(out[-1])

            def nnlint_examples():
                return [{"model": Seq(), "inputs": torch.randn(8, 12, 16)}]
            """,
            line=13,
            contains="view",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1 = nn.Linear(20, 32)
                    self.fc2 = nn.Linear(32, 10)

                def forward(self, x):
                    h = torch.relu(self.fc1(x))
                    h = h - h.mean(0)
                    return self.fc2(h)

            def nnlint_examples():
                return [{"model": Net(), "inputs": torch.randn(8, 20)}]
            """,
            line=4,
            contains="sample",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn

            class Tagger(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.rnn = nn.LSTM(16, 32)
                    self.head = nn.Linear(32, 5)

                def forward(self, x):  # x: (batch, seq, 16)
                    out, _ = self.rnn(x)
                    return self.head(out[:, -1])

            def nnlint_examples():
                return [{"model": Tagger(), "inputs": torch.randn(4, 10, 16)}]
            """,
            line=7,
            contains="batch_first",
        ),
        Invalid(
            """
            import torch
            import torch.nn as nn
            from transformers import BertConfig, BertModel

            class Tagger(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.encoder = BertModel(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                                                        num_attention_heads=2, intermediate_size=37,
                                                        max_position_embeddings=64))
                    self.head = nn.Linear(32, 5)

                def forward(self, tokens):  # tokens: (batch, seq)
                    hidden = self.encoder(input_ids=tokens.t()).last_hidden_state  # BERT reads (batch, seq)
                    return self.head(hidden.transpose(0, 1))

            def nnlint_examples():
                return [{"model": Tagger(), "inputs": torch.randint(0, 99, (4, 16))}]
            """,
            line=14,
            contains="BertModel",
            note="a transformers encoder fed (seq, batch): it attends across the user's batch",
        ),
    ]

    def check(self, ctx: ProbeContext) -> Iterator[Finding]:
        jac = ctx.batch_jacobian
        if not jac or not jac.get("measured") or ctx.batch_stat_layers:
            return  # BatchNorm without running stats normalizes over the batch even in eval mode
        dims = jac.get("dims") or []
        if not dims:
            return
        tokens = jac.get("wrt") == "tokens"

        def mixes(r: JacobianDim) -> bool:
            if tokens:  # a change of the output, measured in float32: round-off is not mixing
                floor = max(
                    self.threshold["token_rtol"] * r["self_change"], self.threshold["token_noise"] * r["output_scale"]
                )
                return r["other_change"] > floor and r["other_change"] > 0
            return r["other_grad"] > self.threshold["rtol"] * max(r["self_grad"], 0.0) and r["other_grad"] > 0

        pivot = jac.get("pivot") if tokens else None
        if not all(mixes(r) for r in dims):
            # some dimension is a clean batch dimension (a sequence-first model), unless dim 0
            # mixes because a batch-first library model was handed it as its sequence
            if not (pivot and dims[0]["input_dim"] == 0 and mixes(dims[0])):
                return
        if any(r["similarity_dims"] for r in dims):
            return  # a B×B output: similarity / contrastive logits
        if _graph_inputs(ctx.input_shapes):
            return  # a whole graph: dim 0 is the node axis, and nodes mix by design
        r = dims[0]
        view = jac.get("view") or {}
        where = ""
        line = None
        module = None
        if view.get("line"):
            line = view["line"]
            where = (
                f"; the {view['op']} at line {line} turns shape {tuple(view['from_shape'])} into "
                f"{tuple(view['to_shape'])} — use transpose/permute to reorder dimensions"
            )
            module = view.get("module") or None
        elif pivot:
            line, module = pivot["line"], pivot["module"]
            where = (
                f"; {pivot['module']} ({pivot['type']}) receives the input's dim 0, the batch, on dim "
                f"{pivot['axis']} of its input {tuple(pivot['shape'])}, but a transformers model takes the "
                "batch on dim 0 and mixes the other dims — pass it (batch, ...) without transposing"
            )
        elif view:
            module = view.get("module") or None
        if line is None and module is None:
            seq_first = _seq_first_module(ctx.model)
            if seq_first is not None:
                module = seq_first[0]
                where = (
                    f"; {seq_first[0]} = {seq_first[1]} is built without batch_first=True, so it reads dim 0 "
                    "as the sequence and attends/recurs across the batch — pass batch_first=True or feed it "
                    "(seq, batch, features)"
                )
        hint = where or " — look for a view/reshape across the batch dimension or a reduction over dim 0"
        if tokens:
            what = (
                f"changing the tokens of input sample {r['sample']} changes output sample {r['other_sample']} by "
                f"{fmt(r['other_change'])} (vs {fmt(r['self_change'])} for its own output; "
                f"{r['mixed_samples']} other samples involved)"
            )
        else:
            wrt = "input" if jac.get("wrt") == "input" else "embedding output"
            what = (
                f"output sample {r['sample']} has a gradient of {fmt(r['other_grad'])} w.r.t. {wrt} sample "
                f"{r['other_sample']} (vs {fmt(r['self_grad'])} w.r.t. its own; {r['mixed_samples']} other samples involved)"
            )
        yield Finding(
            f"samples mix across the batch (eval mode): {what}{hint}",
            module=module if line is None else (module or None),
            line=line,
            evidence={
                "dims": dims,
                "wrt": jac.get("wrt"),
                "view": view or None,
                **({"pivot": pivot} if tokens else {}),
            },
        )


def _graph_inputs(shapes: list[tuple[tuple[int, ...], str]]) -> bool:
    """Node features with an adjacency matrix (N, N) or an edge index (2, E) of integers
    beside them: a full-graph model (GCN, GAT), not a batch of independent samples."""
    if len(shapes) < 2 or not shapes[0][0]:
        return False
    n = shapes[0][0][0]
    for shape, dtype in shapes[1:]:
        if len(shape) >= 2 and shape[0] == shape[1] == n:
            return True
        if len(shape) == 2 and shape[0] == 2 and ("int" in dtype):
            return True
    return False


#: torch.nn layers that read (seq, batch, features) unless built with batch_first=True
_SEQ_FIRST = (
    "RNN",
    "LSTM",
    "GRU",
    "MultiheadAttention",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerDecoder",
    "Transformer",
)


def _seq_first_module(model) -> tuple[str, str] | None:
    """(qualified path, class name) of the outermost sequence layer built without
    batch_first=True, None when there is none."""
    if model is None:
        return None
    for q, mod in model.named_modules():
        name = type(mod).__name__
        if not q or name not in _SEQ_FIRST or not type(mod).__module__.startswith("torch.nn"):
            continue
        flags = [getattr(m, "batch_first", None) for m in mod.modules()]
        flags = [f for f in flags if f is not None]
        if flags and not any(flags):
            return q, name
    return None
