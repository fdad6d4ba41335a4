"""Infers an example input for a model from the first layer its forward uses, and searches sizes that fit."""

from __future__ import annotations

import dataclasses
import inspect
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nnlint.contexts.graph import is_leaf
from nnlint.passes.graph.specs import InputSpec, TensorSpec, spec_from_inputs
from nnlint.vocab import PASS_THROUGH_FUNCTIONS, PASS_THROUGH_MODULES

#: the guessed sequence length: odd and prime, so that it neither divides nor is divided by
#: the usual batch, head and channel sizes (powers of two) and NN209's shape algebra on
#: view/reshape stays sharp
SEQ_LEN = 13
SIZES_2D = (28, 32, 64, 224, 96, 128, 256, 227, 299)
SIZES_1D = (16, 32, 64, 128, 256, 512, 1000, 1024, 4096, 16000)
SIZES_3D = (16, 32, 64, 112)


def forward_params(model: nn.Module) -> list[inspect.Parameter]:
    try:
        sig = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return []
    return [
        p
        for p in sig.parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def first_layers(model: nn.Module) -> dict[str, tuple[str, nn.Module]]:
    """For each forward argument, the first torch.nn layer that consumes it (through fx,
    without running anything); with no fx graph, the first registered layer for the first
    argument."""
    import torch.fx as fx

    params = forward_params(model)
    interesting = (
        nn.Linear,
        nn.modules.conv._ConvNd,
        nn.Embedding,
        nn.EmbeddingBag,
        nn.RNNBase,
        nn.MultiheadAttention,
        nn.TransformerEncoder,
        nn.TransformerEncoderLayer,
        nn.Transformer,
        nn.modules.batchnorm._NormBase,
        nn.LayerNorm,
        nn.GroupNorm,
    )
    out: dict[str, tuple[str, nn.Module]] = {}
    try:
        sig = inspect.signature(model.forward)
        concrete = {n: p.default for n, p in sig.parameters.items() if p.default is not p.empty}
        graph = fx.Tracer().trace(model, concrete_args=concrete or None)
        mods = dict(model.named_modules())
        for ph in (n for n in graph.nodes if n.op == "placeholder"):
            frontier = list(ph.users)
            seen = set()
            while frontier:
                n = frontier.pop(0)
                if n in seen:
                    continue
                seen.add(n)
                if n.op == "call_module":
                    m = mods.get(str(n.target))
                    if isinstance(m, interesting):
                        out[str(ph.target)] = (str(n.target), m)
                        break
                    if type(m).__name__ in PASS_THROUGH_MODULES or m is None or not is_leaf(m):
                        frontier.extend(n.users)
                elif n.op in ("call_function", "call_method"):
                    name = n.target if isinstance(n.target, str) else getattr(n.target, "__name__", "")
                    if name in PASS_THROUGH_FUNCTIONS or name in ("add", "mul", "sub", "cat", "stack"):
                        frontier.extend(n.users)
        return out
    except (Exception, SystemExit):  # fx cannot trace this forward: registration order below
        out.clear()
    if params:
        for q, m in model.named_modules():
            if isinstance(m, interesting):
                out[params[0].name] = (q, m)
                break
    return out


def _candidates_for_layer(mod: nn.Module, batch: int) -> tuple[list[TensorSpec], str, list[int] | None]:
    """Input candidates (in order), a description, and the spatial sizes being searched."""
    B, T = batch, SEQ_LEN
    if isinstance(mod, (nn.Embedding, nn.EmbeddingBag)):
        n = mod.num_embeddings
        return [TensorSpec((B, t), "int64", 0, n) for t in (T, 16, 8, 4, 1)], "indices below num_embeddings", None
    if isinstance(mod, nn.Linear):
        f = mod.in_features
        return [TensorSpec((B, f)), TensorSpec((B, T, f))], f"in_features={f}", None
    if isinstance(mod, nn.modules.conv._ConvNd):
        c = mod.in_channels
        d = len(mod.kernel_size)
        if d == 1:
            return [TensorSpec((B, c, s)) for s in SIZES_1D], f"in_channels={c}", list(SIZES_1D)
        if d == 2:
            return [TensorSpec((B, c, s, s)) for s in SIZES_2D], f"in_channels={c}", list(SIZES_2D)
        return (
            [TensorSpec((B, c, s, s, s)) for s in SIZES_3D] + [TensorSpec((B, c, 16, s, s)) for s in (112, 64)],
            f"in_channels={c}",
            list(SIZES_3D),
        )
    if isinstance(mod, nn.RNNBase):
        f = mod.input_size
        shape = (B, T, f) if mod.batch_first else (T, B, f)
        return [TensorSpec(shape)], f"input_size={f}, batch_first={mod.batch_first}", None
    if isinstance(mod, nn.MultiheadAttention):
        e = mod.embed_dim
        return [TensorSpec((B, T, e) if mod.batch_first else (T, B, e))], f"embed_dim={e}", None
    if isinstance(mod, (nn.TransformerEncoder, nn.TransformerEncoderLayer, nn.Transformer)):
        layer = (
            mod
            if isinstance(mod, nn.TransformerEncoderLayer)
            else next((m for m in mod.modules() if isinstance(m, nn.MultiheadAttention)), None)
        )
        attn = layer.self_attn if isinstance(layer, nn.TransformerEncoderLayer) else layer
        if attn is None:
            return [], "", None
        e = attn.embed_dim
        bf = getattr(attn, "batch_first", False)
        return [TensorSpec((B, T, e) if bf else (T, B, e))], f"d_model={e}", None
    if isinstance(mod, nn.modules.batchnorm._NormBase):
        c = mod.num_features
        if isinstance(mod, (nn.BatchNorm2d, nn.InstanceNorm2d)):
            return [TensorSpec((B, c, s, s)) for s in SIZES_2D], f"num_features={c}", list(SIZES_2D)
        return [TensorSpec((B, c)), TensorSpec((B, c, T))], f"num_features={c}", None
    if isinstance(mod, nn.LayerNorm):
        shp = tuple(mod.normalized_shape)
        return [TensorSpec((B, T, *shp)), TensorSpec((B, *shp))], f"normalized_shape={shp}", None
    if isinstance(mod, nn.GroupNorm):
        c = mod.num_channels
        return [TensorSpec((B, c, s, s)) for s in SIZES_2D], f"num_channels={c}", list(SIZES_2D)
    return [], "", None


def _in_model_dtype(t: TensorSpec, model: nn.Module) -> TensorSpec:
    """A guessed float input in the dtype of the model's weights (a model built or converted
    to float64 is fed float64, as its script would)."""
    if t.dtype != "float32":
        return t
    dt = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    if dt is None or dt == torch.float32:
        return t
    return dataclasses.replace(t, dtype=str(dt).replace("torch.", ""))


@dataclass
class InferResult:
    spec: InputSpec | None
    error: BaseException | None = None
    reason: str = ""


def try_forward(model: nn.Module, spec: InputSpec, device: str = "meta") -> BaseException | None:
    """Run the forward once on inputs made from ``spec``; the exception, or None. On real
    tensors the batch is cut to 2: shapes do not depend on it, time does."""
    if device != "meta":
        spec = _small_batch(spec)
    args, kwargs = spec.make(device)
    try:
        with torch.no_grad():
            model(*args, **kwargs)
    except (Exception, SystemExit) as exc:  # user code: any failure is an answer
        return exc
    return None


def _small_batch(spec: InputSpec) -> InputSpec:
    tensors = [v for v in [*spec.args, *spec.kwargs.values()] if isinstance(v, TensorSpec) and v.shape]
    lead = next((t.shape[0] for t in tensors if len(t.shape) >= 2), None)

    def cut(v: Any) -> Any:
        if isinstance(v, TensorSpec) and v.shape and v.shape[0] == lead and lead > 2:
            return dataclasses.replace(v, shape=(2, *v.shape[1:]))
        return v

    return InputSpec(
        args=[cut(a) for a in spec.args], kwargs={k: cut(v) for k, v in spec.kwargs.items()}, origin=spec.origin
    )


def infer_inputs(model: nn.Module, batch: int, *, device: str = "meta", deadline: float | None = None) -> InferResult:
    """Find an input the model's forward accepts, from its first layer(s)."""
    example = getattr(model, "example_input_array", None)
    if example is not None:
        spec = spec_from_inputs(example, "example_input_array")
        err = try_forward(model, spec, device)
        return InferResult(spec, err, "")
    params = forward_params(model)
    if not params:
        return InferResult(None, None, "forward takes no input")
    layers = first_layers(model)
    per_param: list[tuple[list[TensorSpec], str, list[int] | None, str]] = []
    for i, p in enumerate(params):
        if p.name not in layers:
            if i == 0 or not per_param:
                return InferResult(None, None, f"no layer found that consumes forward's argument '{p.name}'")
            # no layer reads it (perhaps unused, perhaps a mask): a tensor like the first input
            like = per_param[0][0][0]
            per_param.append(
                (
                    [
                        like,
                        TensorSpec((batch,)),
                        TensorSpec((batch, 1)),
                        TensorSpec((batch,), "int64", SEQ_LEN, SEQ_LEN + 1),
                    ],  # lengths
                    "no layer reads it",
                    None,
                    f"'{p.name}'",
                )
            )
            continue
        q, m = layers[p.name]
        cands, desc, sizes = _candidates_for_layer(m, batch)
        cands = [_in_model_dtype(c, model) for c in cands]
        if not cands:
            return InferResult(None, None, f"cannot infer an input for its first layer {q} ({type(m).__name__})")
        per_param.append((cands, desc, sizes, q))
    import itertools

    combos = list(itertools.islice(itertools.product(*[c for c, *_ in per_param]), 40))
    first_err: BaseException | None = None
    first_spec: InputSpec | None = None
    tried: list[int] = []
    sized = next(((sizes, q) for _, _, sizes, q in per_param if sizes), None)
    origin = "inferred from " + ", ".join(f"{q} ({desc})" for _, desc, _, q in per_param)
    for combo in combos:
        if deadline is not None and time.monotonic() > deadline:
            break
        spec = InputSpec(args=list(combo), origin=origin)
        err = try_forward(model, spec, device)
        if sized:
            tried.append(_spatial(combo))
        if err is None:
            if sized:
                spec.search = {"layer": sized[1], "common": tried, "fits": [_spatial(combo)]}
            return InferResult(spec, None, "")
        if first_err is None:
            first_err, first_spec = err, spec
            if sized and len(per_param) == 1:
                # a flatten -> Linear sized for one input size: bisection finds the sizes
                # that fit; a common one is taken as the input, an odd one is reported
                fits = search_fitting_sizes(model, spec, device)
                common = [f for f in fits or [] if f in sized[0]]
                if common:
                    t = _image_spec(spec)
                    assert t is not None
                    found = _with_size(t, common[0])
                    found.origin = origin
                    found.search = {"layer": sized[1], "common": list(sized[0]), "fits": fits}
                    return InferResult(found, None, "")
                if fits is not None:  # no common size fits
                    # the bisection covers every size of a 1-d or square 2-d input; with more
                    # spatial dims (video: frames x H x W) it tried cubes only, and frames
                    # need not equal H and W: the guess is not exhausted
                    exhausted = len(t_shape(first_spec)) - 2 <= 2
                    first_spec.search = {
                        "layer": sized[1],
                        "common": list(sized[0]),
                        "fits": fits,
                        "exhausted": exhausted,
                    }
                    return InferResult(first_spec, first_err, "")
    assert first_spec is not None
    if sized:
        # only the common sizes were tried (the failure is not at a Linear, so no bisection
        # ran): a size nnlint did not try may fit, so the failure rests on a guess
        first_spec.search = {"layer": sized[1], "common": tried, "fits": []}
    return InferResult(first_spec, first_err, "")


def _spatial(combo: tuple[TensorSpec, ...]) -> int:
    for t in combo:
        if len(t.shape) >= 3 and t.dtype.startswith("float"):
            return t.shape[-1]
    return 0


class _Stop(Exception):
    pass


def t_shape(spec: InputSpec) -> tuple[int, ...]:
    """The shape of an image-like input (empty when there is none)."""
    t = _image_spec(spec)
    return tuple(t.shape) if t is not None else ()


def _image_spec(spec: InputSpec) -> TensorSpec | None:
    if len(spec.args) != 1 or spec.kwargs or not isinstance(spec.args[0], TensorSpec):
        return None
    t = spec.args[0]
    if len(t.shape) < 3 or not t.dtype.startswith("float"):
        return None
    return t


def _with_size(t: TensorSpec, s: int, batch: int | None = None) -> InputSpec:
    nd = len(t.shape) - 2
    return InputSpec(args=[TensorSpec((batch or t.shape[0], t.shape[1], *([s] * nd)), t.dtype)])


def _arrivals(
    model: nn.Module, spec: InputSpec, device: str, stop_at: str | None = None
) -> tuple[bool, dict[str, tuple]]:
    """Run once; (forward ok, {Linear qualname: shape that arrived}). With ``stop_at``,
    stop as soon as that layer's input is known."""
    seen: dict[str, tuple] = {}
    handles = []

    def hook(mod: nn.Module, args: tuple, q: str) -> None:
        if args and isinstance(args[0], torch.Tensor):
            seen.setdefault(q, tuple(int(d) for d in args[0].shape))
        if q == stop_at:
            raise _Stop()

    for q, m in model.named_modules():
        if isinstance(m, nn.Linear):
            handles.append(m.register_forward_pre_hook(lambda mod, args, q=q: hook(mod, args, q)))
    # eval mode and one sample: shapes do not depend on them, time and BatchNorm's
    # "more than 1 value per channel" do
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        err = try_forward(model, spec, device)
    finally:
        for h in handles:
            h.remove()
        for m, training in modes:
            m.training = training
    return err is None, seen


def search_fitting_sizes(
    model: nn.Module, spec: InputSpec, device: str = "meta", budget_s: float = 3.0, lo: int = 8, hi: int = 512
) -> list[int] | None:
    """For an image-like input whose forward fails at a ``Linear`` (the flatten -> Linear
    pattern): the square input sizes in [lo, hi] that make the whole forward work (None
    when the failure is not of that kind: the caller tries its other sizes). The
    features arriving at that layer grow with the input size, so a bisection finds them
    in ~10 forwards that stop at the layer."""
    t = _image_spec(spec)
    if t is None:
        return None  # not an image-like input: nothing to search
    ok, seen = _arrivals(model, _with_size(t, t.shape[-1], 2), device)
    if ok:
        return [t.shape[-1]]
    mods = dict(model.named_modules())
    bad = next((q for q, shape in seen.items() if shape and shape[-1] != mods[q].in_features), None)
    if bad is None:
        return None  # it failed before any Linear (a view/reshape sized for one input): not searchable
    want = mods[bad].in_features
    end = time.monotonic() + budget_s

    def arriving(s: int) -> int | None:
        _, got = _arrivals(model, _with_size(t, s, 1), device, stop_at=bad)
        shape = got.get(bad)
        return shape[-1] if shape else None

    a, b = lo, hi
    while a < b and time.monotonic() < end:
        mid = (a + b) // 2
        v = arriving(mid)
        if v is None or v < want:
            a = mid + 1
        else:
            b = mid
    fits: list[int] = []
    s = a
    while s <= hi and time.monotonic() < end and len(fits) < 8:
        v = arriving(s)
        if v != want:
            break
        if _arrivals(model, _with_size(t, s, 1), device)[0]:
            fits.append(s)
        s += 1
    return fits
