"""A reader for R's lazy-load databases: the ``data/Rdata.rdx`` + ``Rdata.rdb`` pair inside an
installed R package (how ``r-cran-modeldata`` and ``r-cran-janeaustenr`` ship their data).

The ``.rdx`` index is one compressed R serialization of a list whose ``variables`` entry maps
each object name to an (offset, length) pair in the ``.rdb`` file. Each record there is a
4-byte big-endian length of the uncompressed data followed by the compressed payload: zlib, or
a type byte then the payload (``Z`` = raw LZMA2 / xz, ``2`` = bzip2, ``0`` = stored). The
uncompressed bytes are an R serialization, decoded with the ``rdata`` package into pandas /
numpy objects (a data frame becomes a ``DataFrame``, a character vector a numpy array).

>>> from fastlearn.datasets.rdata import RLazyLoad
>>> db = RLazyLoad("usr/lib/R/site-library/modeldata/data/Rdata")   # doctest: +SKIP
>>> db.names()[:3]                                                   # doctest: +SKIP
['Chicago', 'Sacramento', 'Smithsonian']
>>> db.load("credit_data").shape                                     # doctest: +SKIP
(4454, 14)
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import pathlib
import struct
import warnings
import zlib


def decompress_record(record: bytes, name: str = "record") -> bytes:
    """Decompress one ``.rdb`` record (length header + payload) into R serialization bytes.

    >>> import zlib
    >>> payload = b"X\\n..."
    >>> decompress_record(len(payload).to_bytes(4, "big") + zlib.compress(payload)) == payload
    True
    """
    if len(record) < 5:
        raise ValueError(f"{name}: an R lazy-load record of {len(record)} bytes is too short")
    size = struct.unpack(">I", record[:4])[0]
    kind, body = record[4:5], record[5:]
    if kind == b"Z":
        data = lzma.decompress(body, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    elif kind == b"2":
        data = bz2.decompress(body)
    elif kind == b"0":
        data = body
    else:
        data = zlib.decompress(record[4:])
    if len(data) != size:
        raise ValueError(f"{name}: the record decompresses to {len(data)} bytes, its header "
                         f"says {size}; the package's data files are damaged, reinstall it")
    return data


def decompress_file(raw: bytes) -> bytes:
    """Undo the whole-file compression of an ``.rds``/``.rdx`` file (gzip, bzip2, xz or none).

    >>> decompress_file(b"X\\n" + b"rest")
    b'X\\nrest'
    """
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw)
    if raw[:3] == b"BZh":
        return bz2.decompress(raw)
    if raw[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(raw)
    return raw


def parse_r(data: bytes):
    """Convert R serialization bytes into Python objects (data frames into pandas).

    Needs the ``rdata`` package (``pip install rdata``, part of ``fastlearn[datasets]``).
    """
    try:
        from rdata.conversion import DEFAULT_CLASS_MAP, convert, dataframe_constructor
        from rdata.parser import parse_data
    except ImportError as error:
        raise ImportError("reading R data needs the rdata package: pip install rdata "
                          "(or pip install 'fastlearn[datasets]')") from error
    # tibbles are data frames with extra classes; read them as plain data frames
    constructors = {**DEFAULT_CLASS_MAP, "tbl_df": dataframe_constructor,
                    "tbl": dataframe_constructor}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Missing constructor for R class")
        return convert(parse_data(data, extension=".rds"), constructors)


class RLazyLoad:
    """One R lazy-load database, given the path without extension (``.../data/Rdata``).

    >>> RLazyLoad("/usr/lib/R/site-library/janeaustenr/data/Rdata").load("emma")[:2]  # doctest: +SKIP
    array(['EMMA', ''], dtype=object)
    """

    def __init__(self, base: str | os.PathLike):
        self.base = pathlib.Path(base)
        self.rdx = self.base.with_name(self.base.name + ".rdx")
        self.rdb = self.base.with_name(self.base.name + ".rdb")
        for file in (self.rdx, self.rdb):
            if not file.is_file():
                raise FileNotFoundError(f"R lazy-load database file {file} does not exist; "
                                        "expected the .rdx/.rdb pair of an R package's data folder")
        index = parse_r(decompress_file(self.rdx.read_bytes()))
        self.index = {str(name): (int(where[0]), int(where[1]))
                      for name, where in index["variables"].items()}

    def names(self) -> list[str]:
        """The objects stored, in index order."""
        return list(self.index)

    def load(self, name: str):
        """Read, decompress and convert one object."""
        if name not in self.index:
            raise KeyError(f"{name!r} is not in {self.base} (it holds {self.names()})")
        offset, length = self.index[name]
        with open(self.rdb, "rb") as file:
            file.seek(offset)
            record = file.read(length)
        return parse_r(decompress_record(record, f"{self.rdb}:{name}"))
