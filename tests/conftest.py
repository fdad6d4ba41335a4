from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
TORCHVISION_SHIM = ROOT / "tests" / "support" / "cpu_torchvision"


def _enable_cpu_torchvision() -> None:
    """torchvision for the tests' real models (see tests/support/cpu_torchvision): in this
    process and, through PYTHONPATH, in every child process (nnlint's workers)."""
    target = Path(sys.prefix) / "torchvision-cpu"
    if not target.is_dir():
        return
    os.environ["NNLINT_TEST_TORCHVISION"] = str(target)
    paths = [str(TORCHVISION_SHIM), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    if str(target) not in sys.path:
        sys.path.append(str(target))
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))


_enable_cpu_torchvision()
# the result cache stays off in tests (they lint fixtures in this checkout); the cache's
# own tests turn it on with a temporary cache folder
os.environ.setdefault("NNLINT_NO_CACHE", "1")


@pytest.fixture
def root() -> Path:
    return ROOT


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def pytest_report_header(config):
    return f"nnlint tests on Python {sys.version.split()[0]}"


@pytest.fixture(autouse=True)
def _seeded_torch():
    """Every test starts from the same torch RNG state, whatever ran before it in this
    worker: in-process probes on `torch.randn` inputs give the same numbers each run."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(0)
    yield
