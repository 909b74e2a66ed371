"""``TabularPandas``: a DataFrame with its categorical, continuous and target columns, processed
by procs learnt on the training rows, ready to become loaders.

Every step works on whole columns (pandas and NumPy), never row by row; the model's inputs are
built once as tensors, and batches are slices of them.

>>> import pandas as pd
>>> from fastlearn.tabular.procs import Categorify, FillMissing
>>> df = pd.DataFrame({"a": list("xyxy"), "b": [1.0, 2.0, None, 4.0], "y": list("ppqq")})
>>> to = TabularPandas(df, [Categorify, FillMissing], cat_names=["a"], cont_names=["b"], y_names="y",
...                    splits=([0, 1, 2], [3]))
>>> to.train.xs.columns.tolist(), to.train.y.tolist(), len(to.valid)
(['a', 'b_na', 'b'], [0, 0, 1], 1)
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from fastlearn.data.blocks import CategoryBlock, RegressionBlock, as_block
from fastlearn.data.categorical import CategoryMap
from fastlearn.data.checks import check_missing_targets_arg, missing_in_columns, missing_targets_error, row_names
from fastlearn.tabular.procs import TabularProc, as_proc


def _names(names, what: str) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str):
        return [names]
    if not isinstance(names, Iterable):
        raise TypeError(f"{what}={names!r}; expected a column name or a list of column names")
    return list(names)


def check_columns(df: pd.DataFrame, names: Sequence[str], what: str) -> None:
    """A ValueError naming the ``what`` columns missing from ``df``, the columns it has, and the fix.

    >>> check_columns(pd.DataFrame({"a": [1]}), ["a"], "cat_names")
    """
    missing = [name for name in names if name not in df.columns]
    if missing:
        raise ValueError(f"{what} names column(s) {missing} that the DataFrame does not have; its columns are "
                         f"{list(df.columns)[:20]}{'...' if len(df.columns) > 20 else ''}. Fix the names, or "
                         "add the columns to the data")


def _infer_y_kind(df: pd.DataFrame, y_names: list[str], y_block) -> str | None:
    if not y_names:
        return None
    if y_block is not None:
        block = as_block(y_block)
        if isinstance(block, CategoryBlock):
            return "category"
        if isinstance(block, RegressionBlock):
            return "regression"
        raise TypeError(f"y_block={y_block!r}; tabular targets take CategoryBlock or RegressionBlock")
    floats = [pd.api.types.is_float_dtype(df[name]) for name in y_names]
    return "regression" if all(floats) else "category"


class TabularSplit:
    """The rows of one split of a :class:`TabularPandas` (``to.train``, ``to.valid``).

    ``xs`` is the processed input columns, ``y`` the processed target (class codes or floats);
    ``cats``/``conts``/``ys`` the same as tensors. ``vocab``, ``c`` and ``loss_func`` describe the
    target for the loaders.

    >>> to.train.xs.shape   # doctest: +SKIP
    (3563, 16)
    """

    def __init__(self, tabular: "TabularPandas", idxs: np.ndarray) -> None:
        self.tabular, self.idxs = tabular, np.asarray(idxs, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.idxs)

    def __repr__(self) -> str:
        return f"TabularSplit({len(self)} rows of {len(self.tabular)})"

    @property
    def items(self) -> pd.DataFrame:
        return self.tabular.items.iloc[self.idxs]

    @property
    def xs(self) -> pd.DataFrame:
        return self.items[self.tabular.x_names]

    @property
    def y(self) -> pd.Series | pd.DataFrame:
        ys = self.items[self.tabular.y_names]
        return ys.iloc[:, 0] if len(self.tabular.y_names) == 1 else ys

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """``(cats, conts, ys)`` for these rows (``conts`` left out when ``with_cont`` is False,
        ``ys`` when there is no target)."""
        index = torch.from_numpy(self.idxs)
        return tuple(t[index] for t in self.tabular.tensors())

    @property
    def n_inp(self) -> int:
        return 2 if self.tabular.with_cont else 1

    @property
    def vocab(self) -> CategoryMap | None:
        return self.tabular.vocab

    @property
    def c(self) -> int | None:
        return self.tabular.c

    @property
    def loss_func(self):
        return self.tabular.loss_func

    def show(self, max_n: int = 10) -> None:
        """Display the first ``max_n`` rows decoded (labels, unscaled values)."""
        self.tabular.show(max_n, rows=self.idxs)


class TabularPandas:
    """A DataFrame processed for a tabular model.

    ``procs`` (classes or instances, e.g. ``[Categorify, FillMissing, Normalize]``) are set up on
    the training rows of ``splits`` (``(train_idx, valid_idx)`` positions; None: all rows train)
    and applied to all rows. The target ``y_names`` is a category (class codes, vocab from the
    training rows) or a regression (floats): ``y_block`` says which, else float columns mean
    regression. ``items`` is the processed DataFrame; ``classes`` the categorical vocabs;
    ``reduce_memory`` stores continuous columns as float32. Rows without a target are an error
    naming them, or left out with ``missing_targets="drop"``.

    >>> to = TabularPandas(df, [Categorify, FillMissing, Normalize], cat_names=["Home"],
    ...                    cont_names=["Income"], y_names="Status", splits=splits)   # doctest: +SKIP
    >>> dls = to.dataloaders(bs=64)                                                 # doctest: +SKIP
    """

    def __init__(self, df: pd.DataFrame, procs=None, cat_names=None, cont_names=None, y_names=None,
                 y_block=None, splits: tuple[Sequence[int], Sequence[int]] | None = None, do_setup: bool = True,
                 reduce_memory: bool = True, with_cont: bool = True, missing_targets: str = "raise") -> None:
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"TabularPandas takes a pandas DataFrame, got {type(df).__name__}")
        self.cat_names, self.cont_names = _names(cat_names, "cat_names"), _names(cont_names, "cont_names")
        self.y_names = _names(y_names, "y_names")
        for what, names in (("cat_names", self.cat_names), ("cont_names", self.cont_names),
                            ("y_names", self.y_names)):
            check_columns(df, names, what)
        self.procs: list[TabularProc] = sorted((as_proc(p) for p in _names(procs, "procs")),
                                               key=lambda p: p.order)
        self.y_kind = _infer_y_kind(df, self.y_names, y_block)
        given_vocab = getattr(as_block(y_block).type_tfms[0], "vocab", None) if y_block is not None else None
        self.y_vocab: CategoryMap | None = given_vocab if self.y_kind == "category" else None
        self.reduce_memory, self.with_cont = reduce_memory, with_cont
        self.splits = self._check_splits(splits, len(df))
        self.items = self._without_missing_targets(df.copy(), check_missing_targets_arg(missing_targets))
        self._tensors: tuple[torch.Tensor, ...] | None = None
        if do_setup:
            self.setup()

    @staticmethod
    def _check_splits(splits, n: int) -> list[np.ndarray]:
        if splits is None:
            return [np.arange(n), np.arange(0)]
        splits = [np.asarray(list(s), dtype=np.int64) for s in splits]
        for i, split in enumerate(splits):
            if len(split) and (split.min() < 0 or split.max() >= n):
                raise ValueError(f"splits[{i}] holds positions outside 0..{n - 1} (min {split.min()}, max "
                                 f"{split.max()}); splits are row positions (0-based), not index labels")
        if len(splits) == 1:
            splits.append(np.arange(0))
        return splits

    def _without_missing_targets(self, df: pd.DataFrame, missing_targets: str = "raise") -> pd.DataFrame:
        """``df`` if every target is there; else an error naming the rows, or (``"drop"``) the
        rows left out of ``df`` and of the splits, with a warning."""
        missing = missing_in_columns(df, self.y_names)
        used = np.zeros(len(df), dtype=bool)
        for split in self.splits:
            used[split] = True
        missing &= used  # rows in no split are never read
        if not missing.any():
            return df
        positions = np.flatnonzero(missing).tolist()
        if missing_targets == "raise":
            first = df[self.y_names].iloc[positions[0]]
            raise missing_targets_error(df, positions, f"column(s) {self.y_names}",
                                        first.iloc[0] if len(first) == 1 else first.tolist())
        warnings.warn(f"TabularPandas: dropped {len(positions)} of {len(df)} rows with a missing target "
                      f"(missing_targets='drop'): {row_names(df, positions)}", RuntimeWarning, stacklevel=3)
        new_position = np.cumsum(~missing) - 1
        self.splits = [new_position[split[~missing[split]]] for split in self.splits]
        return df[~missing]

    # --- processing --------------------------------------------------------------------------------

    def setup(self) -> None:
        """Learn every proc on the training rows and process all rows."""
        df = self._prepare(self.items, "the data")
        if self.y_kind == "category" and self.y_vocab is None:
            self.y_vocab = CategoryMap(df[self.y_names[0]].iloc[self.splits[0]].dropna().unique())
        for proc in self.procs:
            proc.setup(self, df.iloc[self.splits[0]])
            df = proc.apply(df, self)
        self.items = self._finish(df, "the data")

    def _prepare(self, df: pd.DataFrame, source: str) -> pd.DataFrame:
        df = df.copy()
        for name in self.cont_names:
            if not pd.api.types.is_numeric_dtype(df[name]) or pd.api.types.is_bool_dtype(df[name]):
                converted = pd.to_numeric(df[name], errors="coerce")
                bad = converted.isna() & df[name].notna()
                if bad.any():
                    raise ValueError(f"continuous column {df[name].name!r} of {source} holds non-numbers "
                                     f"(e.g. {df[name][bad].iloc[0]!r} at row {df.index[bad.to_numpy()][0]!r}); "
                                     "list it in cat_names instead, or clean the column")
                df[name] = converted
            df[name] = df[name].astype("float64")
        return df

    def _finish(self, df: pd.DataFrame, source: str) -> pd.DataFrame:
        present = [name for name in self.y_names if name in df.columns]
        if self.y_kind == "category" and present:
            df[present[0]] = self._encode_target(df[present[0]], source)
        elif self.y_kind == "regression" and present:
            for name in present:
                df[name] = pd.to_numeric(df[name], errors="raise").astype("float32")
        if self.reduce_memory:
            for name in self.cont_names:
                df[name] = df[name].astype("float32")
        return df

    def _encode_target(self, column: pd.Series, source: str) -> np.ndarray:
        if len(self.y_names) != 1:
            raise ValueError(f"y_names={self.y_names}: a categorical target is one column; pass one name, or "
                             "y_block=RegressionBlock for several float targets")
        codes = pd.Index(list(self.y_vocab.items)).get_indexer(column)
        bad = codes < 0
        if bad.any():
            raise ValueError(f"target column {column.name!r} of {source} has label(s) not in the training "
                             f"vocab {list(self.y_vocab.items)[:10]} (e.g. {column[bad].iloc[0]!r} at row "
                             f"{column.index[bad][0]!r}); drop those rows, or make sure the training rows "
                             "have an example of each label")
        return codes.astype(np.int64)

    def process(self, df: pd.DataFrame, source: str = "the new data") -> pd.DataFrame:
        """``df`` processed with the procs as set up (target encoded when its columns are there)."""
        check_columns(df, [n for n in self.cat_names if not self._made_by_procs(n)], "cat_names")
        check_columns(df, self.cont_names, "cont_names")
        df = self._prepare(df, source)
        for proc in self.procs:
            df = proc.apply(df, self)
        return self._finish(df, source)

    def _made_by_procs(self, name: str) -> bool:
        return any(name in {f"{n}_na" for n in getattr(p, "na_cols", [])} for p in self.procs)

    def new(self, df: pd.DataFrame) -> "TabularPandas":
        """New rows processed like the training rows (all rows in ``train``, nothing learnt again).

        >>> to_test = to.new(test_df)   # doctest: +SKIP
        """
        new = object.__new__(type(self))
        vars(new).update(vars(self))
        new.items = self.process(df)
        new.splits = [np.arange(len(df)), np.arange(0)]
        new._tensors = None
        return new

    def decode(self, df: pd.DataFrame) -> pd.DataFrame:
        """Processed rows back to readable values (labels, unscaled numbers)."""
        df = df.copy()
        for proc in reversed(self.procs):
            df = proc.decode(df, self)
        if self.y_kind == "category" and self.y_names and self.y_names[0] in df:
            labels = np.array(list(self.y_vocab.items), dtype=object)
            df[self.y_names[0]] = labels[df[self.y_names[0]].to_numpy(dtype=np.int64)]
        return df

    # --- tensors -----------------------------------------------------------------------------------

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """``(cats int64 (N, n_cat), conts float32 (N, n_cont), ys)`` over all rows, built once."""
        if self._tensors is None:
            self._tensors = self._build_tensors()
        return self._tensors

    def _build_tensors(self) -> tuple[torch.Tensor, ...]:
        df = self.items
        for name in self.cat_names:
            if not (pd.api.types.is_integer_dtype(df[name]) or pd.api.types.is_bool_dtype(df[name])):
                raise ValueError(f"categorical column {name!r} holds {df[name].dtype} values, not codes; add "
                                 "Categorify to procs")
        cats = torch.from_numpy(df[self.cat_names].to_numpy(dtype=np.int64, copy=True).reshape(len(df), -1))
        parts = [cats]
        if self.with_cont:
            conts = df[self.cont_names].to_numpy(dtype=np.float32, copy=True).reshape(len(df), -1)
            nan_rows, nan_cols = np.nonzero(np.isnan(conts))
            if len(nan_rows):
                name = self.cont_names[nan_cols[0]]
                raise ValueError(f"continuous column {name!r} has missing values (NaN), first at row "
                                 f"{df.index[nan_rows[0]]!r} ({len(nan_rows)} in all); add FillMissing to "
                                 "procs, or fill the column before building the loaders")
            parts.append(torch.from_numpy(conts))
        if self.y_names and all(name in df for name in self.y_names):
            if self.y_kind == "category":
                parts.append(torch.from_numpy(df[self.y_names[0]].to_numpy(dtype=np.int64, copy=True)))
            else:
                ys = df[self.y_names].to_numpy(dtype=np.float32, copy=True)
                parts.append(torch.from_numpy(ys[:, 0].copy() if ys.shape[1] == 1 else ys))
        return tuple(parts)

    @property
    def has_y(self) -> bool:
        return bool(self.y_names) and all(name in self.items for name in self.y_names)

    # --- views -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return (f"TabularPandas({len(self.splits[0])} train, {len(self.splits[1])} valid rows; "
                f"cat_names={self.cat_names}, cont_names={self.cont_names}, y_names={self.y_names})")

    @property
    def x_names(self) -> list[str]:
        return list(self.cat_names) + list(self.cont_names)

    @property
    def train(self) -> TabularSplit:
        return TabularSplit(self, self.splits[0])

    @property
    def valid(self) -> TabularSplit:
        return TabularSplit(self, self.splits[1])

    @property
    def xs(self) -> pd.DataFrame:
        return self.items[self.x_names]

    @property
    def y(self) -> pd.Series | pd.DataFrame:
        ys = self.items[self.y_names]
        return ys.iloc[:, 0] if len(self.y_names) == 1 else ys

    @property
    def classes(self) -> dict[str, CategoryMap]:
        """The vocab of every categorified column (``classes[col].o2i`` maps a label to its code)."""
        return {name: vocab for p in self.procs for name, vocab in getattr(p, "classes", {}).items()}

    @property
    def vocab(self) -> CategoryMap | None:
        """The target's classes (None for a regression)."""
        return self.y_vocab

    @property
    def c(self) -> int | None:
        if self.y_kind == "category":
            return len(self.y_vocab)
        return len(self.y_names) if self.y_kind == "regression" else None

    @property
    def loss_func(self):
        if self.y_kind == "category":
            return CategoryBlock().loss_func()
        return RegressionBlock().loss_func() if self.y_kind == "regression" else None

    def show(self, max_n: int = 10, rows: np.ndarray | None = None) -> None:
        """Display the first ``max_n`` rows decoded (in a notebook as a table, else printed)."""
        rows = self.splits[0] if rows is None else rows
        decoded = self.decode(self.items.iloc[rows[:max_n]][self.x_names + self.y_names])
        try:
            from IPython.display import display
        except ImportError:
            print(decoded.to_string())
        else:
            display(decoded)

    def dataloaders(self, bs: int = 64, shuffle_train: bool = True, val_bs: int | None = None,
                    drop_last: bool | None = None, path=".", device: torch.device | str | None = None,
                    seed: int | None = None):
        """Training and validation loaders (``TabularDataLoaders``) over these rows.

        >>> dls = to.dataloaders(bs=64)   # doctest: +SKIP
        """
        from fastlearn.tabular.data import TabularDataLoaders
        return TabularDataLoaders.from_tabular(self, bs=bs, shuffle_train=shuffle_train, val_bs=val_bs,
                                               drop_last=drop_last, path=path, device=device, seed=seed)
