from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


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
