"""Hypothesis: the source pass never raises and no source rule crashes, whatever the file.

Inputs are real-looking model code (every source rule's VALID/INVALID examples, the seed
fixtures, a few hand-written models and generated ones) mutated the way half-edited files
look: lines deleted, duplicated, swapped, re-indented or truncated, tokens and odd unicode
inserted. A file that does not parse must come back as NN001 from the engine's worker,
never as an exception.

On CI (``CI`` set) the examples are derandomized so that a run is reproducible.
"""

from __future__ import annotations

import json
import os
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from nnlint import engine, registry
from nnlint.passes import source

ROOT = Path(__file__).resolve().parent.parent
SOURCE_RULES = {code: rule for code, rule in registry.all_rules().items() if rule.pass_ == "source"}
CODES = list(SOURCE_RULES)

settings.register_profile(
    "nnlint-robustness", max_examples=150, deadline=None, derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HAND_WRITTEN = [
    '''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.utils.data import DataLoader


    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.short = nn.Sequential() if stride == 1 else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride), nn.BatchNorm2d(c_out))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += self.short(x)
            return F.relu(out)


    class Net(nn.Module):
        def __init__(self, num_classes=10):
            super().__init__()
            self.layers = nn.ModuleList([Block(3, 16), Block(16, 32, 2)])
            self.head = nn.Linear(32, num_classes)
            self.drop = nn.Dropout(0.2)

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            x = F.adaptive_avg_pool2d(x, 1).flatten(1)
            return self.head(self.drop(x))


    def train(model, loader: DataLoader, epochs: int = 2):
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        criterion = nn.CrossEntropyLoss()
        model.train()
        for epoch in range(epochs):
            total = 0.0
            for x, y in loader:
                opt.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                opt.step()
                total += loss.item()
        return total
    ''',
    '''
    import math
    from torch import nn
    from torch.nn import functional as fn


    class Attention(nn.Module):
        def __init__(self, d, heads=4, p=0.1):
            super().__init__()
            assert d % heads == 0
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.heads, self.p = heads, p

        def forward(self, x, mask=None):
            b, t, d = x.shape
            q, k, v = self.qkv(x).split(d, dim=-1)
            q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
            if mask is not None:
                att = att.masked_fill(mask == 0, float("-inf"))
            att = fn.dropout(fn.softmax(att, dim=-1), self.p, self.training)
            y = (att @ v).transpose(1, 2).contiguous().view(b, t, d)
            return self.proj(y)


    class GPT(nn.Module):
        def __init__(self, vocab=100, d=64, n=2):
            super().__init__()
            self.emb = nn.Embedding(vocab, d)
            self.blocks = nn.Sequential(*[Attention(d) for _ in range(n)])
            self.ln = nn.LayerNorm(d)
            self.lm_head = nn.Linear(d, vocab, bias=False)
            self.apply(self._init)

        def _init(self, m):
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

        def forward(self, idx, targets=None):
            x = self.ln(self.blocks(self.emb(idx)))
            logits = self.lm_head(x)
            loss = None if targets is None else fn.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
            return logits, loss
    ''',
    '''
    import torch as th
    import torch.nn as tnn
    import pytorch_lightning as pl


    @th.no_grad()
    def evaluate(model, batches):
        model.eval()
        return sum((model(x).argmax(-1) == y).float().mean().item() for x, y in batches) / max(len(batches), 1)


    class Lit(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = tnn.Sequential(tnn.Flatten(), tnn.Linear(784, 256), tnn.Sigmoid(), tnn.Linear(256, 10), tnn.Softmax(dim=1))
            self.loss_fn = tnn.CrossEntropyLoss()

        def training_step(self, batch, batch_idx):
            x, y = batch
            probs = self.net(x)
            loss = self.loss_fn(probs, y)
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):
            return th.optim.Adam(self.parameters(), lr=1e-3)

    if __name__ == "__main__":
        match th.cuda.is_available():
            case True:
                dev = "cuda"
            case _:
                dev = "cpu"
        print(f"{dev=}", (n := 3), [*range(n)], {**{"a": 1}}, lambda *a, **k: (a, k))
    ''',
]


def _seeds() -> list[str]:
    seeds = [textwrap.dedent(s).lstrip("\n") for s in HAND_WRITTEN]
    for rule in SOURCE_RULES.values():
        for ex in [*rule.valid_examples(), *rule.INVALID]:
            seeds.append(textwrap.dedent(ex.source).lstrip("\n"))
    fixtures = ROOT / "fixtures"
    if fixtures.is_dir():
        seeds.extend(p.read_text(encoding="utf-8", errors="replace") for p in sorted(fixtures.rglob("*.py")))
    return seeds


SEEDS = _seeds()

TOKENS = [
    "(", ")", "[", "]", "{", "}", ":", ",", ".", "=", "==", "->", "**", "*", "@", "\\", "\\\n", "'", '"', '"""',
    "#", "# noqa", "# noqa: NN1", "# nnlint: noqa", "\t", "    ", "\n", "\r\n", "\r", "\x0c", ";", "...",
    "def", "class", "self", "return", "yield", "lambda", "async", "await", "with", "for", "while", "if", "else:",
    "global x", "nonlocal y", "del", "import torch", "import torch.nn as nn", "from torch import nn",
    "from torch.nn import functional as F", "nn.Module", "nn.Sequential(", "nn.Linear(3, 4)", "nn.Softmax(dim=1)",
    "F.dropout(x, 0.5)", "F.softmax(x, -1)", "torch.sigmoid(", "super().__init__()", "self.fc = nn.Linear(1, 2)",
    "loss.backward()", "optimizer.step()", "optimizer.zero_grad()", "model.eval()", "model.train()",
    "nn.CrossEntropyLoss()(", "nn.BCELoss()", "for x, y in loader:", "def forward(self, x):", "torch.manual_seed(0)",
    "é", "𝔁", "\u200b", "\u2028", "\ufeff", "ñ = 1", "变量", "🔥", "\u0301",
]


@st.composite
def mutated_source(draw) -> str:
    lines = draw(st.sampled_from(SEEDS)).splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "indent", "dedent", "truncate",
                                   "replace", "join"]))
        n = len(lines)
        if n == 0:
            lines = [draw(st.sampled_from(TOKENS))]
            continue
        i = draw(st.integers(0, n - 1))
        j = draw(st.integers(i, min(n, i + 5)))
        if op == "delete":
            del lines[i:j]
        elif op == "duplicate":
            lines[i:i] = lines[i:j]
        elif op == "swap":
            k = draw(st.integers(0, n - 1))
            lines[i], lines[k] = lines[k], lines[i]
        elif op == "insert":
            line = lines[i]
            pos = draw(st.integers(0, len(line)))
            token = draw(st.sampled_from(TOKENS) | st.text(max_size=6))
            lines[i] = line[:pos] + token + line[pos:]
        elif op == "indent":
            lines[i:j] = ["    " + x for x in lines[i:j]]
        elif op == "dedent":
            lines[i:j] = [x[draw(st.integers(1, 4)):] if x.startswith(" ") else x for x in lines[i:j]]
        elif op == "truncate":
            text = "".join(lines)
            lines = [text[: draw(st.integers(0, len(text)))]]
        elif op == "replace":
            old, new = draw(st.sampled_from([
                ("self", "cls"), ("forward", "__call__"), ("nn.Module", "object"), ("nn.", "torch.nn."),
                ("torch.nn", "nn"), ("F.", "torch.nn.functional."), ("(", ""), (")", ""), (":", ""),
                ("training=self.training", "training=True"), ("x", "x.x"), ("=", "=="), ("def ", "async def "),
            ]))
            lines[i] = lines[i].replace(old, new)
        elif op == "join":
            lines[i:j] = ["".join(x.rstrip("\r\n") + "; " for x in lines[i:j]) + "\n"]
    return "".join(lines)


