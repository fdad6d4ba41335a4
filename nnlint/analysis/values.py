"""The abstract values of the value-flow analysis: what is known about one value (``Val``, ``Obj``) and how branches merge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Obj:
    """A non-tensor value: a layer, Sequential, model instance, loss, loader, class, function."""

    kind: str  # act affine pass norm flatten pool seq inst self loss loader batch class func
    name: str = ""
    node: Any = None  # the constructing call (or def) in the user's file
    tag: str | None = None  # act layers
    k: int | None = None  # affine layers
    kdim: str | None = None
    dim0: bool = False  # a softmax-family module built with dim=0
    loss: str | None = None
    layers: tuple = ()  # seq: tuple[Val, ...]
    batch: str | None = None


@dataclass(frozen=True)
class Val:
    tag: str | None = None
    act: str | None = None  # display name of the op that set ``tag``
    at: Any = None  # the node that set ``tag``
    k: int | None = None
    kdim: str | None = None
    head: Any = None  # the constructor call of the layer that set ``k`` (nn.Linear(128, 10))
    batched: str | None = None
    model: str | None = None  # the model (class name / "nn.Sequential") whose output this is
    target: str | None = None
    const: Any = None  # int, or "N" (a batch size), or "shape" (x.size() / x.shape)
    obj: Obj | None = None
    items: tuple | None = None


UNKNOWN = Val()


def merge(a: Val | None, b: Val | None) -> Val:
    """What is certain about a value that is ``a`` on one path and ``b`` on another."""
    if a is None:
        return b if b is not None else UNKNOWN
    if b is None or a is b or a == b:
        return a
    same_tag = a.tag == b.tag
    items = None
    if a.items is not None and b.items is not None and len(a.items) == len(b.items):
        items = tuple(merge(x, y) for x, y in zip(a.items, b.items))
    return Val(
        tag=a.tag if same_tag else None,
        act=a.act if same_tag else None,
        at=a.at if same_tag else None,
        k=a.k if a.k == b.k else None,
        kdim=a.kdim if a.kdim == b.kdim else None,
        head=a.head if a.k == b.k else None,
        batched=a.batched if a.batched == b.batched else None,
        model=a.model if a.model == b.model else None,
        target=a.target if a.target == b.target else None,
        const=a.const if a.const == b.const else None,
        obj=a.obj if a.obj == b.obj else None,
        items=items,
    )


def merge_env(*envs: dict[str, Val]) -> dict[str, Val]:
    if len(envs) == 1:
        return dict(envs[0])
    out: dict[str, Val] = {}
    for env in envs:
        for key, val in env.items():
            out[key] = merge(out[key], val) if key in out else val
    return out
