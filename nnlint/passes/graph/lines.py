"""Maps what a tracer sees to the user's own file: which frame, traceback or stack trace is theirs."""

from __future__ import annotations

import os
import re
from typing import Any

#: one frame of a formatted stack trace: (file, line)
FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_WRAPPER_FILES = (
    "/torch/overrides.py",
    "/torch/fx/",
    "/torch/nn/functional.py",
    "/torch/functional.py",
    "/torch/_tensor.py",
    "/torch/utils/_device.py",
    "/nnlint/passes/graph/",
)


class UserFile:
    """Tells frames of the linted file from everything else."""

    def __init__(self, path: str) -> None:
        self.real = os.path.realpath(path)
        self._cache: dict[str, bool] = {}

    def owns(self, filename: str) -> bool:
        hit = self._cache.get(filename)
        if hit is None:
            hit = self._cache[filename] = os.path.realpath(filename) == self.real
        return hit

    def line_from_stack_trace(self, text: str | None) -> int | None:
        """fx ``node.stack_trace`` is outermost-first: the last frame in the file wins."""
        if not text:
            return None
        found = None
        for name, line in FRAME.findall(text):
            if self.owns(name):
                found = int(line)
        return found

    def called_directly(self, frame: Any) -> bool:
        """Is the first frame outside torch's dispatch wrappers (fx, overrides,
        torch.nn.functional) in the linted file? False for ops run inside a library
        helper such as ``pad_packed_sequence``."""
        while frame is not None:
            name = frame.f_code.co_filename.replace("\\", "/")
            if not any(w in name for w in _WRAPPER_FILES):
                return self.owns(frame.f_code.co_filename)
            frame = frame.f_back
        return False

    def line_from_frames(self, frame: Any) -> int | None:
        while frame is not None:
            if self.owns(frame.f_code.co_filename):
                return frame.f_lineno
            frame = frame.f_back
        return None

    def line_from_traceback(self, tb: Any) -> int | None:
        found = None
        while tb is not None:
            if self.owns(tb.tb_frame.f_code.co_filename):
                found = tb.tb_lineno
            tb = tb.tb_next
        return found
