"""The environment nnlint runs in is not the user's bug: the child's private folders for the
usual cache writers (matplotlib), and NN007 for an import that failed because of the
environment (a package not installed where nnlint runs, a variable a launcher sets)."""

from __future__ import annotations

import io
import os
import textwrap
from pathlib import Path

import pytest

from nnlint import cli
from nnlint.passes import sandbox

pytest.importorskip("torch")


def _lint(tmp_path: Path, src: str, *extra: str) -> tuple[int, str, str]:
    path = tmp_path / "proj" / "train.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(src))
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main([str(path), "--isolated", "-v", *extra], stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def test_the_private_environment_points_every_writer_into_the_folder(tmp_path):
    env = sandbox.private_env(str(tmp_path))
    assert {"TMPDIR", "MPLCONFIGDIR"} <= set(env)
    assert all(v.startswith(str(tmp_path) + os.sep) for v in env.values())
    # torch hub and Hugging Face keep the user's folders: downloaded weights are read there
    assert not {"TORCH_HOME", "HF_HOME", "XDG_CACHE_HOME"} & set(env)


def test_importing_matplotlib_is_quiet_and_writes_nothing_in_home(tmp_path, monkeypatch):
    # time_sequence_prediction/train.py: `import matplotlib` tried ~/.config/matplotlib and
    # ~/.cache/matplotlib and printed two refusals
    pytest.importorskip("matplotlib")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NNLINT_WARM_WORKER", "0")  # the zygote's environment was fixed at its start
    rc, out, err = _lint(tmp_path, """
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                return self.fc(x)
    """)
    assert "refused while linting" not in err, err
    assert "checked Net" in err, err
    assert list(home.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "proj").iterdir()) == ["train.py"]


def _failure(tmp_path: Path, src: str, name: str = "envcase.py", monkeypatch=None):
    from nnlint.passes import loader

    path = tmp_path / name
    path.write_text(textwrap.dedent(src))
    with pytest.raises(loader.ImportFailure) as info:
        loader.import_file(str(path))
    return info.value


MODEL = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, N)
"""


@pytest.mark.parametrize("src, said", [
    # pytorch/examples: reinforcement_learning needs gymnasium, a pre-commit hook's env lacks it
    ("import torch.nn as nn\nimport nnlint_no_such_package_xyz\nN = 2\n",
     "nnlint_no_such_package_xyz is not installed where nnlint runs"),
    ("import torch.nn as nn\nfrom nnlint_no_such_package_xyz.sub import thing\nN = 2\n",
     "additional_dependencies"),
    # distributed/tensor_parallelism/tensor_parallel_example.py: a torchrun script
    ("import os\nimport torch.nn as nn\nN = int(os.environ['WORLD_SIZE'])\n",
     "WORLD_SIZE is not set where nnlint runs (a launcher such as torchrun sets it)"),
    ("import os\nimport torch.nn as nn\nN = int(os.getenv('NNLINT_TEST_UNSET_VAR'))\n",
     "NNLINT_TEST_UNSET_VAR is not set where nnlint runs (os.getenv returned None)"),
    ("import torch.nn as nn\nfrom torch.nn import NoSuchLayerXyz\nN = 2\n",
     "the installed torch.nn"),
    # dcgan/main.py: `--dataset` is required=True
    ("import argparse\nimport torch.nn as nn\np = argparse.ArgumentParser()\n"
     "p.add_argument('--dataset', required=True)\np.add_argument('--n', type=int, default=2)\n"
     "opt = p.parse_args()\nN = opt.n\n",
     "the following arguments are required: --dataset"),
])
def test_an_import_that_fails_because_of_the_environment_says_what_would_let_nnlint_check(
        tmp_path, monkeypatch, src, said):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("NNLINT_TEST_UNSET_VAR", raising=False)
    monkeypatch.setattr("sys.argv", ["envcase.py"])
    f = _failure(tmp_path, src + MODEL)
    assert f.environment is not None and said in f.environment, (f.exc, f.environment)


@pytest.mark.parametrize("src", [
    "import torch.nn as nn\nN = int('ten')\n",  # fixtures/hostile/import_raises.py
    "import torch.nn as nn\nN = {'a': 1}['b']\n",  # a KeyError of the file's own dict
    "import torch.nn as nn\nN = None + 1\n",
])
def test_a_bug_in_the_file_stays_nn003(tmp_path, src):
    assert _failure(tmp_path, src + MODEL).environment is None


def test_a_module_missing_from_the_users_own_package_stays_nn003(tmp_path, monkeypatch):
    pkg = tmp_path / "userpkg_envcase"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helpers.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    f = _failure(pkg, "import torch.nn as nn\nfrom userpkg_envcase.helpers import Y as N\n" + MODEL,
                 name="train.py")
    assert f.environment is None, f.environment
    f = _failure(pkg, "import torch.nn as nn\nimport userpkg_envcase.nothere\nN = 2\n" + MODEL, name="train2.py")
    assert f.environment is None, f.environment


@pytest.mark.slow
def test_nn007_is_an_info_and_the_files_models_count_as_not_checked(tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    rc, out, err = _lint(tmp_path, """
        import os
        import torch.nn as nn

        WORLD = int(os.environ["WORLD_SIZE"])

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.block = Block()
                self.fc = nn.Linear(4, WORLD)

            def forward(self, x):
                return self.fc(self.block(x))
    """)
    assert rc == 0, out + err
    assert "train.py:5:1: NN007 info: importing the file raised KeyError: 'WORLD_SIZE'" in out, out
    assert "NN003" not in out
    assert "1 model found: 0 checked, 1 not checked (1 NN007)" in out, out


def test_a_refused_download_a_missing_data_file_and_a_relative_import_are_the_environment(tmp_path):
    from nnlint.passes.graph.import_environment import environment_cause

    real = str(tmp_path / "train.py")
    refusal = PermissionError("nnlint: network access is off while linting (socket.connect)")
    try:  # a library wraps the refusal (urllib's URLError is an OSError)
        try:
            raise refusal
        except PermissionError as exc:
            raise OSError("download failed") from exc
    except OSError as wrapped:
        said = environment_cause(wrapped, real, 3, ["network: socket.connect ('example.org', 443)"])
    assert said is not None and "refused a download" in said
    # a refusal in the log does not turn a bug of the file into the environment's doing
    assert environment_cause(ValueError("invalid literal"), real, 3, ["write: /home/u/x"]) is None
    said = environment_cause(FileNotFoundError(2, "No such file", "vocab.txt"), real, 3, [])
    assert said is not None and "private temporary folder" in said
    said = environment_cause(ImportError("attempted relative import with no known parent package"), real, 1, [])
    assert said is not None and "__init__.py" in said
