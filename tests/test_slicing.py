"""A script is never run (issue 11.1) and more models are found (issue 11.4): the slice of a
file nnlint executes, the guards of the child process, and discovery of module-level
models, factories and parts. In-process and fast (no child process) except the guard test."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

from nnlint.passes import loader, slicing  # noqa: E402


def _slice(src: str) -> slicing.Slice:
    return slicing.slice_body(ast.parse(textwrap.dedent(src)).body)


def _kept(sl: slicing.Slice) -> str:
    return ast.unparse(ast.Module(body=sl.body, type_ignores=[]))


def test_argparse_defaults_and_constants_the_models_read_are_kept_the_script_is_not():
    sl = _slice("""
        import argparse, os
        import numpy as np
        import torch.nn as nn
        from torchvision import datasets
        os.makedirs("images", exist_ok=True)
        parser = argparse.ArgumentParser()
        parser.add_argument("--img_size", type=int, default=32)
        parser.add_argument("--channels", type=int, default=1)
        opt = parser.parse_args()
        print(opt)
        img_shape = (opt.channels, opt.img_size, opt.img_size)
        dataset = datasets.MNIST("../data", download=True)
        size = len(dataset)

        class D(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(int(np.prod(img_shape)), 1)

            def steps_per_epoch(self):
                return size

        for epoch in range(10):
            pass
    """)
    kept = _kept(sl)
    assert "add_argument('--img_size'" in kept and "img_shape = " in kept and "opt = parser.parse_args()" in kept
    assert "makedirs" not in kept and "MNIST" not in kept and "print" not in kept and "for epoch" not in kept
    assert sl.unavailable["dataset"][0] == 13 and "datasets.MNIST()" in sl.unavailable["dataset"][1]
    assert "dataset (line 13)" in sl.unavailable["size"][1]


def test_a_module_level_model_is_built_as_defined_not_as_trained():
    sl = _slice("""
        import torch
        import torch.nn as nn
        model = nn.Sequential(nn.Linear(4, 2))
        model.load_state_dict(torch.load("ckpt.pt"))
        model.eval()
        for step in range(3):
            model.train()
    """)
    kept = _kept(sl)
    assert "model = nn.Sequential" in kept and "load_state_dict" not in kept and "eval()" not in kept
    assert "model" not in sl.unavailable and sl.instances["model"][0] == 4


@pytest.mark.parametrize("src, why", [
    ("model = models.resnet18(pretrained=True)", "downloads weights"),
    ("model = AutoModel.from_pretrained('bert-base-uncased')", "from_pretrained"),
    ("model = Net(len(open('vocab.txt').read()))", "open('vocab.txt')"),
])
def test_values_that_need_io_are_never_computed(src, why):
    sl = _slice(f"""
        import torch.nn as nn
        from torchvision import models
        from transformers import AutoModel

        class Net(nn.Module):
            def __init__(self, n=3):
                super().__init__()
                self.fc = nn.Linear(n, 2)

        {src}
    """)
    assert "model" in sl.unavailable and why in sl.unavailable["model"][1]


def test_a_kept_call_that_reads_a_missing_value_through_the_class_is_dropped():
    sl = _slice("""
        import torch.nn as nn
        with open("input.txt") as f:
            text = f.read()
        vocab_size = len(set(text))

        class CharRNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding(vocab_size, 8)

        model = CharRNN()
    """)
    assert "model = CharRNN()" not in _kept(sl) and "vocab_size" in sl.unavailable


def _module(tmp_path, src, name="user_model.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(src))
    module = loader.import_file(str(path))
    return module, loader.find_candidates(module, str(path), path.read_text(), {})


def test_discovery_finds_instances_factories_and_leaves_parts_losses_and_bases_with_a_note(tmp_path):
    _, cands = _module(tmp_path, """
        import torch
        import torch.nn as nn
        from abc import ABC, abstractmethod

        class Block(nn.Module):
            def __init__(self, cin, cout):
                super().__init__()
                self.conv = nn.Conv2d(cin, cout, 3, padding=1)

            def forward(self, x):
                return torch.relu(self.conv(x))

        class FocalLoss(nn.Module):
            def forward(self, logits, target):
                return logits.mean()

        class BaseModel(nn.Module, ABC):
            @abstractmethod
            def forward(self, x):
                ...

        class Mlp(BaseModel):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                return self.fc(x)

        def small_net(num_classes=10):
            return nn.Sequential(Block(3, 16), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes))

        def train(model, steps=10):
            return model

        head = nn.Sequential(Block(3, 8), nn.Flatten())
        criterion = nn.CrossEntropyLoss()
    """, name="discover_all.py")
    assert sorted(c.name for c in cands) == ["Mlp", "head", "small_net"]
    notes = "\n".join(loader.DISCOVERY_NOTES)
    assert "Block (line 6) not checked on its own: a part of head, small_net" in notes
    assert "FocalLoss (line 14) not checked: a loss module" in notes
    assert "BaseModel (line 18) not checked on its own: an abstract base class" in notes


def test_a_transformers_instance_gets_inputs_from_its_config(tmp_path):
    pytest.importorskip("transformers")
    _, cands = _module(tmp_path, """
        from transformers import BertConfig, BertForSequenceClassification
        config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=32)
        model = BertForSequenceClassification(config)
    """, name="hf_instance.py")
    (model,) = cands
    ids = model.inputs.kwargs["input_ids"]
    assert ids.shape == (8, 16) and ids.dtype == "int64" and ids.high == 100


def test_the_guards_refuse_network_and_writes_outside_the_folder(tmp_path):
    inside = tmp_path / "inside"
    inside.mkdir()
    code = textwrap.dedent(f"""
        import os, socket
        os.chdir({str(inside)!r})
        from nnlint.passes import sandbox
        sandbox.install({str(inside)!r})
        open("ok.txt", "w").write("x")
        for attempt in (lambda: open({str(tmp_path / 'out.txt')!r}, "w"),
                        lambda: socket.create_connection(("example.com", 80), timeout=1),
                        lambda: os.mkdir({str(tmp_path / 'newdir')!r})):
            try:
                attempt()
                print("ALLOWED")
            except PermissionError:
                pass
        print(len(sandbox.blocked()))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "ALLOWED" not in proc.stdout and proc.stdout.split()[-1] == "3"
    assert (inside / "ok.txt").exists() and not (tmp_path / "out.txt").exists() and not (tmp_path / "newdir").exists()


def test_a_decorated_definition_is_kept_a_registry_decorator_is_how_a_class_is_defined():
    sl = _slice("""
        import torch.nn as nn
        from mmdet.registry import MODELS

        @MODELS.register_module()
        class Head(nn.Module):
            pass

        for cfg in []:
            pass
    """)
    assert "class Head" in _kept(sl) and "Head" not in sl.unavailable


def test_an_in_place_call_on_a_model_that_is_not_computed_is_dropped_not_a_crash():
    # dcgan/main.py: nc is set in an if-chain over the data set, netG = Generator().to(device)
    # reads it through the class, then netG.apply(weights_init) changes the unavailable netG
    sl = _slice("""
        import torch.nn as nn
        dataset_name = input()
        if dataset_name == "mnist":
            nc = 1

        def weights_init(m):
            pass

        class Generator(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(nc, 8, 3)

        netG = Generator()
        netG.apply(weights_init)
    """)
    kept = _kept(sl)
    assert "netG = Generator()" not in kept and "netG.apply" not in kept
    assert "nc" in sl.unavailable["netG"][1]
