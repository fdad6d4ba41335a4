"""NN403 reads the user's own modules beside a linted file (statically, never importing them):
``model = Net(...)`` with ``from model import Net`` is judged by the sibling model.py's class,
as a class of the same file would be (pytorch/examples super_resolution)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from nnlint.analysis.local_imports import imported_class_file, module_file, project_files
from nnlint.passes import source
from nnlint import registry

MAIN = textwrap.dedent(
    """\
    import torch
    from torch import nn
    from model import Net

    model = Net(upscale_factor=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.MSELoss()

    def train():
        for x, y in train_loader:
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            optimizer.step()

    def test():
        with torch.no_grad():
            for x, y in test_loader:
                prediction = model(x)

    for epoch in range(3):
        train()
        test()
    """
)
MODE_FREE = textwrap.dedent(
    """\
    import torch.nn as nn
    import torch.nn.init as init


    class Net(nn.Module):
        def __init__(self, upscale_factor):
            super(Net, self).__init__()
            self.relu = nn.ReLU()
            self.conv1 = nn.Conv2d(1, 64, (5, 5), (1, 1), (2, 2))
            self.conv2 = nn.Conv2d(64, upscale_factor ** 2, (3, 3), (1, 1), (1, 1))
            self.pixel_shuffle = nn.PixelShuffle(upscale_factor)
            self._initialize_weights()

        def forward(self, x):
            return self.pixel_shuffle(self.conv2(self.relu(self.conv1(x))))

        def _initialize_weights(self):
            init.orthogonal_(self.conv1.weight, init.calculate_gain("relu"))
    """
)
WITH_DROPOUT = MODE_FREE.replace("self.relu = nn.ReLU()", "self.relu = nn.Sequential(nn.ReLU(), nn.Dropout(0.5))")


def _nn403(tmp_path: Path, main: str = MAIN) -> list:
    path = tmp_path / "main.py"
    path.write_text(main)
    diags, crashes = source.run(str(path), main, [registry.all_rules()["NN403"]()])
    assert not crashes
    return diags


def test_a_mode_free_class_from_a_sibling_module_is_silent(tmp_path):
    (tmp_path / "model.py").write_text(MODE_FREE)
    assert _nn403(tmp_path) == []


def test_a_sibling_class_with_dropout_still_fires(tmp_path):
    (tmp_path / "model.py").write_text(WITH_DROPOUT)
    diags = _nn403(tmp_path)
    assert [d.line for d in diags] == [18]


def test_no_sibling_keeps_todays_behaviour(tmp_path):
    assert [d.line for d in _nn403(tmp_path)] == [18]  # `model` is an installed package: unknown


def test_module_import_and_relative_import_are_followed(tmp_path):
    (tmp_path / "model.py").write_text(MODE_FREE)
    as_module = MAIN.replace("from model import Net", "import model as m").replace("Net(upscale", "m.Net(upscale")
    assert _nn403(tmp_path, as_module) == []
    relative = MAIN.replace("from model import Net", "from .model import Net")
    assert _nn403(tmp_path, relative) == []


def test_an_unparsable_or_missing_class_keeps_firing(tmp_path):
    (tmp_path / "model.py").write_text("class Other:\n    pass\n")
    assert [d.line for d in _nn403(tmp_path)] == [18]
    (tmp_path / "model.py").write_text("def broken(:\n")
    assert [d.line for d in _nn403(tmp_path)] == [18]


def test_resolution_is_by_path_from_the_files_folder(tmp_path):
    (tmp_path / "model.py").write_text("")
    (tmp_path / "pkg" / "nets").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "nets" / "__init__.py").write_text("")
    folder = str(tmp_path)
    assert module_file(folder, "model") == os.path.join(folder, "model.py")
    assert module_file(folder, ".model") == os.path.join(folder, "model.py")
    assert module_file(folder, "pkg.nets") == os.path.join(folder, "pkg", "nets", "__init__.py")
    assert module_file(folder, "..model") is None  # a parent package: not followed
    assert module_file(folder, "torch") is None
    assert imported_class_file(folder, "model.Net") == (os.path.join(folder, "model.py"), "Net")
    assert imported_class_file(folder, "model.build") is None  # only classes (CapWords)


def test_project_files_lists_every_module_a_class_may_come_from(tmp_path):
    for name in ("model.py", "helpers.py", "other.py", "main.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "nets.py").write_text("")
    text = textwrap.dedent(
        """\
        import torch
        from model import (
            Net,  # the model
        )
        from helpers import width
        import other as o
        from pkg import nets
        """
    )
    got = [Path(p).relative_to(tmp_path).as_posix() for p in project_files(str(tmp_path / "main.py"), text)]
    assert got == ["model.py", "other.py", "pkg/nets.py"]  # helpers: no class imported from it
