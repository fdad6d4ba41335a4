"""What the probe costs: one plain forward+backward vs nnlint's full probe of the same model
and input, for an MNIST CNN, a ResNet-50-style CNN at 224×224 and a GPT-2-small-style
transformer at sequence 128 (all written here in plain torch: no torchvision, no downloads).

Time: in this process, after one untimed warm-up step per model, the median of ``--repeat``
interleaved runs of each (plain step: train mode, cross-entropy on random targets — the
loss the probe picks for these heads — and backward; probe: ``run_probe`` with every
default NN3 rule), as wall time and as this process's CPU time (the steadier figure on a
shared machine; the target is judged on it).
Peak memory: each (model, mode) runs cold in a subprocess of its own; reported as the
process's peak RSS and as the step's own growth (peak RSS minus RSS just before the step).

    python benchmarks/probe_cost.py                 # all three models
    python benchmarks/probe_cost.py --models mnist  # one; --no-memory to skip subprocesses

Targets (issue 4): probe time ≤ 3× one forward+backward, peak memory ≤ 1.5×. A script
that prints figures, never a test.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------
# the models


class MnistCNN(nn.Module):  # pytorch/examples mnist
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = self.dropout1(F.max_pool2d(x, 2))
        x = self.dropout2(F.relu(self.fc1(torch.flatten(x, 1))))
        return self.fc2(x)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, width, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet50(nn.Module):  # torchvision's resnet50, written out
    def __init__(self, classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._layer(64, 3)
        self.layer2 = self._layer(128, 4, 2)
        self.layer3 = self._layer(256, 6, 2)
        self.layer4 = self._layer(512, 3, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _layer(self, width, blocks, stride=1):
        down = None
        if stride != 1 or self.inplanes != width * 4:
            down = nn.Sequential(nn.Conv2d(self.inplanes, width * 4, 1, stride, bias=False), nn.BatchNorm2d(width * 4))
        layers = [Bottleneck(self.inplanes, width, stride, down)]
        self.inplanes = width * 4
        layers += [Bottleneck(self.inplanes, width) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class CausalSelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.resid_dropout = nn.Dropout(0.1)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=0.1 if self.training else 0.0)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c)))


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, heads)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.dropout(self.c_proj(F.gelu(self.c_fc(self.ln_2(x)))))


class GPT2Small(nn.Module):  # nanoGPT's GPT at the GPT-2-small configuration
    def __init__(self, vocab=50257, block=1024, layers=12, heads=12, d=768):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(block, d)
        self.drop = nn.Dropout(0.1)
        self.h = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.wte.weight = self.lm_head.weight
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * layers) if name.endswith("c_proj.weight") else 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx):
        pos = torch.arange(idx.size(1), device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


MODELS = {
    # name: (build, inputs, classes, label)
    "mnist": (MnistCNN, lambda: torch.randn(8, 1, 28, 28), 10, "MNIST CNN, batch 8, 28x28"),
    "resnet50": (ResNet50, lambda: torch.randn(4, 3, 224, 224), 1000, "ResNet-50, batch 4, 224x224"),
    "gpt2": (GPT2Small, lambda: torch.randint(0, 50257, (4, 128)), 50257, "GPT-2-small, batch 4, seq 128"),
}


# ---------------------------------------------------------------------------------------
# the two things timed


def plain_step(model: nn.Module, x: torch.Tensor, classes: int) -> float:
    model.train()
    out = model(x)
    target = torch.randint(0, classes, out.shape[:-1])
    loss = F.cross_entropy(out.reshape(-1, classes), target.reshape(-1))
    loss.backward()
    value = float(loss.detach())
    model.zero_grad(set_to_none=True)
    return value


def probe_rules() -> list:
    from nnlint import registry

    return [r() for r in registry.select(["NN3"]) if not r.opt_in]


def probe_step(model: nn.Module, x: torch.Tensor, rules: list) -> list:
    from nnlint.example import Example
    from nnlint.passes.probe import run_probe

    return run_probe(Example(model=model, inputs=x), rules, {"device": "cpu", "batch_size": x.shape[0]},
                     __file__, type(model).__name__)


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process). CPU time is the steadier figure on a
    shared machine: other processes' load stretches wall time, not CPU time."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    """This process's own high-water RSS. (ru_maxrss is not: Linux carries the parent's
    RSS at fork over exec, so every child of a big parent would report the parent's.)"""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(name: str, mode: str) -> None:
    """One cold step in a fresh process; prints peak RSS figures as JSON."""
    torch.manual_seed(0)
    build, inputs, classes, _ = MODELS[name]
    model = build()
    x = inputs()
    rules = probe_rules() if mode == "probe" else None
    import gc

    gc.collect()
    before = _rss()
    if mode == "plain":
        plain_step(model, x, classes)
    else:
        probe_step(model, x, rules)
    print(json.dumps({"before": before, "peak": _peak_rss()}))


