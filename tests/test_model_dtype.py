"""A model the file's script converts (``seq.double()``) is built and fed in that dtype, and a
dtype clash on a guessed input is never reported as a bug (pytorch/examples
time_sequence_prediction/train.py)."""

from __future__ import annotations

import io
import textwrap

import pytest

from nnlint.passes import model_dtype


@pytest.mark.parametrize("src, want", [
    ("seq = Sequence()\nseq.double()\n", {"Sequence": "float64", "seq": "float64"}),
    ("model = Net(3).to(device).double()\n", {"Net": "float64"}),
    ("model = Net()\nmodel = model.to(device, dtype=torch.float64)\n", {"Net": "float64", "model": "float64"}),
    ("net = Net()\nnet.half()\n", {"Net": "float16", "net": "float16"}),
    ("torch.set_default_dtype(torch.float64)\n", {model_dtype.ALL: "float64"}),
    # two dtypes for one model: nnlint cannot tell which, so none
    ("m = Net()\nm.double()\nm.half()\n", {}),
    # a tensor's conversion is not a model's
    ("x = torch.randn(3).double()\n", {}),
    ("model = Net()\nmodel.to(device)\n", {}),
])
def test_conversions_are_read_from_the_file(src, want):
    got = model_dtype.converted("import torch\n" + src)
    assert {k: v for k, v in got.items() if k != "torch"} == want


def test_a_dtype_error_is_told_apart():
    assert model_dtype.mismatch(RuntimeError("mat1 and mat2 must have the same dtype, but got Double and Float"))
    assert model_dtype.mismatch(RuntimeError("Input type (double) and bias type (float) should be the same"))
    assert not model_dtype.mismatch(RuntimeError("mat1 and mat2 shapes cannot be multiplied (8x3 and 4x2)"))


SEQUENCE = """
    import torch
    import torch.nn as nn

    class Sequence(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm1 = nn.LSTMCell(1, 8)
            self.linear = nn.Linear(8, 1)

        def forward(self, input):
            h = torch.zeros(input.size(0), 8, dtype=torch.double)
            c = torch.zeros(input.size(0), 8, dtype=torch.double)
            outputs = []
            for input_t in input.split(1, dim=1):
                h, c = self.lstm1(input_t, (h, c))
                outputs += [self.linear(h)]
            return torch.cat(outputs, dim=1)
"""


@pytest.mark.slow
@pytest.mark.parametrize("script, want", [
    # the script converts it: built and fed in float64, checked
    ('if __name__ == "__main__":\n    seq = Sequence()\n    seq.double()\n', "1 checked in"),
    # no conversion: the guessed float32 input clashes with the float64 states: NN002, never NN005
    ("", "NN002 info"),
])
def test_a_float64_model_is_checked_as_converted_or_reported_as_not_checked(tmp_path, script, want):
    from nnlint import cli

    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(SEQUENCE) + script)
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main([str(path), "--isolated", "-v"], stdout=out, stderr=err)
    assert "NN005" not in out.getvalue() and rc == 0, out.getvalue()
    assert want in out.getvalue(), out.getvalue() + err.getvalue()
