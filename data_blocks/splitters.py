"""Splitters: ``splitter(items) -> (train_indices, valid_indices)``.

Any function with that signature works as a splitter; :func:`check_splits` validates what it
returns (in range, no item in both sets, a non-empty training set).

>>> RandomSplitter(valid_pct=0.25, seed=42)(list("abcdefgh"))
((#6) [0, 7, 2, 1, 4, 5], (#2) [6, 3])
>>> IndexSplitter([0, 1])(list("abcd"))
((#2) [2, 3], (#2) [0, 1])
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch

from fastlearn.foundation import L
from fastlearn.paths import Path


def _rows(items) -> list:
    """Items as a list; a DataFrame gives its rows (as Series)."""
    if hasattr(items, "iloc") and hasattr(items, "columns"):
        return [row for _, row in items.iterrows()]
    return list(items)


def _n_items(items) -> int:
    return len(items)


class RandomSplitter:
    """A random ``valid_pct`` of the items for validation; ``seed`` makes the split repeatable
    (without touching the global random state).

    >>> RandomSplitter(0.5, seed=0)(range(4))
    ((#2) [3, 2], (#2) [0, 1])
    """

    def __init__(self, valid_pct: float = 0.2, seed: int | None = None):
        if not 0 <= valid_pct < 1:
            raise ValueError(f"RandomSplitter(valid_pct={valid_pct!r}): expected a fraction in [0, 1)")
        self.valid_pct, self.seed = valid_pct, seed

    def __call__(self, items) -> tuple[L, L]:
        generator = torch.Generator()
        if self.seed is not None:
            generator.manual_seed(self.seed)
        else:
            generator.seed()
        order = torch.randperm(_n_items(items), generator=generator).tolist()
        cut = int(self.valid_pct * len(order))
        return L(order[cut:]), L(order[:cut])


class TrainTestSplitter:
    """A random split keeping class proportions when ``stratify`` (one label per item) is given.

    >>> train, valid = TrainTestSplitter(test_size=0.5, random_state=0, stratify=list("aabb"))(range(4))
    >>> sorted(valid)
    [0, 3]
    """

    def __init__(self, test_size: float = 0.2, random_state: int | None = None,
                 stratify: Sequence | None = None, shuffle: bool = True):
        if not 0 < test_size < 1:
            raise ValueError(f"TrainTestSplitter(test_size={test_size!r}): expected a fraction in (0, 1)")
        self.test_size, self.random_state = test_size, random_state
        self.stratify, self.shuffle = stratify, shuffle

    def __call__(self, items) -> tuple[L, L]:
        n = _n_items(items)
        generator = torch.Generator()
        generator.manual_seed(self.random_state) if self.random_state is not None else generator.seed()
        if self.stratify is None:
            order = torch.randperm(n, generator=generator).tolist() if self.shuffle else list(range(n))
            cut = max(1, round(self.test_size * n)) if n > 1 else 0
            return L(order[cut:]), L(order[:cut])
        labels = list(self.stratify)
        if len(labels) != n:
            raise ValueError(f"TrainTestSplitter: stratify has {len(labels)} labels for {n} items; "
                             "give one label per item")
        train, valid = [], []
        for label in dict.fromkeys(labels):
            idxs = [i for i, lab in enumerate(labels) if lab == label]
            perm = torch.randperm(len(idxs), generator=generator).tolist() if self.shuffle \
                else list(range(len(idxs)))
            cut = round(self.test_size * len(idxs))
            valid += [idxs[p] for p in perm[:cut]]
            train += [idxs[p] for p in perm[cut:]]
        return L(train), L(valid)


class IndexSplitter:
    """The items at ``valid_idx`` for validation, the rest for training.

    >>> IndexSplitter([2])(list("abc"))
    ((#2) [0, 1], (#1) [2])
    """

    def __init__(self, valid_idx: Sequence[int]):
        self.valid_idx = [int(i) for i in valid_idx]

    def __call__(self, items) -> tuple[L, L]:
        valid = set(self.valid_idx)
        return L([i for i in range(_n_items(items)) if i not in valid]), L(self.valid_idx)


class EndSplitter:
    """The last (or first) ``valid_pct`` of the items for validation.

    >>> EndSplitter(0.25)(range(8))
    ((#6) [0, 1, 2, 3, 4, 5], (#2) [6, 7])
    """

    def __init__(self, valid_pct: float = 0.2, valid_last: bool = True):
        self.valid_pct, self.valid_last = valid_pct, valid_last

    def __call__(self, items) -> tuple[L, L]:
        n = _n_items(items)
        cut = int(self.valid_pct * n)
        idxs = list(range(n))
        if self.valid_last:
            return L(idxs[:n - cut]), L(idxs[n - cut:])
        return L(idxs[cut:]), L(idxs[:cut])


class GrandparentSplitter:
    """Split by the folder two levels above each file: ``train/<label>/x.png`` vs
    ``valid/<label>/x.png``. Items under other folders are in neither set.

    >>> GrandparentSplitter(valid_name="test")(["p/train/a/1.png", "p/test/a/2.png", "p/x/a/3.png"])
    ((#1) [0], (#1) [1])
    """

    def __init__(self, train_name: str | Sequence[str] = "train",
                 valid_name: str | Sequence[str] = "valid"):
        self.train_names = {train_name} if isinstance(train_name, str) else set(train_name)
        self.valid_names = {valid_name} if isinstance(valid_name, str) else set(valid_name)

    def __call__(self, items) -> tuple[L, L]:
        names = [Path(o).parent.parent.name for o in _rows(items)]
        train = L([i for i, name in enumerate(names) if name in self.train_names])
        valid = L([i for i, name in enumerate(names) if name in self.valid_names])
        return train, valid


class FuncSplitter:
    """Items for which ``func(item)`` is true go to validation.

    >>> FuncSplitter(lambda o: o.startswith("v"))(["t1", "v1", "t2"])
    ((#2) [0, 2], (#1) [1])
    """

    def __init__(self, func: Callable):
        if not callable(func):
            raise TypeError(f"FuncSplitter: {func!r} is not callable")
        self.func = func

    def __call__(self, items) -> tuple[L, L]:
        flags = [bool(self.func(o)) for o in _rows(items)]
        return L([i for i, f in enumerate(flags) if not f]), L([i for i, f in enumerate(flags) if f])


class MaskSplitter:
    """A boolean ``mask`` (one flag per item): true means validation.

    >>> MaskSplitter([False, True, False])(list("abc"))
    ((#2) [0, 2], (#1) [1])
    """

    def __init__(self, mask: Sequence[bool]):
        self.mask = [bool(m) for m in mask]

    def __call__(self, items) -> tuple[L, L]:
        n = _n_items(items)
        if len(self.mask) != n:
            raise ValueError(f"MaskSplitter: the mask has {len(self.mask)} flags for {n} items")
        return (L([i for i, m in enumerate(self.mask) if not m]),
                L([i for i, m in enumerate(self.mask) if m]))


class FileSplitter:
    """Items whose file name is listed (one per line) in ``fname`` go to validation.

    >>> FileSplitter("valid.txt")   # doctest: +SKIP
    """

    def __init__(self, fname: str | os.PathLike):
        self.fname = Path(fname)

    def __call__(self, items) -> tuple[L, L]:
        if not self.fname.exists():
            raise FileNotFoundError(f"FileSplitter: {self.fname} does not exist; it should list "
                                    "the validation file names, one per line")
        names = {line.strip() for line in self.fname.read_text().splitlines() if line.strip()}
        flags = [Path(o).name in names for o in _rows(items)]
        return L([i for i, f in enumerate(flags) if not f]), L([i for i, f in enumerate(flags) if f])


class ColSplitter:
    """Rows of a DataFrame where column ``col`` is true (or equals ``on``) go to validation. The
    column holds booleans or numbers (0 is false); text (``"False"`` would be true) and missing
    values are an error naming the column and a row.

    >>> import pandas as pd
    >>> ColSplitter()(pd.DataFrame({"is_valid": [False, True, False]}))
    ((#2) [0, 2], (#1) [1])
    """

    def __init__(self, col: str | int = "is_valid", on=None):
        self.col, self.on = col, on

    def __call__(self, items) -> tuple[L, L]:
        if not hasattr(items, "columns"):
            raise TypeError(f"ColSplitter({self.col!r}) splits a DataFrame; got "
                            f"{type(items).__name__}. Pass the DataFrame as the source")
        if isinstance(self.col, int):
            column = items.iloc[:, self.col]
        elif self.col in items.columns:
            column = items[self.col]
        else:
            raise ValueError(f"ColSplitter: no column {self.col!r} in the DataFrame (columns: "
                             f"{list(items.columns)}); pass col= the name of the validation flag")
        flags = (column == self.on) if self.on is not None else _validation_flags(column, self.col)
        flags = flags.tolist()
        return L([i for i, f in enumerate(flags) if not f]), L([i for i, f in enumerate(flags) if f])


def _validation_flags(column, col):
    """``column`` as booleans, refusing what ``astype(bool)`` would read wrong: a missing value
    (NaN is true) and text (``"False"`` is true, as is every non-empty text)."""
    missing = column.isna().to_numpy()
    if missing.any():
        rows = column.index[missing].tolist()
        raise ValueError(f"ColSplitter: column {col!r} has no value in {len(rows)} row(s) {rows[:8]}"
                         f"{'...' if len(rows) > 8 else ''} (a NaN would count as true, a None as false); fill "
                         f"them (df[{col!r}] = df[{col!r}].fillna(False) puts them in training) or drop those rows")
    texts = column.map(lambda value: isinstance(value, str)).to_numpy(dtype=bool)
    if texts.any():
        row = column.index[texts][0]
        raise ValueError(f"ColSplitter: column {col!r} holds text ({column[row]!r} at row {row!r}), and every non-empty "
                         f"text counts as true, 'False' too; make it booleans, e.g. df[{col!r}] = "
                         f"df[{col!r}].astype(str).str.lower().isin(['true', '1', 'yes']), or pass on= the value "
                         "that marks validation rows")
    return column.astype(bool)


def check_splits(splits, n_items: int, splitter=None) -> list[L]:
    """Validate a splitter's result: a tuple of index lists, in range, disjoint, training non-empty.

    >>> check_splits(([0, 1], [2]), 3)
    [(#2) [0, 1], (#1) [2]]
    """
    name = (getattr(splitter, "__name__", None) or type(splitter).__name__) if splitter else "splitter"
    if (not isinstance(splits, (tuple, list)) or len(splits) < 2
            or not all(hasattr(s, "__iter__") for s in splits)):
        raise ValueError(f"{name} returned {type(splits).__name__}; a splitter must return "
                         "(train_indices, valid_indices)")
    checked = []
    for which, idxs in zip(("train", "valid", "test"), splits):
        try:
            idxs = L([int(i) for i in idxs])
        except (TypeError, ValueError):
            raise ValueError(f"{name}: the {which} split holds non-integer indices "
                             f"{list(idxs)[:5]!r}; return integer positions into the items") from None
        bad = [i for i in idxs if not 0 <= i < n_items]
        if bad:
            raise ValueError(f"{name}: the {which} split has indices out of range {bad[:5]} for "
                             f"{n_items} items; return positions 0..{n_items - 1}")
        checked.append(idxs)
    seen: dict[int, int] = {}
    for k, idxs in enumerate(checked):
        for i in set(idxs):
            if i in seen:
                raise ValueError(f"{name}: item {i} is in split {seen[i]} and split {k}; the train "
                                 "and valid sets must not overlap (check the splitter)")
            seen[i] = k
    if len(checked[0]) == 0:
        raise ValueError(f"{name}: the training split is empty ({n_items} items, "
                         f"{len(checked[1])} in valid); check the folder names or valid_pct")
    return checked
