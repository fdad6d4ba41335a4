"""A shape failure on a GUESSED input is an NN002 info, not an NN201 error, unless the size
search really covered every size (vit-pytorch cct_3d: a positional embedding sized for 8
frames of 224x224; nnlint guessed cubes of 16, 32, 64, 112)."""

from __future__ import annotations

import textwrap

import pytest

from nnlint import api, engine, registry
from nnlint.config import Config

VIDEO = """
    import torch
    import torch.nn as nn

    class VideoTokens(nn.Module):
        def __init__(self, frames=4, size=24, dim=8):
            super().__init__()
            self.conv = nn.Conv3d(3, dim, 2, stride=2)
            self.pos = nn.Parameter(torch.zeros(1, (frames // 2) * (size // 2) ** 2, dim))

        def forward(self, video):
            x = self.conv(video).flatten(2).transpose(1, 2)
            return x + self.pos
"""

ODD_RESHAPE = """
    import torch.nn as nn

    class OddView(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4 * 38 * 38, 10)

        def forward(self, x):
            return self.fc(self.conv(x).reshape(-1, 4 * 38 * 38))
"""

VIDEO_LINEAR = """
    import torch.nn as nn

    class VideoHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(3, 4, 2, stride=2)
            self.fc = nn.Linear(4 * 2 * 12 * 12, 10)

        def forward(self, video):
            return self.fc(self.conv(video).flatten(1))
"""


@pytest.mark.parametrize("source", [VIDEO, ODD_RESHAPE, VIDEO_LINEAR], ids=["pos-embed-3d", "reshape", "linear-3d"])
def test_a_guess_that_does_not_fit_is_an_info(source, tmp_path):
    path = tmp_path / "guessed.py"
    path.write_text(textwrap.dedent(source))
    result = api.lint_in_process([str(path)], Config(), engine.Options(), registry.select(["NN"]))
    codes = {d.code: d for d in result.diagnostics}
    assert "NN201" not in codes, codes["NN201"].message
    assert "NN002" in codes and str(codes["NN002"].severity) in ("info", "Severity.INFO"), result.diagnostics
    assert "guessed input" in codes["NN002"].message


def test_a_time_limit_on_a_large_model_with_a_guessed_input_is_an_info_not_a_hang():
    """vit-pytorch's CCT() (88 M parameters, 3136 tokens at the 224x224 its positional
    embedding demands) met the 60 s limit in the forward on nnlint's guessed input: a tool
    limit (NN002 info). A small model (the hang fixture's 72 parameters) stays NN005."""
    from nnlint.passes.slow_model import slow_guess_message

    large = {"step": "forward", "model": "CCT", "line": 306, "params": 88_319_465, "guessed": True}
    msg = slow_guess_message(large, 60, "in step 'forward' of model CCT", "")
    assert msg and "CCT was not checked" in msg and "88.3 M parameters" in msg
    assert slow_guess_message({**large, "step": "probe forward"}, 60, "", "")
    assert slow_guess_message({**large, "params": 72}, 60, "", "") is None  # a hang in a small model
    assert slow_guess_message({**large, "guessed": False}, 60, "", "") is None  # the user's own input
    assert slow_guess_message({**large, "step": "import"}, 60, "", "") is None  # no forward ran
    assert slow_guess_message(None, 60, "", "") is None


def test_a_time_limit_in_an_extra_probe_measurement_is_an_info_not_a_hang():
    """vit-pytorch's SimpleViT met the 60 s limit in 'probe eval-mode checks' on a loaded machine,
    after its forward and backward had run: nnlint's own measurement ran long (NN002 info), even
    for a small model on the user's own input. The probe's forward itself stays NN005."""
    from nnlint.passes.slow_model import slow_guess_message

    small = {"step": "probe eval-mode checks", "model": "SimpleViT", "params": 72, "guessed": False}
    msg = slow_guess_message(small, 60, "in step 'probe eval-mode checks' of model SimpleViT", "")
    assert msg and "SimpleViT was not fully checked" in msg and "forward and backward ran" in msg
    assert slow_guess_message({**small, "step": "probe forward"}, 60, "", "") is None
    assert slow_guess_message({**small, "step": "probe backward"}, 60, "", "") is None
