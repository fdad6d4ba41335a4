"""Extra.NONFINITE_ORIGIN: which op and user line made the first NaN/Inf (op checks forward, detect_anomaly backward)."""

from __future__ import annotations

import os
import re
import warnings
from typing import TYPE_CHECKING

import torch

from nnlint.contexts.probe import ProbeContext
from nnlint.passes.probe.recorder import Recorder
from nnlint.passes.state import reseed

if TYPE_CHECKING:
    from nnlint.passes.probe.run import Probe


def measure(probe: Probe, ctx: ProbeContext) -> None:
    nf = ctx.nonfinite
    assert nf is not None
    if nf["phase"] in ("forward", "loss"):
        rec = Recorder(
            probe.model,
            probe.path,
            probe.batch,
            stats=False,
            activations=False,
            grad_hooks=False,
            track_params=False,
            check_ops=True,
        )
        try:
            with torch.no_grad():
                reseed()
                probe.set_mode(True)
                with rec:
                    probe.forward(probe.inputs)
        except Exception as exc:
            ctx.notes.append(f"non-finite re-run failed: {type(exc).__name__}: {exc}")
        finally:
            rec.close()
        if rec.first_bad_module is not None:
            nf["module"] = rec.first_bad_module["module"]
            nf["leaf"] = rec.first_bad_module["leaf"]
        if rec.first_bad_op is not None:
            nf.update(
                {
                    "op": rec.first_bad_op["op"],
                    "line": rec.first_bad_op["line"],
                    "op_module": rec.first_bad_op["module"],
                }
            )
        elif nf["phase"] == "forward" and rec.first_bad_module is None:
            # the statistic overflowed, the values did not: not a NaN/Inf after all
            ctx.nonfinite = None
            for st in ctx.modules.values():
                st.nonfinite = False
        return
    # backward: detect_anomaly names the op and its forward traceback
    caught: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as ws, torch.autograd.detect_anomaly(check_nan=True):
            warnings.simplefilter("always")
            with torch.enable_grad():
                reseed()
                probe.set_mode(True)
                out = probe.forward(probe.inputs)
                loss = probe.loss.total(out)
                try:
                    loss.backward()
                except RuntimeError as exc:
                    caught.append(str(exc))
            caught.extend(str(w.message) for w in ws)
    except Exception as exc:
        ctx.notes.append(f"anomaly re-run failed: {type(exc).__name__}: {exc}")
    finally:
        for p in probe.model.parameters():
            p.grad = None
    text = "\n".join(caught)
    op = re.search(r"Function '(\w+)' returned nan", text)
    if op:
        nf["op"] = op.group(1)
    real = os.path.realpath(probe.path)
    for fname, line in re.findall(r'File "([^"]+)", line (\d+)', text):
        if os.path.realpath(fname) == real:
            nf["line"] = int(line)
