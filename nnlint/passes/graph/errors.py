"""Tells why an example forward raised: a shape error, a meta/fake-tensor limitation, or another error."""

from __future__ import annotations

import re

SHAPE_WORDS = re.compile(
    r"shape|size|dimension|channel|mat1|mat2|must match|elements|reduction dim|expected input|input_size|"
    r"normalized_shape|cannot be multiplied|out of range|expected [0-9]d|[0-9]d input|kernel size|padded input|"
    r"broadcast|to have [0-9]+ channels|same number of dimensions|got input of|invalid for input",
    re.I,
)
META_WORDS = re.compile(
    r"meta|data-dependent|data dependent|cannot be converted to Scalar|FakeTensor|"
    r"cannot be called on|register_meta|unimplemented",
    re.I,
)


def classify_error(exc: BaseException) -> str:
    msg = str(exc)
    if isinstance(exc, NotImplementedError) or META_WORDS.search(msg):
        return "meta"
    if "index out of range in self" in msg:
        return "error"
    if isinstance(exc, (RuntimeError, ValueError, IndexError)) and SHAPE_WORDS.search(msg):
        return "shape"
    return "error"
