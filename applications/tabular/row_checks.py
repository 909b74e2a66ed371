"""The checks on a table's rows that ``TabularPandas`` runs before its procs see them: splits
that are row positions, rows without a target, an empty table or training split, continuous and
regression columns that hold text or infinities; and ``rows_frame``, which makes new rows given
one by one (``predict``, ``test_dl``) one DataFrame.

Each refusal is a ValueError that names the column, a row and the value, and says how to fix it.

>>> import pandas as pd
>>> as_numbers(pd.Series(["1", "2.5"]), "column 'b'", "clean it").tolist()
[1.0, 2.5]
>>> as_numbers(pd.Series(["1", "two"]), "column 'b'", "clean it")
Traceback (most recent call last):
ValueError: column 'b' holds non-numbers (e.g. 'two' at row 1; 1 in all); clean it
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from fastlearn.data.checks import missing_in_columns, missing_targets_error, row_names


def check_row_splits(splits, n: int) -> list[np.ndarray]:
    """``splits`` as arrays of row positions in ``0..n-1`` (None: every row trains), with an empty
    validation split added to a lone training split.

    >>> [s.tolist() for s in check_row_splits([[0, 2]], 3)]
    [[0, 2], []]
    """
    if splits is None:
        return [np.arange(n), np.arange(0)]
    splits = [np.array(s if isinstance(s, (np.ndarray, list, tuple)) else list(s), dtype=np.int64)
              for s in splits]
    for i, split in enumerate(splits):
        if len(split) and (split.min() < 0 or split.max() >= n):
            raise ValueError(f"splits[{i}] holds positions outside 0..{n - 1} (min {split.min()}, max "
                             f"{split.max()}); splits are row positions (0-based), not index labels")
    if len(splits) == 1:
        splits.append(np.arange(0))
    return splits


def without_missing_targets(df: pd.DataFrame, y_names: Sequence[str], splits: list[np.ndarray],
                            missing_targets: str = "raise") -> tuple[pd.DataFrame, list[np.ndarray]]:
    """``(df, splits)`` as they are if every target is there; else an error naming the rows, or
    (``"drop"``) the rows left out of ``df`` and of the splits, with a warning.

    >>> df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", None, "b"]})
    >>> with warnings.catch_warnings(record=True):   # "dropped 1 of 3 rows with a missing target ..."
    ...     df, splits = without_missing_targets(df, ["y"], [np.array([0, 1]), np.array([2])], "drop")
    >>> df["x"].tolist(), [s.tolist() for s in splits]
    ([1, 3], [[0], [1]])
    """
    missing = missing_in_columns(df, y_names)
    used = np.zeros(len(df), dtype=bool)
    for split in splits:
        used[split] = True
    missing &= used  # rows in no split are never read
    if not missing.any():
        return df, splits
    positions = np.flatnonzero(missing).tolist()
    if missing_targets == "raise":
        first = df[y_names].iloc[positions[0]]
        raise missing_targets_error(df, positions, f"column(s) {y_names}",
                                    first.iloc[0] if len(first) == 1 else first.tolist())
    warnings.warn(f"TabularPandas: dropped {len(positions)} of {len(df)} rows with a missing target "
                  f"(missing_targets='drop'): {row_names(df, positions)}", RuntimeWarning, stacklevel=3)
    new_position = np.cumsum(~missing) - 1
    return df[~missing], [new_position[split[~missing[split]]] for split in splits]


def check_training_rows(df: pd.DataFrame, splits: Sequence[np.ndarray]) -> None:
    """An empty table or training split is an error saying which, before any proc learns from it.

    >>> check_training_rows(pd.DataFrame({"x": [1]}), [np.array([], dtype=np.int64), np.array([0])])
    Traceback (most recent call last):
    ValueError: the training split is empty: splits[0] selects none of the 1 rows (the validation split has 1); ...
    """
    if len(df) == 0:
        raise ValueError(f"the table has no rows (columns {list(df.columns)[:20]}); the procs and "
                         "the model learn from its training rows: pass a DataFrame with rows (check the filter "
                         "or the file it came from)")
    if len(splits[0]) == 0:
        raise ValueError(f"the training split is empty: splits[0] selects none of the {len(df)} rows "
                         f"(the validation split has {len(splits[1])}); the procs and the model learn "
                         "from the training rows: pass splits with training rows, e.g. "
                         "RandomSplitter(0.2)(range(len(df)))")


def check_continuous(df: pd.DataFrame, cont_names: Sequence[str], source: str) -> pd.DataFrame:
    """``df`` with its continuous columns ``cont_names`` made float64, changed in place; text that
    is not a number or an infinite value is an error naming the column of ``source`` and a row.

    >>> check_continuous(pd.DataFrame({"b": ["1", "2"]}), ["b"], "the data")["b"].dtype
    dtype('float64')
    """
    for name in cont_names:
        df[name] = as_numbers(df[name], f"continuous column {name!r} of {source}",
                              "list it in cat_names instead, or clean the column").astype("float64")
        values = df[name].to_numpy()
        infinite = np.isinf(values)
        if infinite.any():
            first = f"{float(values[infinite][0])} at row {df.index[infinite].tolist()[0]!r}"
            raise ValueError(
                f"continuous column {name!r} of {source} holds infinite values (e.g. {first}; "
                f"{infinite.sum()} in all), "
                f"which normalize to NaN or infinite inputs; replace them with NaN for FillMissing to fill "
                f"(df[{name!r}] = df[{name!r}].replace([np.inf, -np.inf], np.nan)), or clip the column")
    return df


def as_numbers(column: pd.Series, what: str, fix: str) -> pd.Series:
    """``column`` as numbers; a value that is not one is a ValueError naming ``what``, the value,
    its row and ``fix`` (see the module's example)."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column
    if pd.api.types.is_datetime64_any_dtype(column) or pd.api.types.is_timedelta64_dtype(column):
        # as numbers, a missing date would be -9.2e18 (not NaN) and the scale would follow the unit
        raise ValueError(f"{what} holds dates or durations ({column.dtype}), not numbers; split a date into "
                         f"numbers with add_datepart(df, {column.name!r}) and list the columns it adds, or "
                         f"convert it yourself (e.g. days since a start, with NaN where it is missing)")
    converted = pd.to_numeric(column, errors="coerce")
    bad = (converted.isna() & column.notna()).to_numpy()
    if bad.any():
        raise ValueError(f"{what} holds non-numbers (e.g. {column[bad].iloc[0]!r} at row "
                         f"{column.index[bad].tolist()[0]!r}; {bad.sum()} in all); {fix}")
    return converted


def rows_frame(items) -> pd.DataFrame:
    """New rows as one DataFrame: a DataFrame as it is, or a list of rows (Series, one-row
    DataFrames, dicts); no rows, or a DataFrame of several rows given as one row, is a ValueError.

    >>> rows_frame([pd.Series({"a": 1}), pd.DataFrame({"a": [2]})])["a"].tolist()
    [1, 2]
    """
    if isinstance(items, pd.DataFrame):
        df = items
    else:
        rows = []
        for item in items:
            if isinstance(item, pd.DataFrame):
                if len(item) != 1:
                    raise ValueError(
                        f"predict takes one row (a Series or a one-row DataFrame), got a DataFrame of {len(item)} "
                        "rows; for several rows use learn.predict_batch(rows) or "
                        "learn.get_preds(dl=learn.dls.test_dl(df))")
                item = item.iloc[0]
            rows.append(item.to_dict() if isinstance(item, pd.Series) else dict(item))
        df = pd.DataFrame(rows)
    if len(df) == 0:
        raise ValueError("no rows to predict: test_dl got an empty table or list; pass a DataFrame with at least "
                         "one row, or a list of rows (Series or dicts)")
    return df
