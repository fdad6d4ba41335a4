"""A list input (NaViT's list of images) reaches forward as ONE argument, and the probe
measures nested (jagged) tensors by their values (vit-pytorch na_vit_nested_tensor)."""

from __future__ import annotations

import torch

from nnlint.passes.graph.specs import InputSpec, TensorSpec
from nnlint.passes.probe.tensors import call_model, moments


def test_a_single_list_argument_is_not_unpacked():
    spec = InputSpec(args=[[TensorSpec((3, 8, 8), "float32"), TensorSpec((3, 4, 8), "float32")]])
    inputs = spec.as_example_inputs("cpu")
    got = call_model(lambda images: len(images), inputs)  # type: ignore[arg-type]
    assert got == 2
    one = InputSpec(args=[TensorSpec((2, 3), "float32")]).as_example_inputs("cpu")
    assert isinstance(one, torch.Tensor)  # a single tensor stays as it was


def test_moments_of_a_nested_tensor():
    parts = [torch.ones(2, 4), torch.full((3, 4), 2.0)]
    nt = torch.nested.as_nested_tensor(parts, layout=torch.jagged)
    total, norm = moments(nt).tolist()
    flat = torch.cat([p.reshape(-1) for p in parts])
    assert abs(total - flat.sum().item()) < 1e-5
    assert abs(norm - flat.norm().item()) < 1e-5
