"""What one graph or probe rule costs on a GPT-2-small-sized model: the pass's time with
the rule selected and without it (issue 7: NN209 in the graph pass, NN314 in the probe).

The model is probe_cost.py's GPT2Small (nanoGPT's GPT at the GPT-2-small configuration,
124M parameters, plain torch), tokens of batch 4 and sequence 13 (nnlint's guessed
length; ``--seq`` to change). Time: in this process, after one untimed warm-up of each
configuration, the median of ``--repeat`` interleaved runs, as wall time and as this
process's CPU time (the steadier figure on a shared machine).

    python benchmarks/rule_cost.py                  # NN209 (graph) and NN314 (probe)
    python benchmarks/rule_cost.py --rules NN314 --repeat 5

A script that prints figures, never a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe_cost import GPT2Small, _timed  # noqa: E402

from nnlint import registry  # noqa: E402
from nnlint.example import Example  # noqa: E402


def graph_run(model, x, codes: list[str]) -> None:
    from nnlint.passes.graph import run_graph

    rules = [registry.all_rules()[c]() for c in codes]
    run_graph(Example(model=model, inputs=x), rules, __file__, type(model).__name__, {})


def probe_run(model, x, codes: list[str]) -> None:
    from nnlint.passes.probe import run_probe

    rules = [registry.all_rules()[c]() for c in codes]
    run_probe(Example(model=model, inputs=x), rules, {"device": "cpu", "batch_size": x.shape[0]},
              __file__, type(model).__name__)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", nargs="*", default=["NN209", "NN314"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seq", type=int, default=13)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = GPT2Small()
    x = torch.randint(0, 50257, (4, args.seq))
    for code in args.rules:
        rule = registry.all_rules()[code]
        pass_codes = [c for c, r in registry.all_rules().items()
                      if r.pass_ == rule.pass_ and not r.opt_in and c in {x.code for x in registry.select(None)}]
        without = [c for c in pass_codes if c != code]
        run = graph_run if rule.pass_ == "graph" else probe_run
        configs = {f"{rule.pass_} pass, default rules": pass_codes, f"{rule.pass_} pass, without {code}": without}
        if code == "NN314":  # alone and beside NN310, which shares its eval-mode forward
            configs.update({"probe, NN310 only": ["NN310"], "probe, NN310 + NN314": ["NN310", "NN314"],
                            "probe, NN301 only": ["NN301"], "probe, NN301 + NN314": ["NN301", "NN314"]})
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in configs}
        for k, codes in configs.items():
            run(model, x, codes)  # warm-up
        for _ in range(args.repeat):
            for k, codes in configs.items():
                times[k].append(_timed(lambda: run(model, x, codes)))
        print(f"{code} on GPT-2-small (124M), tokens {tuple(x.shape)}, {torch.get_num_threads()} threads, "
              f"median of {args.repeat}:")
        for k, ts in times.items():
            wall = statistics.median(t[0] for t in ts)
            cpu = statistics.median(t[1] for t in ts)
            print(f"  {k:<40} wall {wall:7.2f} s   cpu {cpu:7.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
