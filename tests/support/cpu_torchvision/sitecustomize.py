"""Test environment only: make the CPU build of torchvision importable.

torchvision 0.28.0 is the release that matches the pinned torch 2.13.0, and PyPI has it
only as a CUDA build: its C extension (``torchvision/_C.so``, the detection ops) cannot
load against the CPU torch, and ``torchvision/__init__`` then fails while registering fake
kernels for those ops. The model builders (``torchvision.models``) are pure Python and do
not need the C ops, so the test suite installs torchvision beside the venv
(``make setup``: ``pip install --no-deps --target .venv/torchvision-cpu``) and this file,
put on ``PYTHONPATH`` by ``tests/conftest.py`` for every process the tests start, adds
that folder to ``sys.path`` and skips the fake-kernel registration. Nothing of nnlint
depends on it: a user's torchvision is imported as installed.
"""

import os
import sys
import types

_target = os.environ.get("NNLINT_TEST_TORCHVISION")
if _target and os.path.isdir(_target):
    if _target not in sys.path:
        sys.path.append(_target)
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