NAMES = ["nn", "tnn", "torchnn"]
LAYERS = ["nn.Linear(8, 8)", "nn.Conv2d(3, 8, 3)", "nn.BatchNorm2d(8)", "nn.ReLU()", "nn.Sigmoid()", "nn.Tanh()",
          "nn.Dropout(0.5)", "nn.Softmax(dim=1)", "nn.LogSoftmax(dim=-1)", "nn.LayerNorm(8)", "nn.Identity()",
          "nn.Embedding(10, 8)", "nn.LSTM(8, 8)", "nn.Flatten()"]
CALLS = ["F.relu({x})", "F.dropout({x}, 0.5)", "F.dropout({x}, p=0.1, training=self.training)", "torch.sigmoid({x})",
         "F.softmax({x}, dim=1)", "self.{a}({x})", "{x}.view({x}.size(0), -1)", "self.{a}({x}) + {x}",
         "torch.cat([{x}, {x}], 1)", "{x}.log_softmax(-1)", "self.{a}[0]({x})"]


@st.composite
def generated_source(draw) -> str:
    """A model file assembled from parts: imports with random aliases, one or two
    module classes, and sometimes a training loop."""
    alias = draw(st.sampled_from(NAMES))
    out = ["import torch", f"import torch.nn as {alias}", "import torch.nn.functional as F", ""]
    for c in range(draw(st.integers(1, 2))):
        attrs = [f"l{i}" for i in range(draw(st.integers(1, 5)))]
        out += [f"class M{c}({alias}.Module):", "    def __init__(self):", "        super().__init__()"]
        for a in attrs:
            layer = draw(st.sampled_from(LAYERS)).replace("nn.", f"{alias}.")
            if draw(st.booleans()):
                layer = f"{alias}.Sequential({layer}, {draw(st.sampled_from(LAYERS)).replace('nn.', alias + '.')})"
            out.append(f"        self.{a} = {layer}")
        out += ["", "    def forward(self, x):"]
        for _ in range(draw(st.integers(1, 6))):
            call = draw(st.sampled_from(CALLS)).format(x="x", a=draw(st.sampled_from(attrs)))
            out.append(f"        x = {call}")
        out += ["        return x", ""]
    if draw(st.booleans()):
        out += ["def train(model, loader, opt):", "    crit = nn.CrossEntropyLoss()".replace("nn.", f"{alias}."),
                "    for x, y in loader:"]
        steps = draw(st.permutations(["opt.zero_grad()", "loss = crit(model(x), y)", "loss.backward()", "opt.step()"]))
        out += [f"        {s}" for s in steps]
        if draw(st.booleans()):
            out.append("        total = total + loss")
    return "\n".join(out) + "\n"


