"""DataFrame columns: the tabular lessons' ``add_datepart`` and ``cont_cat_split``, and the checks
of the column names and the target's kind that ``TabularPandas`` runs.

>>> import pandas as pd
>>> df = add_datepart(pd.DataFrame({"saledate": ["2020-03-01", "2021-12-31"]}), "saledate")
>>> df[["saleYear", "saleMonth", "saleIs_year_end"]].values.tolist()
[[2020, 3, False], [2021, 12, True]]
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import pandas as pd

from fastlearn.data.blocks import CategoryBlock, RegressionBlock, as_block

DATE_ATTRS = ("Year", "Month", "Week", "Day", "Dayofweek", "Dayofyear", "Is_month_end", "Is_month_start",
              "Is_quarter_end", "Is_quarter_start", "Is_year_end", "Is_year_start")
TIME_ATTRS = ("Hour", "Minute", "Second")


def add_datepart(df: pd.DataFrame, field_name: str, prefix: str | None = None, drop: bool = True,
                 time: bool = False) -> pd.DataFrame:
    """Add columns for the parts of the date column ``field_name`` (year, month, week, day, day of
    week and of year, month/quarter/year start and end flags, ``Elapsed`` seconds since 1970; with
    ``time`` also hour, minute, second), named ``prefix + part`` (default prefix: the column name
    without "date"); ``drop`` removes the original column. Works on whole columns; returns ``df``.

    >>> import pandas as pd
    >>> add_datepart(pd.DataFrame({"date": ["2000-01-03"]}), "date").columns[:3].tolist()
    ['Year', 'Month', 'Week']
    """
    if field_name not in df.columns:
        raise ValueError(f"add_datepart: no column {field_name!r}; the columns are {list(df.columns)[:20]}")
    field = df[field_name]
    if not pd.api.types.is_datetime64_any_dtype(field):
        try:
            field = pd.to_datetime(field)
        except (ValueError, TypeError) as error:
            raise ValueError(f"add_datepart: column {field_name!r} does not parse as dates ({error}); convert it "
                             "with pd.to_datetime(df[col], format=...) first") from None
        df[field_name] = field
    prefix = re.sub("[Dd]ate$", "", field_name) if prefix is None else prefix
    accessor = field.dt
    for attr in DATE_ATTRS + (TIME_ATTRS if time else ()):
        if attr == "Week":
            values = accessor.isocalendar().week.astype(field.dt.day.dtype)
        else:
            values = getattr(accessor, {"Dayofweek": "day_of_week", "Dayofyear": "day_of_year"}.get(attr, attr.lower()))
        df[prefix + attr] = values
    epoch = pd.Timestamp("1970-01-01", tz=field.dt.tz)
    df[prefix + "Elapsed"] = (field - epoch) // pd.Timedelta(seconds=1)
    if drop:
        del df[field_name]
    return df


def cont_cat_split(df: pd.DataFrame, max_card: int = 20, dep_var: str | list[str] | None = None
                   ) -> tuple[list[str], list[str]]:
    """``(cont_names, cat_names)``: integer columns with more than ``max_card`` distinct values and
    float columns are continuous, the rest categorical; ``dep_var`` is left out.

    >>> import pandas as pd
    >>> cont_cat_split(pd.DataFrame({"a": range(30), "b": ["x"] * 30, "c": [1.5] * 30}), max_card=20)
    (['a', 'c'], ['b'])
    """
    skip = {dep_var} if isinstance(dep_var, str) else set(dep_var or [])
    cont_names, cat_names = [], []
    for name in df.columns:
        if name in skip:
            continue
        column = df[name]
        if pd.api.types.is_float_dtype(column) or (
                pd.api.types.is_integer_dtype(column) and column.nunique() > max_card):
            cont_names.append(name)
        else:
            cat_names.append(name)
    return cont_names, cat_names


def column_list(names, what: str) -> list[str]:
    """``names`` (one column name, a list of them or None) as a list; ``what`` names the argument in errors.

    >>> column_list("a", "cat_names"), column_list(None, "cont_names")
    (['a'], [])
    """
    if names is None:
        return []
    if isinstance(names, str):
        return [names]
    if not isinstance(names, Iterable):
        raise TypeError(f"{what}={names!r}; expected a column name or a list of column names")
    return list(names)


def check_columns(df: pd.DataFrame, names: Sequence[str], what: str) -> None:
    """A ValueError naming the ``what`` columns missing from ``df`` (or found in it more than once),
    the columns it has, and the fix.

    >>> check_columns(pd.DataFrame({"a": [1]}), ["a"], "cat_names")
    """
    missing = [name for name in names if name not in df.columns]
    if missing:
        raise ValueError(f"{what} names column(s) {missing} that the DataFrame does not have; its columns are "
                         f"{list(df.columns)[:20]}{'...' if len(df.columns) > 20 else ''}. Fix the names, or "
                         "add the columns to the data")
    repeated = [name for name in dict.fromkeys(names) if (df.columns == name).sum() > 1]
    if repeated:
        raise ValueError(f"{what} names column(s) {repeated} that the DataFrame has more than once (as pd.concat of "
                         "tables sharing a column gives); keep one of each, e.g. df = df.loc[:, "
                         "~df.columns.duplicated()], or rename them")


def target_kind(df: pd.DataFrame, y_names: list[str], y_block) -> str | None:
    """``"category"`` or ``"regression"`` from ``y_block``, else from the target columns' dtypes
    (all numbers, integers too, as in fastai: regression; strings or booleans: category); None
    without targets. Integer class labels take ``y_block=CategoryBlock()``.

    >>> target_kind(pd.DataFrame({"y": [0.5, 1.5]}), ["y"], None)
    'regression'
    >>> target_kind(pd.DataFrame({"y": [1, 2]}), ["y"], None), target_kind(pd.DataFrame({"y": ["a"]}), ["y"], None)
    ('regression', 'category')
    """
    if not y_names:
        return None
    if y_block is not None:
        block = as_block(y_block)
        if isinstance(block, CategoryBlock):
            return "category"
        if isinstance(block, RegressionBlock):
            return "regression"
        raise TypeError(f"y_block={y_block!r}; tabular targets take CategoryBlock or RegressionBlock")
    numbers = [pd.api.types.is_numeric_dtype(df[name]) and not pd.api.types.is_bool_dtype(df[name])
               for name in y_names]
    return "regression" if all(numbers) else "category"