def memory(name: str) -> dict[str, dict[str, int]]:
    out = {}
    for mode in ("plain", "probe"):
        proc = subprocess.run([sys.executable, __file__, "--child", name, mode], capture_output=True, text=True,
                              timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"{name}/{mode} subprocess failed:\n{proc.stderr[-2000:]}")
        out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each, interleaved (median)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    rules = probe_rules()
    print(f"probe rules: {', '.join(r.code for r in rules)}")
    rows = []
    for name in args.models:
        build, inputs, classes, label = MODELS[name]
        torch.manual_seed(0)
        model = build()
        x = inputs()
        plain_step(model, x, classes)  # warm-up: thread pools, allocator, first-call caches
        found: list = []
        walls: dict[str, list[float]] = {"plain": [], "probe": []}
        cpus: dict[str, list[float]] = {"plain": [], "probe": []}
        for _ in range(args.repeat):  # interleaved, so that load from elsewhere hits both alike
            for mode, fn in (("plain", lambda: plain_step(model, x, classes)),
                             ("probe", lambda: found.extend(probe_step(model, x, rules)))):
                wall, cpu = _timed(fn)
                walls[mode].append(wall)
                cpus[mode].append(cpu)
        plain, probe = statistics.median(walls["plain"]), statistics.median(walls["probe"])
        plain_cpu, probe_cpu = statistics.median(cpus["plain"]), statistics.median(cpus["probe"])
        row = {"model": label, "plain_s": plain, "probe_s": probe, "time_ratio": probe / plain,
               "plain_cpu_s": plain_cpu, "probe_cpu_s": probe_cpu, "cpu_ratio": probe_cpu / plain_cpu,
               "findings": sorted({d.code for d in found})}
        model = x = None  # free it before the memory subprocesses
        if not args.no_memory:
            mem = memory(name)
            p, q = mem["plain"], mem["probe"]
            row.update(
                plain_peak_mib=p["peak"] / 2**20, probe_peak_mib=q["peak"] / 2**20,
                peak_ratio=q["peak"] / p["peak"],
                plain_step_mib=(p["peak"] - p["before"]) / 2**20, probe_step_mib=(q["peak"] - q["before"]) / 2**20,
                step_ratio=(q["peak"] - q["before"]) / max(p["peak"] - p["before"], 1),
            )
        rows.append(row)
        line = (f"{label:30s} wall {plain:7.3f} -> {probe:7.3f} s ({probe / plain:4.2f}x)"
                f"   cpu {plain_cpu:7.3f} -> {probe_cpu:7.3f} s ({probe_cpu / plain_cpu:4.2f}x)")
        if "peak_ratio" in row:
            line += (f"\n{'':30s} peak RSS {row['plain_peak_mib']:6.0f} -> {row['probe_peak_mib']:6.0f} MiB "
                     f"({row['peak_ratio']:.2f}x)   step's own growth {row['plain_step_mib']:6.0f} -> "
                     f"{row['probe_step_mib']:6.0f} MiB ({row['step_ratio']:.2f}x)")
        print(line, flush=True)
        if row["findings"]:
            print(f"{'':32s} (probe findings: {', '.join(row['findings'])})")
    print("targets: time ratio <= 3x (CPU time; wall time is shown too), peak memory ratio <= 1.5x")
    ok = all(r["cpu_ratio"] <= 3 and r.get("peak_ratio", 1) <= 1.5 for r in rows)
    print("all within targets" if ok else "OUT OF TARGET: see the ratios above")
    return 0


if __name__ == "__main__":
    sys.exit(main())
