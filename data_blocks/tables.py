"""``read_csv_file``: a CSV file as a DataFrame, with the file named in every error; and the
whole-column helpers of the tabular set-up: ``column_codes`` (a column as integer codes over its
distinct values), ``values_in_rows``, ``as_slice``, ``private_copy`` and ``set_column``.

pandas' own messages ("No columns to parse from file", "Could not determine delimiter") do not
say which file; the ``from_csv`` constructors of every application read through this.

>>> read_csv_file("missing.csv")   # doctest: +SKIP
Traceback (most recent call last):
FileNotFoundError: no CSV file at missing.csv; check the path and the file name
"""
from __future__ import annotations

import csv
import os

import numpy as np
import pandas as pd


def read_csv_file(path: str | os.PathLike, header: int | str | None = "infer", delimiter: str | None = ",",
                  skipinitialspace: bool = False) -> pd.DataFrame:
    """The table in the CSV file ``path`` (``delimiter=None`` guesses the delimiter).

    An empty file, a file with a header but no rows, or one pandas cannot parse raises a
    ValueError that names the file and what to fix.

    >>> import tempfile, pathlib
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = file.write_text("a,b\\n1,2\\n")
    >>> read_csv_file(file).shape
    (1, 2)
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no CSV file at {path}; check the path and the file name")
    if os.path.getsize(path) == 0:
        raise ValueError(f"the CSV file {path} is empty; it needs a header line and one row per item")
    try:
        # no delimiter: pandas sniffs it, which only its python engine can do
        frame = pd.read_csv(path, header=header, sep=delimiter, skipinitialspace=skipinitialspace,
                            engine="python" if delimiter is None else "c")
    except pd.errors.EmptyDataError:
        raise ValueError(f"the CSV file {path} is empty; it needs a header line and one row per "
                         "item") from None
    except (pd.errors.ParserError, csv.Error, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the CSV file {path}: {error}; check that it is a text table "
                         "with one row per line (and pass delimiter= if it is not a comma)") from None
    if len(frame) == 0:
        raise ValueError(f"the CSV file {path} has a header ({list(frame.columns)}) but no rows; add "
                         "one row per item")
    return frame


def column_codes(column: pd.Series) -> tuple[np.ndarray, object]:
    """``(codes, uniques)`` of a DataFrame column: row ``i`` holds ``uniques[codes[i]]``, and code
    -1 marks a missing value (None, NaN, NA). The rows are hashed once; what depends on the values
    (blank strings, a vocab, codes in a vocab) is then worked out on the few ``uniques`` and
    spread to the rows by indexing with ``codes``. ``uniques`` is an array (pandas' own for
    extension dtypes); unhashable values (lists) raise TypeError.

    >>> codes, uniques = column_codes(pd.Series(["b", None, "a", "b"]))
    >>> codes.tolist(), list(uniques)
    ([0, -1, 1, 0], ['b', 'a'])
    """
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(dtype=np.int64), column.cat.categories.to_numpy()
    if isinstance(dtype, np.dtype) or (isinstance(dtype, pd.StringDtype) and dtype.storage == "python"):
        values = column.to_numpy()  # object strings hash twice as fast as through pandas' string array
    else:
        values = column.array  # other extension arrays (nullable ints, Arrow) factorize natively
    codes, uniques = pd.factorize(values)
    return codes.astype(np.int64, copy=False), uniques


def values_in_rows(codes: np.ndarray, uniques, rows: slice | np.ndarray):
    """The ``uniques`` that the rows ``rows`` hold (missing values left out), in ``uniques`` order:
    the distinct values of those rows, from :func:`column_codes` without hashing them again.

    >>> codes, uniques = column_codes(pd.Series(["b", "a", None, "c"]))
    >>> list(values_in_rows(codes, uniques, slice(1, 3)))
    ['a']
    """
    seen = np.zeros(len(uniques), dtype=bool)
    row_codes = codes[rows]
    seen[row_codes[row_codes >= 0]] = True
    return uniques[seen]


def private_copy(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose changes never reach ``df``: shallow under pandas' copy-on-write
    (pandas 3, or the option on), where it costs nothing; a deep copy otherwise."""
    return df.copy(deep=not _copy_on_write())


def _copy_on_write() -> bool:
    return int(pd.__version__.split(".")[0]) >= 3 or pd.get_option("mode.copy_on_write") is True


def set_column(df: pd.DataFrame, name: str, values: np.ndarray) -> None:
    """``df[name] = values`` for a new array nothing else holds: kept as it is rather than copied
    (pandas copies a bare array it is given, to guard the caller's).

    >>> df = pd.DataFrame({"a": [1, 2]}); set_column(df, "b", np.array([3, 4])); df["b"].tolist()
    [3, 4]
    """
    df[name] = pd.Series(values, index=df.index, copy=False)


def as_slice(rows: np.ndarray) -> slice | np.ndarray:
    """``rows`` as a slice when they are consecutive positions (a view, no copy), else unchanged.

    >>> as_slice(np.arange(3, 7)), as_slice(np.array([0, 2]))
    (slice(3, 7, None), array([0, 2]))
    """
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and bool((np.diff(rows) == 1).all()):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows

