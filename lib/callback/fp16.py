"""Mixed precision under the course's path ``fastai.callback.fp16``: the ``MixedPrecision``
callback (defined in :mod:`fastlearn.precision`) and ``to_fp16`` / ``to_bf16`` / ``to_fp32`` as
functions of a learner (the same as the Learner methods).

>>> from fastlearn.callback.fp16 import *
>>> MixedPrecision("bf16").precision
'bf16'
"""
from __future__ import annotations

from fastlearn.precision import MixedPrecision, set_precision

__all__ = ["MixedPrecision", "set_precision", "to_bf16", "to_fp16", "to_fp32"]


def to_fp16(learn):
    """``learn.to_fp16()``: float16 autocast with a gradient scaler (bfloat16 on a CPU); returns ``learn``."""
    return learn.to_fp16()


def to_bf16(learn):
    """``learn.to_bf16()``: bfloat16 autocast; returns ``learn``."""
    return learn.to_bf16()


def to_fp32(learn):
    """``learn.to_fp32()``: back to full precision; returns ``learn``."""
    return learn.to_fp32()
