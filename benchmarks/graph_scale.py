"""Shape-check billion-parameter models without their memory.

Writes two models in plain torch to a temporary folder — a GPT-2-XL-sized GPT (1.56 B
parameters: the nanoGPT fixture at GPT-2 XL's sizes) and a 7 B Llama-style transformer (RMSNorm, rotary
embeddings, SwiGLU) — and runs the real `nnlint` command on each, graph pass only
(`--select NN0,NN2`), then once more with the default rules (the probe selected: it must
answer NN006 without building the model). Next to them, a real-weights construction of the
GPT-2-XL-sized model (what torchinfo-style tools must do); the real 7 B is skipped.

Prints wall time, CPU time (user+sys of nnlint and its children) and peak RSS of each, in its own process. Targets (issue 3, this 2-core
machine): under 1 GB peak RSS and 15 s wall for each shape check; the real construction
took 35-44 s and 6.4 GB here.

    python benchmarks/graph_scale.py            # all cases
    python benchmarks/graph_scale.py --skip-real
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

#: nanoGPT's model as shipped in the graph fixtures, at GPT-2 XL's sizes (1.56 B parameters)
NANOGPT = Path(__file__).resolve().parent.parent / "fixtures" / "graph" / "nanogpt.py"
GPT2_XL = {"vocab_size": 50257, "n_layer": 48, "n_head": 25, "n_embd": 1600}


def gpt2_xl_source() -> str:
    text = NANOGPT.read_text(encoding="utf-8")
    for field_name, value in GPT2_XL.items():
        text, n = re.subn(rf"(\n    {field_name}: int = )\d+", rf"\g<1>{value}", text, count=1)
        assert n == 1, f"{NANOGPT}: GPTConfig.{field_name} not found"
    return text


LLAMA = '''
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ModelArgs:  # Llama-2 7B
    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    vocab_size: int = 32000
    hidden_dim: int = 11008
    norm_eps: float = 1e-5
    max_seq_len: int = 2048
    rope_theta: float = 10000.0


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim, max_len, theta):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2).float() / head_dim))
    ang = torch.outer(torch.arange(max_len).float(), inv)
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x, cos, sin):
    x1, x2 = x[..., 0::2], x[..., 1::2]
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.n_heads, self.head_dim = args.n_heads, args.dim // args.n_heads
        self.wq = nn.Linear(args.dim, args.dim, bias=False)
        self.wk = nn.Linear(args.dim, args.dim, bias=False)
        self.wv = nn.Linear(args.dim, args.dim, bias=False)
        self.wo = nn.Linear(args.dim, args.dim, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim)
        k = self.wk(x).view(B, T, self.n_heads, self.head_dim)
        v = self.wv(x).view(B, T, self.n_heads, self.head_dim)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return self.wo(y.transpose(1, 2).reshape(B, T, -1))


class FeedForward(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.w1 = nn.Linear(args.dim, args.hidden_dim, bias=False)
        self.w2 = nn.Linear(args.hidden_dim, args.dim, bias=False)
        self.w3 = nn.Linear(args.dim, args.hidden_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.attention = Attention(args)
        self.feed_forward = FeedForward(args)
        self.attention_norm = RMSNorm(args.dim, args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, args.norm_eps)

    def forward(self, x, cos, sin):
        h = x + self.attention(self.attention_norm(x), cos, sin)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    def __init__(self, params: ModelArgs):
        super().__init__()
        self.params = params
        self.tok_embeddings = nn.Embedding(params.vocab_size, params.dim)
        self.layers = nn.ModuleList([TransformerBlock(params) for _ in range(params.n_layers)])
        self.norm = RMSNorm(params.dim, params.norm_eps)
        self.output = nn.Linear(params.dim, params.vocab_size, bias=False)
        cos, sin = rope_tables(params.dim // params.n_heads, params.max_seq_len, params.rope_theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, tokens):
        T = tokens.shape[1]
        h = self.tok_embeddings(tokens)
        cos, sin = self.cos[:T], self.sin[:T]
        for layer in self.layers:
            h = layer(h, cos, sin)
        return self.output(self.norm(h)).float()
'''

#: a 7 B Llama built through transformers (Llama-2 7B's LlamaConfig), nothing downloaded
HF_LLAMA = '''
import torch
from transformers import LlamaConfig, LlamaForCausalLM

config = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                     num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=2048)


def nnlint_examples():
    return [{"model": lambda: LlamaForCausalLM(config), "inputs": {"input_ids": torch.randint(0, 32000, (1, 128))}}]
'''

#: the floor a real-architecture file is compared with: the imports every such check needs
BARE_IMPORT = "import torch, transformers"

REAL_BUILD = '''
import sys, time, resource, json
sys.path.insert(0, sys.argv[1])
import torch
t = time.perf_counter()
import gpt2_xl
model = gpt2_xl.GPT(gpt2_xl.GPTConfig())
n = sum(p.numel() for p in model.parameters())
print(json.dumps({"wall_s": time.perf_counter() - t, "parameters": n,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def run_case(cmd: list[str], label: str) -> dict:
    """Run ``cmd`` in a fresh helper process that reports wall time and the peak RSS of
    everything it waited for (nnlint and its worker child)."""
    helper = textwrap.dedent("""
        import json, resource, subprocess, sys, time
        t = time.perf_counter()
        proc = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True)
        wall = time.perf_counter() - t
        use = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(json.dumps({"wall_s": wall, "cpu_s": use.ru_utime + use.ru_stime, "rc": proc.returncode,
                          "stdout": proc.stdout, "stderr": proc.stderr, "peak_rss_mb": use.ru_maxrss / 1024}))
    """)
    out = subprocess.run([sys.executable, "-c", helper, json.dumps(cmd)], capture_output=True, text=True)
    res = json.loads(out.stdout)
    res["label"] = label
    return res


LOAD = os.getloadavg()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-real", action="store_true", help="skip the real-weights construction of GPT-2-XL")
    ap.add_argument("--archs", default="bert,gpt2,t5,vit,wav2vec2",
                    help="transformers architectures (tests/real_models.py) timed per file against a bare import")
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="nnlint-scale-")
    with open(os.path.join(folder, "gpt2_xl.py"), "w") as fh:
        fh.write(gpt2_xl_source())
    with open(os.path.join(folder, "llama_7b.py"), "w") as fh:
        fh.write(LLAMA)
    nnlint = [sys.executable, "-m", "nnlint", "--no-cache", "--isolated", "--exit-zero", "--color", "never"]
    with open(os.path.join(folder, "hf_llama_7b.py"), "w") as fh:
        fh.write(HF_LLAMA)
    cases = [
        ("Llama 7 B via transformers LlamaConfig, graph pass", nnlint + ["--select", "NN0,NN2", os.path.join(folder, "hf_llama_7b.py")]),
        ("GPT-2-XL 1.56 B, graph pass (meta device)", nnlint + ["--select", "NN0,NN2", os.path.join(folder, "gpt2_xl.py")]),
        ("Llama 7 B, graph pass (meta device)", nnlint + ["--select", "NN0,NN2", os.path.join(folder, "llama_7b.py")]),
        ("Llama 7 B, default rules (probe selected -> NN006)", nnlint + [os.path.join(folder, "llama_7b.py")]),
    ]
    results = []
    for label, cmd in cases:
        r = run_case(cmd, label)
        findings = [line for line in r["stdout"].splitlines() if ": NN" in line]
        r["findings"] = findings
        results.append(r)
    if not args.skip_real:
        out = subprocess.run([sys.executable, "-c", REAL_BUILD, folder], capture_output=True, text=True)
        try:
            real = json.loads(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            real = {"wall_s": float("nan"), "peak_rss_mb": float("nan"), "error": out.stderr[-500:]}
        real["label"] = "GPT-2-XL 1.56 B, real weights (torchinfo-style), construction only"
        real["findings"] = []
        results.append(real)
    # real architectures: one file each, all passes, next to the bare import floor
    if args.archs:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests import real_models

        results.append(run_case([sys.executable, "-c", BARE_IMPORT], f"floor: python -c '{BARE_IMPORT}'"))
        results[-1]["findings"] = []
        floor, floor_cpu = results[-1]["wall_s"], results[-1]["cpu_s"]
        for arch in filter(None, args.archs.split(",")):
            path = os.path.join(folder, f"hf_{arch}.py")
            with open(path, "w") as fh:
                fh.write(real_models.transformers_source(arch))
            # the file's own imports: what `python file.py` pays before any nnlint work
            # (transformers imports a model's module lazily, so the bare floor omits it)
            with open(path) as fh:
                imports = "\n".join(ln for ln in fh.read().splitlines() if ln.startswith(("import ", "from ")))
            own = run_case([sys.executable, "-c", imports], f"  the {arch} file's own imports")
            own["findings"] = []
            r = run_case(nnlint + [path], f"transformers {arch} file, all passes")
            r["findings"] = [line for line in r["stdout"].splitlines() if ": NN" in line]
            r["label"] += (
                f" ({r['wall_s'] / floor:.1f}x wall, {r['cpu_s'] / floor_cpu:.1f}x CPU floor;"
                f" {r['cpu_s'] / own['cpu_s']:.1f}x CPU of its imports)"
            )
            results += [own, r]
    print(f"machine: {os.cpu_count()} CPUs; torch run in child processes; targets: < 15 s, < 1024 MB per shape check")
    print(f"load average before the run: {LOAD[0]:.1f} (wall times grow with it; CPU times much less)")
    print(f"{'case':<100} {'wall s':>7} {'CPU s':>7} {'peak RSS MB':>12}")
    for r in results:
        cpu = r.get("cpu_s", float("nan"))
        print(f"{r['label']:<100} {r['wall_s']:>7.1f} {cpu:>7.1f} {r['peak_rss_mb']:>12.0f}")
        for f in r["findings"]:
            print(f"    {os.path.basename(f)[:150]}")
        if r.get("rc") not in (None, 0) or r.get("error"):
            print(f"    (rc={r.get('rc')}) {r.get('stderr', r.get('error', ''))[-300:]}")
    graph = [r for r in results if "graph pass" in r["label"]]
    ok = all(r["wall_s"] < 15 and r["peak_rss_mb"] < 1024 for r in graph)
    print("targets met" if ok else "targets NOT met")
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
