"""A reader for the IDX format of the MNIST family (Fashion-MNIST's ``*-ubyte.gz`` files).

An IDX file is a big-endian header: two zero bytes, a type code (``0x08`` = uint8, ...), the
number of dimensions, then each dimension as a 4-byte integer; the data follows, row-major.
Files ending in ``.gz`` (or starting with the gzip magic) are decompressed on the fly.

>>> from fastlearn.datasets.idx import read_idx
>>> images = read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")  # doctest: +SKIP
>>> images.shape, images.dtype                                                        # doctest: +SKIP
((10000, 28, 28), dtype('uint8'))
"""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file into an array of its shape.

    >>> parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])).tolist()
    [7, 8, 9]
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ValueError(f"{name} is not an IDX file (header {raw[:4]!r}); expected two zero "
                         f"bytes, a type code in {sorted(IDX_TYPES)} and a dimension count")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{name} is truncated or padded: its header promises shape {shape} "
                         f"({expected} bytes of data), the file holds {len(raw) - header}; "
                         "reinstall the file's package")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not.

    >>> read_idx("train-labels-idx1-ubyte.gz")[:3]   # doctest: +SKIP
    array([9, 0, 0], dtype=uint8)
    """
    with open(path, "rb") as file:
        raw = file.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return parse_idx(raw, str(path))
