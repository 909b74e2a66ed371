"""Tabular procs: whole-column preprocessing learnt on the training rows, applied to every row.

``FillMissing`` fills missing continuous values (and adds ``<col>_na`` flags), ``Categorify``
turns categorical columns into integer codes (``#na#`` is 0), ``NormalizeTab`` scales continuous
columns to mean 0, std 1. Each works on whole columns at once (NumPy arrays, each string column
hashed once), reads only the columns it needs, and describes its state (vocabularies, fill
values, means and stds) as JSON for export.

In ``procs=[...]`` the data layer's ``Normalize`` (the name course code uses) stands for
``NormalizeTab``: see :func:`as_proc`, the one place this mapping happens.

>>> import pandas as pd
>>> from fastlearn.tabular.tabular_pandas import TabularPandas
>>> from fastlearn.tabular.procs import Categorify, FillMissing
>>> df = pd.DataFrame({"a": ["x", "y", "x", None], "b": [1.0, None, 3.0, 5.0]})
>>> to = TabularPandas(df, [Categorify, FillMissing], cat_names=["a"], cont_names=["b"])
>>> to.items["a"].tolist(), to.items["b"].tolist(), to.items["b_na"].tolist()
([1, 2, 1, 0], [1.0, 3.0, 3.0, 5.0], [1, 2, 1, 1])
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from fastlearn.data.batch_transforms import Normalize as BatchNormalize
from fastlearn.data.categorical import CategoryMap
from fastlearn.data.tables import column_codes, set_column, values_in_rows
from fastlearn.registry import code_from_name

PROCS: dict[str, type] = {}


def register_proc(cls: type) -> type:
    """Class decorator: make a proc rebuildable by name from an export description.

    >>> @register_proc
    ... class MyProc(TabularProc):
    ...     pass
    >>> "MyProc" in PROCS
    True
    """
    PROCS[cls.__name__] = cls
    return cls


def _short(values) -> str:
    values = list(values)
    shown = [v.item() if isinstance(v, np.generic) else v for v in values[:5]]  # 999, not np.int64(999)
    return f"{shown}{'...' if len(values) > 5 else ''}"


class TabularProc:
    """A preprocessing step of ``TabularPandas``: ``setup`` learns from the training rows (and may
    add column names to ``to.cat_names``), ``apply`` transforms a whole DataFrame, ``decode``
    undoes it where it can. ``order`` sorts the procs (FillMissing, then Categorify, then
    NormalizeTab). ``state()`` / ``from_state`` describe the learnt state as JSON.
    """

    order: int = 5

    def setup(self, to, train: pd.DataFrame) -> None:
        """Learn the state from the (already partly processed) training rows."""

    def apply(self, df: pd.DataFrame, to) -> pd.DataFrame:
        """Transform ``df`` (a copy owned by the caller) and return it."""
        return df

    def setup_apply(self, to, df: pd.DataFrame, train_rows: slice | np.ndarray) -> pd.DataFrame:
        """``setup`` on the rows ``train_rows`` of ``df`` (a slice or row positions), then ``apply``
        to all of ``df``: what ``TabularPandas`` calls. The built-in procs read only their columns'
        training rows here instead of a copy of the whole training frame; a custom proc needs only
        ``setup`` and ``apply``."""
        self.setup(to, df.iloc[train_rows])
        return self.apply(df, to)

    def decode(self, df: pd.DataFrame, to) -> pd.DataFrame:
        """Undo ``apply`` on ``df`` where possible (e.g. codes back to labels)."""
        return df

    def state(self) -> dict:
        """The learnt state and arguments, as JSON values."""
        return {}

    @classmethod
    def from_state(cls, state: dict) -> "TabularProc":
        """A proc set up from :meth:`state`."""
        proc = cls()
        vars(proc).update(state)
        return proc

    def describe(self) -> dict:
        return {"name": type(self).__name__, "module": type(self).__module__, "state": self.state()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class RowsProc(TabularProc):
    """A proc that learns from the training rows of its own columns, ``_learn(to, df, rows)``,
    so that ``setup_apply`` needs no copy of the training frame (the built-in procs)."""

    def _learn(self, to, df: pd.DataFrame, rows: slice | np.ndarray) -> None:
        raise NotImplementedError

    def setup(self, to, train: pd.DataFrame) -> None:
        self._learn(to, train, slice(None))

    def setup_apply(self, to, df: pd.DataFrame, train_rows: slice | np.ndarray) -> pd.DataFrame:
        self._learn(to, df, train_rows)
        return self.apply(df, to)


def proc_from_description(description: dict) -> TabularProc:
    """Rebuild a proc from :meth:`TabularProc.describe` (importing its module so it registers)."""
    module = description.get("module")
    if isinstance(module, str):
        code_from_name(module, "module")  # inside load_learner: the library's modules, or ones allowed
    name = description.get("name")
    if name not in PROCS:
        raise ValueError(f"no registered tabular proc named {name!r}; known: {sorted(PROCS)}. "
                         "Decorate custom procs with @register_proc in an importable module")
    return PROCS[name].from_state(description.get("state", {}))


@register_proc
class Categorify(RowsProc):
    """Categorical columns to integer codes: the vocab of each column is built from the training
    rows (sorted, ``#na#`` at index 0); missing values get 0.

    A value not seen in training also gets 0; ``unseen`` says whether that is said with a
    warning (``"warn"``, default), is an error (``"error"``) or is silent (``"na"``).

    >>> import pandas as pd
    >>> from fastlearn.tabular.tabular_pandas import TabularPandas
    >>> from fastlearn.tabular.procs import Categorify
    >>> to = TabularPandas(pd.DataFrame({"a": ["b", "a", "b"]}), [Categorify], cat_names=["a"])
    >>> to.classes["a"], to.items["a"].tolist()
    (CategoryMap(['#na#', 'a', 'b']), [2, 1, 2])
    """

    order = 2
    UNSEEN_MODES = ("warn", "error", "na")

    def __init__(self, unseen: str = "warn") -> None:
        if unseen not in self.UNSEEN_MODES:
            raise ValueError(f"Categorify(unseen={unseen!r}); expected one of {self.UNSEEN_MODES}")
        self.unseen = unseen
        self.classes: dict[str, CategoryMap] = {}

    def _learn(self, to, df: pd.DataFrame, rows: slice | np.ndarray) -> None:
        self.classes = {name: self._vocab(*column_codes(df[name]), rows) for name in to.cat_names}

    def apply(self, df: pd.DataFrame, to) -> pd.DataFrame:
        for name, vocab in self.classes.items():
            set_column(df, name, self._encode(df[name], *column_codes(df[name]), vocab))
        return df

    def setup_apply(self, to, df: pd.DataFrame, train_rows: slice | np.ndarray) -> pd.DataFrame:
        """Each column hashed once: its codes give both the training vocab and the rows' codes."""
        self.classes = {}
        for name in to.cat_names:
            codes, uniques = column_codes(df[name])
            self.classes[name] = vocab = self._vocab(codes, uniques, train_rows)
            set_column(df, name, self._encode(df[name], codes, uniques, vocab))
        return df

    @staticmethod
    def _vocab(codes: np.ndarray, uniques, rows: slice | np.ndarray) -> CategoryMap:
        """The sorted values of ``rows`` (missing ones left out), ``#na#`` first."""
        return CategoryMap(values_in_rows(codes, uniques, rows), sort=True, add_na=True)

    def _encode(self, column: pd.Series, codes: np.ndarray, uniques, vocab: CategoryMap) -> np.ndarray:
        """Each row's index in ``vocab``: 0 for a missing value or one not in the vocab (reported
        as ``unseen`` says). The vocab is looked up once per distinct value."""
        in_vocab = pd.Index(list(vocab.items)[1:]).get_indexer(uniques) + 1
        out = np.append(in_vocab, 0).astype(np.int64)[codes]  # code -1 (missing) takes the last: 0
        unseen = (out == 0) & (codes >= 0)
        if unseen.any():
            self._report_unseen(column.name, column, unseen, vocab)
        return out

    def _report_unseen(self, name: str, column: pd.Series, unseen: np.ndarray, vocab: CategoryMap) -> None:
        rows = column.index[unseen]
        values = pd.unique(column[unseen])
        message = (f"categorical column {name!r} has {int(unseen.sum())} value(s) not seen in training "
                   f"(e.g. {_short(values)} in rows {_short(rows)}); the training vocab is "
                   f"{_short(vocab.items)} ({len(vocab)} values)")
        if self.unseen == "error":
            raise ValueError(message + ". Map them to a known category or drop those rows, or pass "
                             "Categorify(unseen='na') to treat them as missing (#na#)")
        if self.unseen == "warn":
            warnings.warn(message + "; they are treated as missing (#na#, code 0). Pass "
                          "Categorify(unseen='error') to make this an error, or unseen='na' to silence it",
                          stacklevel=4)

    def decode(self, df: pd.DataFrame, to) -> pd.DataFrame:
        for name, vocab in self.classes.items():
            if name in df:
                labels = np.array(list(vocab.items), dtype=object)
                df[name] = labels[df[name].to_numpy(dtype=np.int64)]
        return df

    def state(self) -> dict:
        return {"unseen": self.unseen, "classes": {name: list(v.items) for name, v in self.classes.items()}}

    @classmethod
    def from_state(cls, state: dict) -> "Categorify":
        proc = cls(unseen=state.get("unseen", "warn"))
        proc.classes = {name: CategoryMap(items, sort=False) for name, items in state["classes"].items()}
        return proc

    def __repr__(self) -> str:
        return f"Categorify(unseen={self.unseen!r})"


@register_proc
class FillMissing(RowsProc):
    """Fill missing continuous values with the training rows' ``median`` (default), ``mode`` or a
    ``constant`` (``fill_val``); with ``add_col`` each column that had missing values in training
    gets a ``<col>_na`` boolean column, added to the categorical columns.

    >>> import pandas as pd
    >>> from fastlearn.tabular.tabular_pandas import TabularPandas
    >>> from fastlearn.tabular.procs import FillMissing
    >>> df = pd.DataFrame({"b": [1.0, None, 5.0, 2.0]})
    >>> to = TabularPandas(df, [FillMissing], cont_names=["b"])
    >>> to.items["b"].tolist(), to.cat_names
    ([1.0, 2.0, 5.0, 2.0], ['b_na'])
    """

    order = 1
    STRATEGIES = ("median", "mode", "constant")

    def __init__(self, fill_strategy: str = "median", add_col: bool = True, fill_val: float = 0.0) -> None:
        if fill_strategy not in self.STRATEGIES:
            raise ValueError(f"FillMissing(fill_strategy={fill_strategy!r}); expected one of {self.STRATEGIES}")
        self.fill_strategy, self.add_col, self.fill_val = fill_strategy, add_col, float(fill_val)
        self.fill_values: dict[str, float] = {}
        self.na_cols: list[str] = []

    def _fill_value(self, name: str, values: np.ndarray) -> float:
        """The value to fill ``name`` with, from its training values (NaN where missing)."""
        if self.fill_strategy == "constant":
            return self.fill_val
        values = values[~np.isnan(values)]
        if not len(values):
            raise ValueError(f"continuous column {name!r} has no value in the training rows, so "
                             f"FillMissing cannot compute its {self.fill_strategy}; drop the column or use "
                             "FillMissing(fill_strategy='constant', fill_val=...)")
        if self.fill_strategy == "median":
            return float(np.median(values, overwrite_input=True))  # pandas' median, without its copies
        return float(pd.Series(values).mode().iloc[0])

    def _learn(self, to, df: pd.DataFrame, rows: slice | np.ndarray) -> None:
        self.fill_values, self.na_cols = {}, []
        for name in to.cont_names:
            values = _float_values(df[name])[rows]
            self.fill_values[name] = self._fill_value(name, values)
            if np.isnan(values).any():
                self.na_cols.append(name)
        if self.add_col:
            to.cat_names = list(to.cat_names) + [f"{n}_na" for n in self.na_cols if f"{n}_na" not in to.cat_names]

    def apply(self, df: pd.DataFrame, to) -> pd.DataFrame:
        if self.add_col:
            for name in self.na_cols:
                df[f"{name}_na"] = df[name].isna()
        for name, value in self.fill_values.items():
            if name in df and df[name].hasnans:
                df[name] = df[name].fillna(value)
        return df

    def state(self) -> dict:
        return {"fill_strategy": self.fill_strategy, "add_col": self.add_col, "fill_val": self.fill_val,
                "fill_values": self.fill_values, "na_cols": self.na_cols}

    def __repr__(self) -> str:
        return f"FillMissing(fill_strategy={self.fill_strategy!r}, add_col={self.add_col})"


@register_proc
class NormalizeTab(RowsProc):
    """Continuous columns to mean 0 and std 1, with the mean and std of the training rows.

    Course code writes ``Normalize`` in ``procs=[...]``; it is mapped to this proc.

    >>> import pandas as pd
    >>> from fastlearn.tabular.tabular_pandas import TabularPandas
    >>> from fastlearn.tabular.procs import NormalizeTab
    >>> to = TabularPandas(pd.DataFrame({"b": [1.0, 3.0]}), [NormalizeTab], cont_names=["b"])
    >>> to.procs[0].means, [round(v, 3) for v in to.items["b"].tolist()]
    ({'b': 2.0}, [-1.0, 1.0])
    """

    order = 3

    def __init__(self) -> None:
        self.means: dict[str, float] = {}
        self.stds: dict[str, float] = {}

    def _learn(self, to, df: pd.DataFrame, rows: slice | np.ndarray) -> None:
        self.means, self.stds = {}, {}
        for name in to.cont_names:
            values = pd.Series(_float_values(df[name])[rows])  # pandas' mean and std: NaN left out
            std = values.std(ddof=0)
            self.means[name] = float(values.mean())
            self.stds[name] = (0.0 if np.isnan(std) else float(std)) + 1e-7

    def apply(self, df: pd.DataFrame, to) -> pd.DataFrame:
        for name, mean in self.means.items():
            scaled = df[name].to_numpy(dtype=np.float64) - mean
            scaled /= self.stds[name]
            set_column(df, name, scaled)
        return df

    def decode(self, df: pd.DataFrame, to) -> pd.DataFrame:
        for name, mean in self.means.items():
            if name in df:
                df[name] = df[name] * self.stds[name] + mean
        return df

    def state(self) -> dict:
        return {"means": self.means, "stds": self.stds}


def _float_values(column: pd.Series) -> np.ndarray:
    """A continuous column as float64 NumPy values (a view when it is float64 already)."""
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def as_proc(proc) -> TabularProc:
    """A proc instance from a proc class or instance; the data layer's ``Normalize`` (class or
    instance without statistics) means :class:`NormalizeTab`, so course code's
    ``procs=[Categorify, FillMissing, Normalize]`` works and ``Normalize.from_stats`` stays the
    image batch transform.

    >>> as_proc(BatchNormalize), as_proc(FillMissing)
    (NormalizeTab(), FillMissing(fill_strategy='median', add_col=True))
    """
    if proc is BatchNormalize or (isinstance(proc, BatchNormalize) and proc.mean is None):
        return NormalizeTab()
    if isinstance(proc, BatchNormalize):
        raise TypeError("procs got Normalize with statistics (Normalize.from_stats), an image batch "
                        "transform; in procs pass the class Normalize (or NormalizeTab) and the "
                        "statistics are computed from the training rows")
    if isinstance(proc, type) and issubclass(proc, TabularProc):
        return proc()
    if isinstance(proc, TabularProc):
        return proc
    raise TypeError(f"procs takes tabular procs (Categorify, FillMissing, Normalize or TabularProc "
                    f"subclasses, as classes or instances), got {proc!r}")
