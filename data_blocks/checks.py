"""Checks on the data before anything trains: missing targets, files on both sides of a split;
and the error for a batch whose items differ in size.

A target that is missing (an empty CSV cell read as NaN, an empty label, a NaN regression value)
would otherwise become a class ``nan`` or train the weights to NaN; a file that is in both the
training and the validation set makes the validation metrics lie. Both are refused here, with
the rows named.

>>> is_missing(float("nan")), is_missing(""), is_missing(["cat", None]), is_missing([]), is_missing("dog")
(True, True, True, False, False)
>>> missing_positions([1.0, None, 3.0, float("inf")])
[1, 3]
"""
from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable, Sequence

import numpy as np
import torch

MISSING_TARGETS = ("raise", "drop")


def is_missing(value) -> bool:
    """True for None, NaN / inf, pandas' NA, an empty or blank string, or a list, array or tensor
    holding one of them. An empty list is not missing (an item with no labels, multi-label).

    >>> is_missing(np.array([1.0, np.nan])), is_missing(torch.tensor([2.0])), is_missing(0)
    (True, False, False)
    """
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, (float, np.floating)):
        return not math.isfinite(value)
    if isinstance(value, torch.Tensor):
        return value.is_floating_point() and not bool(torch.isfinite(value).all())
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return not bool(np.isfinite(value).all())
        return value.dtype == object and any(is_missing(v) for v in value.ravel())
    if isinstance(value, (list, tuple)):
        return any(is_missing(v) for v in value)
    return type(value).__name__ in ("NAType", "NaTType")


def missing_positions(values: Sequence, missing: Callable = is_missing) -> list[int]:
    """The positions of ``values`` that ``missing`` (default :func:`is_missing`) flags."""
    return [i for i, value in enumerate(values) if missing(value)]


def row_names(items, positions: Sequence[int], limit: int = 10) -> str:
    """Rows as a user finds them: a DataFrame's index labels, else 0-based positions."""
    shown = list(positions[:limit])
    if hasattr(items, "index") and hasattr(items, "columns"):
        shown = [items.index[i] for i in shown]
        shown = [int(i) if isinstance(i, (int, np.integer)) else i for i in shown]
        what = "rows (index labels of the table)"
    else:
        what = "items (positions, from 0)"
    more = f" and {len(positions) - limit} more" if len(positions) > limit else ""
    return f"{what} {shown}{more}"


def missing_in_columns(df, columns: Sequence[str]) -> np.ndarray:
    """A boolean mask of the rows of the DataFrame ``df`` where any of ``columns`` is missing
    (NaN, inf, an empty or blank string), computed on whole columns.

    >>> import pandas as pd
    >>> missing_in_columns(pd.DataFrame({"y": ["a", " ", None], "z": [1.0, 2.0, 3.0]}), ["y", "z"]).tolist()
    [False, True, True]
    """
    from fastlearn.data.tables import column_codes  # pandas is loaded: df is a DataFrame
    missing = np.zeros(len(df), dtype=bool)
    for name in columns:
        column = df[name]
        if column.dtype.kind in "OSU":  # strings: blank ones are missing too, judged once per distinct value
            try:
                codes, uniques = column_codes(column)
            except TypeError:  # unhashable values (lists): the strings among them one by one
                missing |= column.isna().to_numpy()
                try:
                    missing |= column.str.strip().eq("").to_numpy(dtype=bool, na_value=False)
                except AttributeError:  # no strings in the column
                    pass
                continue
            blank = [isinstance(value, str) and value.strip() == "" for value in uniques]
            missing |= np.array(blank + [True], dtype=bool)[codes]  # code -1 (missing) takes the last
            continue
        missing |= column.isna().to_numpy()
        if column.dtype.kind == "f":
            missing |= ~np.isfinite(column.to_numpy())
    return missing


def missing_targets_error(items, positions: Sequence[int], where: str, example) -> ValueError:
    """The error for targets that are missing: how many, which rows, and the two ways out."""
    example = example.item() if isinstance(example, np.generic) else example
    return ValueError(
        f"{len(positions)} of {len(items)} items have a missing or empty target ({where}; e.g. "
        f"{example!r}): {row_names(items, positions)}. A missing label would become "
        "a class of its own and a NaN target trains the weights to NaN; fill or remove those rows, or "
        "pass missing_targets='drop' to drop them with a warning")


def check_missing_targets_arg(missing_targets: str) -> str:
    if missing_targets not in MISSING_TARGETS:
        raise ValueError(f"missing_targets={missing_targets!r}; expected 'raise' (refuse rows without a "
                         "target, naming them) or 'drop' (leave them out, with a warning)")
    return missing_targets


def _file_key(value) -> tuple[int, int] | None:
    """``(device, inode)`` of a regular file named by ``value`` (a path), else None."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value or len(value) > 4096 or "\n" in value:
        return None
    try:
        info = os.stat(value)
    except (OSError, ValueError):
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


def check_shared_files(values: Sequence, splits: Sequence[Sequence[int]], splitter=None) -> None:
    """Refuse splits where one file (however it is reached: another path, a link) is in two of
    them; ``values`` are the items' first inputs, and only those naming files are compared.

    >>> check_shared_files(["a.png", "b.png"], [[0], [1]])
    """
    owner: dict[tuple[int, int], tuple[int, int]] = {}
    for k, split in enumerate(splits):
        for i in split:
            key = _file_key(values[i])
            if key is None:
                continue
            if key in owner and owner[key][0] != k:
                first_split, first = owner[key]
                names = ("training", "validation", "test")
                name = (getattr(splitter, "__name__", None) or type(splitter).__name__) if splitter else "the split"
                raise ValueError(
                    f"{name}: the same file is in the {names[min(first_split, 2)]} set as "
                    f"{values[first]!s} (item {first}) and in the {names[min(k, 2)]} set as {values[i]!s} "
                    f"(item {i}); validation results would be measured on training data. Remove the "
                    "duplicate (a copy, link or repeated row), or split so both paths fall on one side")
            owner.setdefault(key, (k, i))


def batch_sizes_error(samples: list) -> ValueError | None:
    """The error for a batch whose items' tensors differ in shape (which part, which shapes), or
    None when their shapes agree."""
    parts = [sample if isinstance(sample, (tuple, list)) else (sample,) for sample in samples]
    for p in range(min(len(part) for part in parts)):
        shapes = [tuple(part[p].shape) if isinstance(part[p], torch.Tensor) else None for part in parts]
        differs = [i for i, shape in enumerate(shapes) if shape != shapes[0]]
        if differs and shapes[0] is not None:
            return ValueError(
                f"the items of a batch have different sizes, so they cannot be stacked: part {p} of item 0 is "
                f"{shapes[0]} and of item {differs[0]} {shapes[differs[0]]} (position in the batch); give every item one "
                "size: item_tfms=Resize(224) (or RandomResizedCrop(224)) for images")
    return None
