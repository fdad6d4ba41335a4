"""Torch semantics for the value-flow interpreter: what a torch call does to the values it is given.

Torch functions, layers, tensor methods, losses and argmax calls (``TorchSemantics``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import libcst as cst

from nnlint.analysis.flow_records import DimUse, LossUse, PredUse
from nnlint.analysis.interpreter_base import Frame, InterpreterBase
from nnlint.analysis.syntax import (
    arg_expr,
    keyword_arg,
    positional_args,
)
from nnlint.analysis.values import UNKNOWN, Obj, Val
from nnlint.vocab import (
    ACTIVATION_METHODS,
    ACTIVATION_MODULES_TAG,
    AFFINE_FUNCTIONS,
    AFFINE_MODULES_WIDTH,
    CONTAINER_MUTATOR_METHODS,
    DATALOADER_CLASSES,
    DROPOUT_FUNCTIONS,
    DROPOUT_OR_IDENTITY_MODULES,
    FLOAT_DTYPES,
    INDEX_DTYPES,
    LOSS_FUNCTIONS_KIND,
    LOSS_MODULES_KIND,
    MODEL_WRAPPERS,
    NORM_MODULES_BATCHED,
    OTHER_ACTIVATION_FUNCTIONS,
    POOL_MODULE_PREFIXES,
    RESAMPLE_FUNCTIONS,
    RETURNS_SELF_MODULE_METHODS,
    SIGMOID_FUNCTIONS,
    SOFTMAX_FUNCTIONS_KIND,
    SOFTMAX_MODULES,
    TORCH_FUNCTION_PREFIXES,
    UPSAMPLE_MODULES,
    VALUE_PRESERVING_METHODS,
)


class TorchSemantics(InterpreterBase):
    """What torch calls do to ``Val``s (and what they record: losses, predictions, dim=0 softmaxes)."""

    def _torch_call(self, frame: Frame, e: cst.Call, q: str, pos: list[Val], kw: dict[str, Val], star: bool) -> Val:
        if q in DATALOADER_CLASSES:
            return Val(obj=Obj("loader"))
        if q in MODEL_WRAPPERS:
            return self._first(pos, kw, "model") if not star else UNKNOWN
        if q.startswith("torch.nn.") and q.count(".") == 2 and q[9:10].isupper():
            return self._module(frame, e, q[9:], pos, kw, star)
        short = None
        for prefix in TORCH_FUNCTION_PREFIXES:
            if q.startswith(prefix) and "." not in q[len(prefix) :]:
                short = q[len(prefix) :]
                break
        if short is None:
            return UNKNOWN
        functional = q.startswith("torch.nn.functional.")
        if functional and short in LOSS_FUNCTIONS_KIND:
            if not star:
                self._loss(frame, e, LOSS_FUNCTIONS_KIND[short], short, pos, kw)
            return UNKNOWN
        x = self._first(pos, kw)
        if x.obj is not None and x.obj.kind == "batch":
            x = Val(batched="yes")
        base = short[:-1] if short.endswith("_") and not short.endswith("__") else short
        if base in SOFTMAX_FUNCTIONS_KIND and (functional or short in ("softmax", "log_softmax")):
            self._dim0(frame, e, arg_expr(e, 1, "dim"), x, short)
            return self._tagged(x, SOFTMAX_FUNCTIONS_KIND[base], short, e)
        if base in SIGMOID_FUNCTIONS:
            return self._tagged(x, "sigmoid", short, e)
        if base in OTHER_ACTIVATION_FUNCTIONS:
            return self._tagged(x, "act", short, e, keep_k=base != "glu")
        if functional and short in AFFINE_FUNCTIONS:
            return Val(tag="logits", act=short, at=e, batched=x.batched)
        if functional and short in DROPOUT_FUNCTIONS:
            return x
        if functional and short in RESAMPLE_FUNCTIONS:
            if x.tag is None and x.k is None:
                return Val(batched=x.batched) if x.batched else UNKNOWN
            return (
                replace(x, items=None, const=None)
                if x.kdim == "chan"
                else replace(x, k=None, kdim=None, items=None, const=None)
            )
        if functional and short == "one_hot":
            return Val(target="onehot")
        if short in ("argmax",) or (short == "max" and (len(pos) >= 2 or "dim" in kw)):
            return self._prediction(frame, e, x, short)
        if short in ("log",):
            return self._log(x, e)
        if short in ("exp",):
            return self._exp(x, e)
        if short in ("clamp", "clip"):
            return x if x.tag in ("softmax", "sigmoid", "log_softmax") else UNKNOWN
        if short == "flatten":
            start = self._const(arg_expr(e, 1, "start_dim"))
            if x.tag is not None:  # torch.flatten(conv_logits, 1): still logits
                return replace(x, batched="yes" if start == 1 else None, k=None, kdim=None, items=None, const=None)
            return Val(batched="yes") if start == 1 else UNKNOWN
        if short in ("squeeze", "unsqueeze", "transpose", "permute", "reshape"):
            return self._shape_method(frame, e, x, short, args_offset=1)
        return self._creator(e, short, pos, kw)

    def _creator(self, e: cst.Call, short: str, pos: list[Val], kw: dict[str, Val]) -> Val:
        """Tensors built in the file: their layout (batched) and what targets they make."""
        dtype = self._torch_name(kw_arg.value) if (kw_arg := keyword_arg(e, "dtype")) is not None else None
        if short == "randint":
            size_kw = keyword_arg(e, "size")
            size = size_kw.value if size_kw is not None else arg_expr(e, len(positional_args(e)) - 1, None)
            if isinstance(size, (cst.Tuple, cst.List)) and len(size.elements) == 1 and dtype not in FLOAT_DTYPES:
                return Val(target="index")
            return UNKNOWN
        if short in ("LongTensor",):
            return Val(target="index")
        if short == "tensor":
            data = arg_expr(e, 0, "data")
            if dtype in INDEX_DTYPES:
                return Val(target="index")
            if dtype in FLOAT_DTYPES:
                return Val(target="float")
            if (
                isinstance(data, cst.List)
                and data.elements
                and all(isinstance(el.value, cst.Integer) for el in data.elements)
            ):
                return Val(target="index")
            return UNKNOWN
        if short in (
            "rand",
            "randn",
            "zeros",
            "ones",
            "empty",
            "full",
            "rand_like",
            "randn_like",
            "zeros_like",
            "ones_like",
        ):
            target = "index" if dtype in INDEX_DTYPES else "float"
            if short.endswith("_like") or short == "full":
                return Val(target=target)
            pos_args = positional_args(e)
            dims: list | None = None
            if len(pos_args) == 1 and isinstance(pos_args[0].value, (cst.Tuple, cst.List)):
                dims = list(pos_args[0].value.elements)
            elif pos_args and all(not isinstance(a.value, (cst.Tuple, cst.List)) for a in pos_args):
                dims = pos_args
            # (N, F) / (N, C, H, W): batch-first once fed to a model, not on its own
            batched = "maybe" if dims is not None and len(dims) in (2, 4) and short in ("rand", "randn") else None
            return Val(target=target, batched=batched)
        return UNKNOWN

    def _module(self, frame: Frame, e: cst.Call, name: str, pos: list[Val], kw: dict[str, Val], star: bool) -> Val:
        """``nn.X(...)``: a layer object."""
        if star and name != "Sequential":
            return UNKNOWN
        if name in ACTIVATION_MODULES_TAG:
            dim0 = False
            if name in SOFTMAX_MODULES:
                dim0 = self._const(arg_expr(e, 0, "dim")) == 0
            return Val(obj=Obj("act", name, node=e, tag=ACTIVATION_MODULES_TAG[name], dim0=dim0))
        if name in AFFINE_MODULES_WIDTH:
            idx, kwname, kdim = AFFINE_MODULES_WIDTH[name]
            kv = kw[kwname] if kwname in kw else (pos[idx] if idx < len(pos) else UNKNOWN)
            k = kv.const if isinstance(kv.const, int) else None
            return Val(obj=Obj("affine", name, node=e, k=k, kdim=kdim))
        if name in DROPOUT_OR_IDENTITY_MODULES:
            return Val(obj=Obj("pass", name, node=e))
        if name in NORM_MODULES_BATCHED:
            return Val(obj=Obj("norm", name, node=e, batch=NORM_MODULES_BATCHED[name]))
        if name == "Flatten":
            start = arg_expr(e, 0, "start_dim")
            return Val(
                obj=Obj("flatten", name, node=e, batch="yes" if start is None or self._const(start) == 1 else None)
            )
        if name.startswith(POOL_MODULE_PREFIXES) or name in UPSAMPLE_MODULES:
            return Val(obj=Obj("pool", name, node=e))
        if name in LOSS_MODULES_KIND:
            return Val(obj=Obj("loss", name, node=e, loss=LOSS_MODULES_KIND[name]))
        if name == "Sequential":
            if star:
                return UNKNOWN
            layers: list[Val] = list(pos)
            if (
                len(pos) == 1
                and pos[0].items is not None
                and all(it.items is not None and len(it.items) == 2 for it in pos[0].items)
            ):
                layers = [it.items[1] for it in pos[0].items]  # Sequential(OrderedDict([(name, layer), ...]))
            return Val(obj=Obj("seq", "Sequential", node=e, layers=tuple(layers)))
        return UNKNOWN

    def _method(
        self, frame: Frame, e: cst.Call, recv: Val, m: str, pos: list[Val], kw: dict[str, Val], star: bool
    ) -> Val:
        o = recv.obj
        if o is not None and o.kind == "batch":
            if m in ("to", "cuda", "cpu"):
                return recv
            recv, o = Val(batched="yes"), None  # `for x in loader`: x is the batch tensor
        if o is not None:
            if m == "forward" and o.kind in (
                "inst",
                "self",
                "seq",
                "act",
                "affine",
                "pass",
                "norm",
                "flatten",
                "pool",
                "loss",
            ):
                return self._apply(frame, e, recv, pos, kw, star)
            if m in RETURNS_SELF_MODULE_METHODS:
                return recv
            if m in CONTAINER_MUTATOR_METHODS and isinstance(e.func, cst.Attribute):  # a method call: recv.m(...)
                self._invalidate(frame, e.func.value)
            return UNKNOWN
        base = m[:-1] if m.endswith("_") else m
        if m in ACTIVATION_METHODS:
            if base in SOFTMAX_FUNCTIONS_KIND:
                self._dim0(frame, e, arg_expr(e, 0, "dim"), recv, m)
                out = self._tagged(recv, SOFTMAX_FUNCTIONS_KIND[base], m, e)
            elif base == "sigmoid":
                out = self._tagged(recv, "sigmoid", m, e)
            else:
                out = self._tagged(recv, "act", m, e)
            if m.endswith("_") and isinstance(e.func, cst.Attribute) and isinstance(e.func.value, cst.Name):
                frame.env[e.func.value.value] = out
            return out
        if m in VALUE_PRESERVING_METHODS:
            return recv
        if m in ("long", "int"):
            return replace(recv, target="index", const=None)
        if m in ("float", "double", "half", "bfloat16"):
            return replace(recv, target=recv.target if recv.target in ("index", "onehot") else "float", const=None)
        if m in ("to", "type"):
            dtypes = [self._torch_name(a.value) for a in e.args]
            if any(d in INDEX_DTYPES for d in dtypes):
                return replace(recv, target="index")
            if any(d in FLOAT_DTYPES for d in dtypes):
                return replace(recv, target=recv.target if recv.target in ("index", "onehot") else "float")
            return recv
        if m == "size":
            if not e.args:
                return Val(const="shape")
            return Val(const="N") if self._const(arg_expr(e, 0, "dim")) == 0 else UNKNOWN
        if m in ("argmax",) or (m == "max" and (pos or "dim" in kw)):
            return self._prediction(frame, e, recv, m)
        if m in ("eq", "__eq__") and recv.tag == "pred":
            self._compared(frame, recv)
            return UNKNOWN
        if m == "log":
            return self._log(recv, e)
        if m == "exp":
            return self._exp(recv, e)
        if m in ("clamp", "clip", "clamp_"):
            return recv if recv.tag in ("softmax", "sigmoid", "log_softmax") else UNKNOWN
        if m in ("scatter_", "scatter", "fill_", "zero_"):
            return Val(target="float") if recv.target == "float" else UNKNOWN
        if m in (
            "view",
            "reshape",
            "flatten",
            "squeeze",
            "unsqueeze",
            "transpose",
            "permute",
            "view_as",
            "reshape_as",
            "t",
        ):
            return self._shape_method(frame, e, recv, m, args_offset=0)
        if m == "item":
            return UNKNOWN
        return UNKNOWN

    def _shape_method(self, frame: Frame, e: cst.Call, v: Val, m: str, args_offset: int) -> Val:
        """Reshaping keeps what made the values (softmax stays softmax); whether dim 0 is
        still the batch and how wide the class dim is are re-derived."""
        if v.tag is None and v.k is None and v.batched is None and v.target is None:
            if m == "flatten" and self._const(arg_expr(e, args_offset, "start_dim")) == 1:
                return Val(batched="yes")
            if m in ("view", "reshape"):
                args = self._shape_args(e, args_offset)
                if len(args) == 2 and self._is_batch_size(frame, args[0]) and self._const(args[1]) == -1:
                    return Val(batched="yes")
            return UNKNOWN
        batched, k = None, None
        if m in ("view", "reshape"):
            args = self._shape_args(e, args_offset)
            if len(args) >= 2:
                if len(args) == 2 and self._is_batch_size(frame, args[0]) and self._const(args[1]) == -1:
                    batched = "yes"
                elif self._const(args[0]) == -1:
                    batched = v.batched
            if args and v.k is not None:
                last = args[-1]
                if self._const(last) == v.k:
                    k = v.k
                elif v.kdim == "last" and self._is_last_size(last):
                    k = v.k
            return replace(v, batched=batched, k=k, kdim="last" if k is not None else None, items=None, const=None)
        if m == "flatten":
            start = self._const(arg_expr(e, args_offset, "start_dim"))
            return replace(v, batched="yes" if start == 1 else None, k=None, kdim=None)
        if m in ("view_as", "reshape_as"):
            return replace(v, batched=None, k=None, kdim=None)
        if m == "squeeze":
            # (N, T, 1) -> (N, T): the class dim is now another dim (pointer/span heads)
            return replace(v, batched=None, k=None, kdim=None, head=None)
        if m == "unsqueeze":
            return replace(v, batched=None, kdim=None if v.kdim == "chan" else v.kdim)
        # transpose / permute / t: the class count is unchanged, its position is not
        return replace(v, batched=None, kdim=None)

    def _shape_args(self, e: cst.Call, offset: int) -> list[cst.BaseExpression]:
        pos = [a.value for a in positional_args(e)][offset:]
        if len(pos) == 1 and isinstance(pos[0], (cst.Tuple, cst.List)):
            return [el.value for el in pos[0].elements]
        return pos

    def _is_batch_size(self, frame: Frame, e: cst.BaseExpression) -> bool:
        if isinstance(e, cst.Name):
            return self._lookup(frame, e.value).const == "N"
        if isinstance(e, cst.Call) and isinstance(e.func, cst.Attribute) and e.func.attr.value == "size":
            return self._const(arg_expr(e, 0, "dim")) == 0
        if isinstance(e, cst.Subscript) and isinstance(e.value, cst.Attribute) and e.value.attr.value == "shape":
            s = e.slice[0].slice if len(e.slice) == 1 else None
            return isinstance(s, cst.Index) and self._const(s.value) == 0
        return False

    def _is_last_size(self, e: cst.BaseExpression) -> bool:
        if isinstance(e, cst.Call) and isinstance(e.func, cst.Attribute) and e.func.attr.value == "size":
            return self._const(arg_expr(e, 0, "dim")) == -1
        if isinstance(e, cst.Subscript) and isinstance(e.value, cst.Attribute) and e.value.attr.value == "shape":
            s = e.slice[0].slice if len(e.slice) == 1 else None
            return isinstance(s, cst.Index) and self._const(s.value) == -1
        return False

    def _tagged(self, x: Val, tag: str, act: str, at: cst.CSTNode, keep_k: bool = True) -> Val:
        if not keep_k:
            return Val(tag=tag, act=act, at=at, batched=x.batched)
        return Val(tag=tag, act=act, at=at, k=x.k, kdim=x.kdim, head=x.head, batched=x.batched)

    def _prediction(self, frame: Frame, e: cst.Call, x: Val, how: str) -> Val:
        """``x.argmax(1)`` -> the indices; ``torch.max(x, 1)`` -> (values, indices)."""
        if not frame.mute:
            frame.rec.preds.append(PredUse(x, e))
        pred = Val(tag="pred", at=e)
        return pred if how == "argmax" else Val(items=(UNKNOWN, pred))

    def _metric_call(self, frame: Frame, name: str, pos: list[Val], kw: dict[str, Val]) -> None:
        """Predictions handed to an accuracy-style metric are single-label predictions."""
        low = name.lower()
        tokens = set(low.replace(".", "_").split("_"))
        if "accuracy" in low or tokens & {"acc", "f1", "confusion", "precision", "recall", "top1"}:
            self._compared(frame, *pos, *kw.values())

    def _compared(self, frame: Frame, *vals: Val) -> None:
        for v in vals:
            if v.tag == "pred" and v.at is not None and not frame.mute:
                frame.rec.compared.add(id(v.at))

    def _log(self, x: Val, e: cst.Call) -> Val:
        if x.tag == "softmax":
            return replace(x, tag="log_softmax", act="log(softmax)", model=None)
        return UNKNOWN

    def _exp(self, x: Val, e: cst.Call) -> Val:
        if x.tag == "log_softmax":
            return replace(x, tag="softmax", act="exp(log_softmax)", at=e, model=None)
        return UNKNOWN

    def _dim0(self, frame: Frame, e: cst.Call, dim: cst.BaseExpression | None, x: Val, display: str) -> None:
        if frame.mute or dim is None or self._const(dim) != 0:
            return
        frame.rec.dims.append(DimUse(e, x, frame.cls if frame.forward else None, display))

    def _loss(
        self, frame: Frame, e: cst.Call, kind: str, display: str, pos: list[Val], kw: dict[str, Val], ctor: Any = None
    ) -> None:
        if frame.mute:
            return
        inp = arg_expr(e, 0, "input")
        tgt = arg_expr(e, 1, "target")
        if inp is None:
            return
        inp_val = kw["input"] if "input" in kw else (pos[0] if pos else UNKNOWN)
        tgt_val = kw["target"] if "target" in kw else (pos[1] if len(pos) > 1 else UNKNOWN)
        frame.rec.losses.append(LossUse(kind, display, e, inp, inp_val, tgt, tgt_val, ctor))
