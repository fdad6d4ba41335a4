"""Example-input specifications: a tensor spec, the inputs of one call, and how to build and print them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

DTYPES = {
    "float": torch.float32,
    "float32": torch.float32,
    "float16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
    "double": torch.float64,
    "long": torch.int64,
    "int64": torch.int64,
    "int": torch.int64,
    "int32": torch.int32,
    "bool": torch.bool,
    "uint8": torch.uint8,
}


@dataclass
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str = "float32"
    low: float | None = None
    high: float | None = None

    def make(self, device: str | torch.device = "cpu") -> torch.Tensor:
        dt = DTYPES.get(self.dtype, torch.float32)
        if dt == torch.bool:
            return torch.randint(0, 2, self.shape, device=device).bool()
        if not dt.is_floating_point:
            lo = int(self.low if self.low is not None else 0)
            hi = int(self.high if self.high is not None else 2)
            return torch.randint(lo, max(hi, lo + 1), self.shape, dtype=dt, device=device)
        t = torch.randn(self.shape, dtype=dt, device=device)
        if self.low is not None and self.high is not None:
            t = torch.rand(self.shape, dtype=dt, device=device) * (self.high - self.low) + self.low
        return t

    def code(self) -> str:
        dims = ", ".join(map(str, self.shape))
        if self.dtype in ("long", "int64", "int", "int32"):
            return (
                f"torch.randint(0, {int(self.high or 2)}, ({dims},))"
                if len(self.shape) == 1
                else f"torch.randint(0, {int(self.high or 2)}, ({dims}))"
            )
        return f"torch.randn({dims})"

    def describe(self) -> str:
        s = "(" + ", ".join(map(str, self.shape)) + ")"
        return s if self.dtype in ("float32", "float") else f"{s} {self.dtype}"


@dataclass
class InputSpec:
    """Positional and keyword example inputs; values are TensorSpec or plain Python values."""

    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    origin: str = ""
    #: the size search, when there was one: {"layer": ..., "tried": [...], "fits": [...]}
    search: dict[str, Any] | None = None

    def make(self, device: str | torch.device = "cpu") -> tuple[tuple, dict]:
        def mk(v: Any) -> Any:
            if isinstance(v, TensorSpec):
                return v.make(device)
            if isinstance(v, torch.Tensor):
                return (
                    v.to(device)
                    if v.device.type != "meta" or str(device) == "meta"
                    else TensorSpec(tuple(v.shape), str(v.dtype).replace("torch.", ""), 0, 2).make(device)
                )
            if isinstance(v, (list, tuple)):
                return type(v)(mk(x) for x in v)
            if isinstance(v, dict):
                return {k: mk(x) for k, x in v.items()}
            return v

        return tuple(mk(a) for a in self.args), {k: mk(v) for k, v in self.kwargs.items()}

    def as_example_inputs(self, device: str | torch.device = "cpu") -> Any:
        args, kwargs = self.make(device)
        if kwargs and not args:
            return kwargs
        if len(args) == 1 and not kwargs and not isinstance(args[0], (list, tuple, dict)):
            return args[0]
        # a single list (NaViT's list of images) or dict is ONE argument: the tuple of
        # positional arguments keeps it from being unpacked into several
        return tuple(args)

    def describe(self) -> str:
        parts = [a.describe() if isinstance(a, TensorSpec) else _short(a) for a in self.args]
        parts += [f"{k}={v.describe() if isinstance(v, TensorSpec) else _short(v)}" for k, v in self.kwargs.items()]
        return ", ".join(parts)

    def code(self) -> str:
        if len(self.args) == 1 and not self.kwargs and isinstance(self.args[0], TensorSpec):
            return self.args[0].code()
        parts = [a.code() if isinstance(a, TensorSpec) else repr(a) for a in self.args]
        if self.kwargs:
            return (
                "{"
                + ", ".join(
                    f"{k!r}: {v.code() if isinstance(v, TensorSpec) else repr(v)}" for k, v in self.kwargs.items()
                )
                + "}"
            )
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _short(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return (
            "("
            + ", ".join(map(str, v.shape))
            + ")"
            + ("" if v.dtype == torch.float32 else f" {str(v.dtype).replace('torch.', '')}")
        )
    r = repr(v)
    return r if len(r) < 40 else r[:37] + "..."


def spec_from_value(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        dt = str(v.dtype).replace("torch.", "")
        spec = TensorSpec(tuple(int(s) for s in v.shape), dt)
        if not v.dtype.is_floating_point and v.device.type != "meta" and v.numel():
            spec.low, spec.high = int(v.min()), int(v.max()) + 1
        return spec
    if isinstance(v, (list, tuple)):
        return type(v)(spec_from_value(x) for x in v)
    if isinstance(v, dict):
        return {k: spec_from_value(x) for k, x in v.items()}
    return v


def spec_from_inputs(inputs: Any, origin: str) -> InputSpec:
    if isinstance(inputs, dict):
        return InputSpec(kwargs={k: spec_from_value(v) for k, v in inputs.items()}, origin=origin)
    if isinstance(inputs, (tuple, list)):
        return InputSpec(args=[spec_from_value(v) for v in inputs], origin=origin)
    return InputSpec(args=[spec_from_value(inputs)], origin=origin)


def spec_from_declared(entries: list[dict[str, Any]], origin: str, default_high: int | None = None) -> InputSpec:
    """pyproject ``inputs = [{shape = [8, 3, 32, 32], dtype = "float", low = 0, high = 10, name = "x"}]``."""
    spec = InputSpec(origin=origin)
    for e in entries:
        if not isinstance(e, dict) or "shape" not in e:
            raise ValueError(f"each input needs a shape, got {e!r}")
        dtype = str(e.get("dtype", "float32"))
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")
        t = TensorSpec(tuple(int(s) for s in e["shape"]), dtype, e.get("low"), e.get("high"))
        if not DTYPES[dtype].is_floating_point and t.high is None and DTYPES[dtype] != torch.bool:
            t.low, t.high = 0, default_high or 2
        if e.get("name"):
            spec.kwargs[str(e["name"])] = t
        else:
            spec.args.append(t)
    return spec
