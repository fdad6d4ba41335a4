"""A deterministic corpus of realistic PyTorch model files for benchmarks/static_speed.py.

Every file is assembled from parts the way real repositories look: a docstring, imports in
one of several styles and aliases, one to three model classes (MLPs, CNNs with residual
blocks, transformers, RNNs, autoencoders), weight-init and utility helpers, and often a
training/evaluation loop with a ``main()``. Files run 100-250 lines. A few planted bugs
(the ones nnlint's rules are about) appear at a low rate, as in real code.

    python benchmarks/gen_corpus.py OUT_DIR [--n 240] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import re
import textwrap
from pathlib import Path

GENERATOR_VERSION = 5  # bump when the output changes, so cached corpora are rebuilt


class Style:
    """Import spelling used by one file."""

    def __init__(self, rng: random.Random) -> None:
        self.nn = rng.choice(["nn", "nn", "nn", "tnn"])
        self.F = rng.choice(["F", "F", "F", "fn", None])
        self.torch = rng.choice(["torch", "torch", "torch", "th"])
        kind = rng.randrange(3)
        lines = ["import torch" if self.torch == "torch" else f"import torch as {self.torch}"]
        if self.nn == "nn":
            lines.append(["import torch.nn as nn", "from torch import nn", "import torch.nn as nn"][kind])
        else:
            lines.append("import torch.nn as tnn")
        if self.F:
            lines.append(["import torch.nn.functional as {F}", "from torch.nn import functional as {F}",
                          "import torch.nn.functional as {F}"][kind].format(F=self.F))
        self.imports = lines

    def sub(self, code: str) -> str:
        """Templates are written with nn./F./torch.; respell them for this file (not inside
        dotted names: torch.nn.init stays torch.nn.init)."""
        f = f"{self.F}." if self.F else f"{self.torch}.nn.functional."
        code = re.sub(r"(?<![\w.])F\.", f, code)
        code = re.sub(r"(?<![\w.])nn\.", f"{self.nn}.", code)
        return re.sub(r"(?<![\w.])torch\.", f"{self.torch}.", code)


def _act(rng: random.Random) -> tuple[str, str]:
    return rng.choice([("nn.ReLU()", "F.relu"), ("nn.GELU()", "F.gelu"), ("nn.SiLU()", "F.silu"),
                       ("nn.LeakyReLU(0.1)", "F.leaky_relu"), ("nn.ReLU(inplace=True)", "F.relu")])


def mlp(rng: random.Random, name: str, bug: bool) -> str:
    depth = rng.randint(2, 5)
    widths = [rng.choice([64, 128, 256, 512, 1024]) for _ in range(depth)]
    act_mod, act_f = _act(rng)
    p = rng.choice([0.1, 0.2, 0.3, 0.5])
    functional = rng.random() < 0.5
    norms = [rng.random() < 0.4 for _ in range(depth)]
    lines = [f"class {name}(nn.Module):",
             f'    """A {depth}-layer perceptron with {act_mod.split("(")[0].split(".")[-1]} and dropout {p}."""', "",
             "    def __init__(self, in_features: int = 784, num_classes: int = 10):",
             "        super().__init__()"]
    prev = "in_features"
    for i, w in enumerate(widths):
        lines.append(f"        self.fc{i} = nn.Linear({prev}, {w})")
        if norms[i]:
            lines.append(f"        self.norm{i} = nn.LayerNorm({w})")
        prev = str(w)
    lines.append(f"        self.head = nn.Linear({prev}, num_classes)")
    if not functional:
        lines.append(f"        self.drop = nn.Dropout({p})")
        lines.append(f"        self.act = {act_mod}")
    lines += ["", "    def forward(self, x):", "        x = x.flatten(1)"]
    for i in range(depth):
        pre = f"self.norm{i}(self.fc{i}(x))" if norms[i] else f"self.fc{i}(x)"
        if functional:
            lines.append(f"        x = {act_f}({pre})")
            training = "" if bug and i == depth - 1 else ", training=self.training"
            lines.append(f"        x = F.dropout(x, p={p}{training})")
        else:
            lines.append(f"        x = self.drop(self.act({pre}))")
    lines.append("        return self.head(x)")
    return "\n".join(lines)


def cnn(rng: random.Random, name: str, bug: bool) -> str:
    ch = rng.choice([16, 32, 64])
    stages = rng.randint(2, 4)
    act_mod, act_f = _act(rng)
    block = textwrap.dedent(
        f"""\
        class {name}Block(nn.Module):
            expansion = 1

            def __init__(self, c_in: int, c_out: int, stride: int = 1):
                super().__init__()
                self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)
                self.bn1 = nn.BatchNorm2d(c_out)
                self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=3, stride=1, padding=1, bias=False)
                self.bn2 = nn.BatchNorm2d(c_out)
                self.shortcut = nn.Sequential()
                if stride != 1 or c_in != c_out:
                    self.shortcut = nn.Sequential(
                        nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False),
                        nn.BatchNorm2d(c_out),
                    )

            def forward(self, x):
                out = {act_f}(self.bn1(self.conv1(x)))
                out = self.bn2(self.conv2({'x' if bug else 'out'}))
                out = out + self.shortcut(x)
                return {act_f}(out)
        """
    )
    body = [f"class {name}(nn.Module):", "    def __init__(self, num_classes: int = 10, in_channels: int = 3):",
            "        super().__init__()",
            f"        self.stem = nn.Sequential(nn.Conv2d(in_channels, {ch}, 3, padding=1, bias=False), "
            f"nn.BatchNorm2d({ch}), {act_mod})"]
    c = ch
    for s in range(stages):
        nxt = c * 2 if s else c
        stride = 1 if s == 0 else 2
        body.append(f"        self.layer{s + 1} = self._make_layer({c}, {nxt}, blocks={rng.randint(1, 3)}, stride={stride})")
        c = nxt
    body += [
        "        self.pool = nn.AdaptiveAvgPool2d((1, 1))",
        f"        self.fc = nn.Linear({c}, num_classes)",
        "",
        "    @staticmethod",
        "    def _make_layer(c_in, c_out, blocks, stride):",
        f"        layers = [{name}Block(c_in, c_out, stride)]",
        "        for _ in range(1, blocks):",
        f"            layers.append({name}Block(c_out, c_out))",
        "        return nn.Sequential(*layers)",
        "",
        "    def forward(self, x):",
        "        x = self.stem(x)",
    ]
    body += [f"        x = self.layer{s + 1}(x)" for s in range(stages)]
    body += ["        x = torch.flatten(self.pool(x), 1)", "        return self.fc(x)"]
    return block + "\n\n" + "\n".join(body)


def simple_cnn(rng: random.Random, name: str, bug: bool) -> str:
    c1, c2 = rng.choice([(6, 16), (32, 64), (16, 32)])
    act = "torch.sigmoid" if bug else rng.choice(["torch.relu", "F.relu"])
    head = "F.log_softmax(x, dim=1)" if rng.random() < 0.5 else "x"
    return textwrap.dedent(
        f"""\
        class {name}(nn.Module):
            \"\"\"LeNet-style network for 28x28 inputs.\"\"\"

            def __init__(self):
                super({name}, self).__init__()
                self.conv1 = nn.Conv2d(1, {c1}, 5, padding=2)
                self.conv2 = nn.Conv2d({c1}, {c2}, 5)
                self.pool = nn.MaxPool2d(2, 2)
                self.fc1 = nn.Linear({c2} * 5 * 5, 120)
                self.fc2 = nn.Linear(120, 84)
                self.fc3 = nn.Linear(84, 10)

            def forward(self, x):
                x = self.pool({act}(self.conv1(x)))
                x = self.pool({act}(self.conv2(x)))
                x = x.view(-1, {c2} * 5 * 5)
                x = {act}(self.fc1(x))
                x = {act}(self.fc2(x))
                x = self.fc3(x)
                return {head}
        """
    )


def transformer(rng: random.Random, name: str, bug: bool) -> str:
    d = rng.choice([128, 256, 384, 512])
    heads = rng.choice([4, 8])
    layers = rng.randint(2, 12)
    probs = "probs = F.softmax(logits, dim=-1)" if bug else "probs = logits"
    return textwrap.dedent(
        f"""\
        class {name}Attention(nn.Module):
            def __init__(self, d_model: int, n_head: int, dropout: float = 0.1, block_size: int = 256):
                super().__init__()
                assert d_model % n_head == 0, "d_model must be divisible by n_head"
                self.c_attn = nn.Linear(d_model, 3 * d_model)
                self.c_proj = nn.Linear(d_model, d_model)
                self.attn_dropout = nn.Dropout(dropout)
                self.resid_dropout = nn.Dropout(dropout)
                self.n_head = n_head
                self.d_model = d_model
                mask = torch.tril(torch.ones(block_size, block_size))
                self.register_buffer("bias", mask.view(1, 1, block_size, block_size))

            def forward(self, x):
                B, T, C = x.size()
                q, k, v = self.c_attn(x).split(self.d_model, dim=2)
                k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
                att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
                att = F.softmax(att, dim=-1)
                att = self.attn_dropout(att)
                y = att @ v
                y = y.transpose(1, 2).contiguous().view(B, T, C)
                return self.resid_dropout(self.c_proj(y))


        class {name}MLP(nn.Module):
            def __init__(self, d_model: int, dropout: float = 0.1):
                super().__init__()
                self.c_fc = nn.Linear(d_model, 4 * d_model)
                self.gelu = nn.GELU()
                self.c_proj = nn.Linear(4 * d_model, d_model)
                self.dropout = nn.Dropout(dropout)

            def forward(self, x):
                return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


        class {name}Block(nn.Module):
            def __init__(self, d_model: int, n_head: int, dropout: float = 0.1):
                super().__init__()
                self.ln_1 = nn.LayerNorm(d_model)
                self.attn = {name}Attention(d_model, n_head, dropout)
                self.ln_2 = nn.LayerNorm(d_model)
                self.mlp = {name}MLP(d_model, dropout)

            def forward(self, x):
                x = x + self.attn(self.ln_1(x))
                x = x + self.mlp(self.ln_2(x))
                return x


        class {name}(nn.Module):
            def __init__(self, vocab_size: int = 50257, block_size: int = 256, n_layer: int = {layers},
                         n_head: int = {heads}, d_model: int = {d}, dropout: float = 0.1):
                super().__init__()
                self.block_size = block_size
                self.wte = nn.Embedding(vocab_size, d_model)
                self.wpe = nn.Embedding(block_size, d_model)
                self.drop = nn.Dropout(dropout)
                self.h = nn.ModuleList([{name}Block(d_model, n_head, dropout) for _ in range(n_layer)])
                self.ln_f = nn.LayerNorm(d_model)
                self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
                self.wte.weight = self.lm_head.weight
                self.apply(self._init_weights)

            def _init_weights(self, module):
                if isinstance(module, nn.Linear):
                    torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                    if module.bias is not None:
                        torch.nn.init.zeros_(module.bias)
                elif isinstance(module, nn.Embedding):
                    torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

            def forward(self, idx, targets=None):
                b, t = idx.size()
                assert t <= self.block_size, f"sequence of length {{t}} exceeds block size {{self.block_size}}"
                pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
                x = self.drop(self.wte(idx) + self.wpe(pos))
                for block in self.h:
                    x = block(x)
                x = self.ln_f(x)
                logits = self.lm_head(x)
                loss = None
                if targets is not None:
                    {probs}
                    loss = F.cross_entropy(probs.view(-1, probs.size(-1)), targets.view(-1), ignore_index=-1)
                return logits, loss

            @torch.no_grad()
            def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k=None):
                for _ in range(max_new_tokens):
                    idx_cond = idx if idx.size(1) <= self.block_size else idx[:, -self.block_size:]
                    logits, _ = self(idx_cond)
                    logits = logits[:, -1, :] / temperature
                    if top_k is not None:
                        v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                        logits[logits < v[:, [-1]]] = -float("Inf")
                    probs = F.softmax(logits, dim=-1)
                    idx_next = torch.multinomial(probs, num_samples=1)
                    idx = torch.cat((idx, idx_next), dim=1)
                return idx
        """
    )


def rnn(rng: random.Random, name: str, bug: bool) -> str:
    cell = rng.choice(["LSTM", "GRU"])
    hidden = rng.choice([64, 128, 256])
    bidirectional = rng.choice([True, False])
    head = "nn.Linear(hidden, num_classes),\n            nn.Softmax(dim=1)," if bug else "nn.Linear(hidden, num_classes),"
    return textwrap.dedent(
        f"""\
        class {name}(nn.Module):
            def __init__(self, vocab_size: int = 20000, embed_dim: int = 128, hidden: int = {hidden},
                         num_classes: int = 2, bidirectional: bool = {bidirectional}):
                super().__init__()
                self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
                self.rnn = nn.{cell}(embed_dim, hidden, num_layers=2, batch_first=True, dropout=0.2,
                                   bidirectional=bidirectional)
                factor = 2 if bidirectional else 1
                self.classifier = nn.Sequential(
                    nn.Linear(hidden * factor, hidden),
                    nn.ReLU(),
                    nn.Dropout(0.3),
                    HEAD
                )

            def forward(self, tokens, lengths=None):
                emb = self.embedding(tokens)
                if lengths is not None:
                    emb = nn.utils.rnn.pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
                out, _ = self.rnn(emb)
                if lengths is not None:
                    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
                pooled = out.mean(dim=1)
                return self.classifier(pooled)
        """
    ).replace("HEAD", head)


def autoencoder(rng: random.Random, name: str, bug: bool) -> str:
    z = rng.choice([8, 16, 32])
    return textwrap.dedent(
        f"""\
        class {name}(nn.Module):
            \"\"\"Variational autoencoder for flattened 28x28 images.\"\"\"

            def __init__(self, latent: int = {z}):
                super().__init__()
                self.encoder = nn.Sequential(nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 200), nn.ReLU())
                self.mu = nn.Linear(200, latent)
                self.logvar = nn.Linear(200, latent)
                self.decoder = nn.Sequential(
                    nn.Linear(latent, 200), nn.ReLU(),
                    nn.Linear(200, 400), nn.ReLU(),
                    nn.Linear(400, 784), nn.Sigmoid(),
                )

            def reparameterize(self, mu, logvar):
                std = torch.exp(0.5 * logvar)
                eps = torch.randn_like(std)
                return mu + eps * std

            def forward(self, x):
                h = self.encoder(x.view(-1, 784))
                mu, logvar = self.mu(h), self.logvar(h)
                z = self.reparameterize(mu, logvar)
                return self.decoder(z), mu, logvar


        def {name.lower()}_loss(recon, x, mu, logvar):
            bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            return bce + kld
        """
    )


MODELS = [mlp, cnn, simple_cnn, transformer, rnn, autoencoder]


def training(rng: random.Random, model: str, bug: bool) -> str:
    opt = rng.choice(["torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)",
                      "torch.optim.Adam(model.parameters(), lr=args.lr)",
                      "torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)"])
    total = "loss" if bug and rng.random() < 0.5 else "loss.item()"
    shuffle = "False" if bug and rng.random() < 0.3 else "True"
    code = textwrap.dedent(
        f"""\
        def get_loaders(batch_size: int, n: int = 512):
            x = torch.randn(n, 1, 28, 28)
            y = torch.randint(0, 10, (n,))
            ds = TensorDataset(x, y)
            split = int(0.8 * n)
            train_ds, val_ds = torch.utils.data.random_split(ds, [split, n - split])
            return (DataLoader(train_ds, batch_size=batch_size, shuffle={shuffle}),
                    DataLoader(val_ds, batch_size=batch_size, shuffle=False))


        def train_one_epoch(model, loader, optimizer, criterion, device, epoch: int, log_every: int = 50):
            model.train()
            running = 0.0
            for step, (inputs, targets) in enumerate(loader):
                inputs, targets = inputs.to(device), targets.to(device)
                optimizer.zero_grad()
                outputs = model(inputs)
                loss = criterion(outputs, targets)
                loss.backward()
                optimizer.step()
                running += {total}
                if step % log_every == 0:
                    logger.info("epoch %d step %d loss %.4f", epoch, step, running / (step + 1))
            return running / max(1, len(loader))


        @torch.no_grad()
        def evaluate(model, loader, device):
            model.eval()
            correct = total = 0
            for inputs, targets in loader:
                inputs, targets = inputs.to(device), targets.to(device)
                preds = model(inputs).argmax(dim=1)
                correct += (preds == targets).sum().item()
                total += targets.numel()
            return correct / max(1, total)


        def main(argv=None):
            parser = argparse.ArgumentParser(description="train {model}")
            parser.add_argument("--epochs", type=int, default={rng.randint(2, 200)})
            parser.add_argument("--lr", type=float, default={rng.choice([0.1, 0.01, 3e-4, 1e-3])})
            parser.add_argument("--batch-size", type=int, default={rng.choice([32, 64, 128, 256])})
            parser.add_argument("--seed", type=int, default=0)
            parser.add_argument("--out", default="checkpoints")
            parser.add_argument("--resume", default=None)
            args = parser.parse_args(argv)
            torch.manual_seed(args.seed)
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            model = {model}().to(device)
            if args.resume:
                model.load_state_dict(torch.load(args.resume, map_location=device)["model"])
            optimizer = {opt}
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
            criterion = nn.CrossEntropyLoss()
            train_loader, val_loader = get_loaders(args.batch_size)
            best = 0.0
            os.makedirs(args.out, exist_ok=True)
            for epoch in range(args.epochs):
                loss = train_one_epoch(model, train_loader, optimizer, criterion, device, epoch)
                acc = evaluate(model, val_loader, device)
                scheduler.step()
                logger.info("epoch %d: loss %.4f val acc %.3f", epoch, loss, acc)
                if acc > best:
                    best = acc
                    torch.save({{"model": model.state_dict(), "epoch": epoch, "acc": acc}},
                               os.path.join(args.out, "best.pt"))
            return best


        if __name__ == "__main__":
            logging.basicConfig(level=logging.INFO)
            main()
        """
    )
    if bug and rng.random() < 0.5:  # the classic: gradients accumulate across steps
        code = code.replace("        optimizer.zero_grad()\n", "")
    return code


def utilities(rng: random.Random) -> str:
    return textwrap.dedent(
        f"""\
        @dataclass
        class Config:
            lr: float = {rng.choice([0.1, 0.001, 3e-4])}
            epochs: int = {rng.randint(1, 100)}
            batch_size: int = {rng.choice([16, 32, 64])}
            hidden: List[int] = field(default_factory=lambda: [{rng.randint(16, 512)}, {rng.randint(16, 512)}])


        def count_parameters(model) -> int:
            return sum(p.numel() for p in model.parameters() if p.requires_grad)


        def init_weights(module) -> None:
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0.0)
            elif isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        """
    )


def make_file(rng: random.Random, index: int, max_lines: int = 250) -> str:
    style = Style(rng)
    bug_rate = 0.15
    kinds = rng.sample(MODELS, k=rng.choice([1, 1, 2, 2, 3]))
    parts = []
    for kind in kinds:
        name = f"{kind.__name__.title().replace('_', '')}{index}"
        parts.append((kind, name, style.sub(kind(rng, name, rng.random() < bug_rate))))
    with_training = rng.random() < 0.7
    with_utils = rng.random() < 0.6
    train_bug = rng.random() < bug_rate
    title = rng.choice(["Models", "Networks", "Experiment", "Baseline"])
    utils = style.sub(utilities(rng))
    train_code = {}
    while True:
        names = [name for _, name, _ in parts]
        header = [f'"""{title} #{index}: {", ".join(names)}."""', "", "from __future__ import annotations", ""]
        imports = ["import argparse", "import logging", "import math", "import os",
                   "from dataclasses import dataclass, field", "from typing import List, Optional", "", *style.imports]
        trained = next((name for kind, name, _ in parts if kind is not transformer), None) if with_training else None
        if trained is not None:
            imports.append("from torch.utils.data import DataLoader, TensorDataset")
        body = ["", "logger = logging.getLogger(__name__)", "", ""]
        if with_utils:
            body += [utils, "", ""]
        body.append("\n\n\n".join(code for _, _, code in parts))
        if trained is not None:
            if trained not in train_code:
                train_code[trained] = style.sub(training(random.Random(index), trained, train_bug))
            body += ["", "", train_code[trained]]
        lines = "\n".join(header + imports + body).splitlines()
        if len(lines) <= max_lines:
            break
        if len(parts) > 1:
            parts.pop()
        elif with_utils:
            with_utils = False
        elif with_training:
            with_training = False
        else:
            break
    k = 0
    while len(lines) < 100:  # pad short files with one more helper model
        k += 1
        lines += ["", ""] + style.sub(autoencoder(rng, f"Extra{index}x{k}", False)).splitlines()
    return "\n".join(lines) + "\n"


def generate(out: Path, n: int = 240, seed: int = 0) -> list[Path]:
    """Write ``n`` files into ``out`` (created) and return their paths. Deterministic for
    a given (n, seed, GENERATOR_VERSION); an up-to-date corpus is reused."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / ".generated"
    key = f"{GENERATOR_VERSION} {n} {seed}\n"
    paths = [out / f"model_{i:04d}.py" for i in range(n)]
    if stamp.exists() and stamp.read_text() == key and all(p.exists() for p in paths):
        return paths
    for old in out.glob("model_*.py"):
        old.unlink()
    rng = random.Random(seed)
    for i, path in enumerate(paths):
        path.write_text(make_file(random.Random(rng.getrandbits(64)), i), encoding="utf-8")
    stamp.write_text(key)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=240)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    paths = generate(args.out, args.n, args.seed)
    lines = sum(p.read_text().count("\n") for p in paths)
    print(f"{len(paths)} files, {lines} lines in {args.out}")


if __name__ == "__main__":
    main()