def rules():
    return [r() for r in SOURCE_RULES.values()]


def check_source_pass(text: str) -> None:
    try:
        diags, crashes = source.run("fuzz.py", text, rules())
    except (source.SyntaxIssue, SyntaxError):  # SyntaxError: libcst's CSTValidationError (bad identifier)
        return
    assert not crashes, "\n".join(
        c.describe("fuzz.py") for c in crashes
    ) + "\n--- input ---\n" + text
    n_lines = max(1, text.count("\n") + 1)
    for d in diags:
        assert d.code in SOURCE_RULES
        assert 1 <= d.line <= n_lines + 1, (d, text)
        json.dumps(d.to_dict(), allow_nan=False)


_TMP = tempfile.TemporaryDirectory(prefix="nnlint-fuzz-")


def check_worker(text: str) -> None:
    path = str(Path(_TMP.name) / "fuzz.py")
    Path(path).write_bytes(text.encode("utf-8", errors="surrogatepass"))
    diags, errors, _ = engine._lint_one(path, CODES, {})
    assert not errors, "\n".join(errors) + "\n--- input ---\n" + text
    try:
        compile(text, "fuzz.py", "exec", dont_inherit=True, flags=0x400)
    except SyntaxError:
        if "\0" not in text:
            assert any(d["code"] == "NN001" for d in diags), "CPython rejects this file but nnlint said nothing:\n" + text
    except ValueError:  # NUL bytes
        assert any(d["code"] == "NN001" for d in diags)


@settings(settings.get_profile("nnlint-robustness"))
@given(mutated_source())
@example("")
@example("\ufeff")
@example("import torch\n" + "(" * 300 + ")" * 300 + "\n")
@example("import torch\nclass A(nn.Module):\n    def forward(self, x):\n        return F.dropout(\n")
@example("import torch\nx = '\\\n")
@example("import torch.nn as nn\n\U00013460\nclass A(nn.Module):\n    pass\n")
def test_source_pass_survives_mutated_models(text):
    check_source_pass(text)


@settings(settings.get_profile("nnlint-robustness"))
@given(mutated_source())
@example("import torch\n\x00\n")
@example("import torch\ndef f(:\n")
@example("import torch\nif True:\n  x = 1\n    y = 2\n")
@example("import torch\n" + "x = " + "[" * 500 + "]" * 500 + "\n")
@example("import torch.nn as nn\n\U00013460\n")
def test_engine_worker_survives_mutated_models(text):
    check_worker(text)


@settings(settings.get_profile("nnlint-robustness"))
@given(generated_source())
def test_generated_models(text):
    compile(text, "gen.py", "exec")  # the generator makes valid Python
    check_source_pass(text)
    check_worker(text)


@settings(settings.get_profile("nnlint-robustness"), max_examples=50)
@given(st.text(max_size=300))
def test_arbitrary_text(text):
    assume("\0" not in text)
    check_source_pass("import torch\n" + text)
    check_worker("import torch\n" + text)


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_every_seed_is_linted_without_crashes(seed):
    check_source_pass(SEEDS[seed])
    check_worker(SEEDS[seed])
