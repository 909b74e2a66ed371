"""``TabularPandas``: a DataFrame with its categorical, continuous and target columns, processed
by procs learnt on the training rows; and ``TabularDataLoaders``, its training and validation
loaders. The two build each other (``to.dataloaders()``, ``TabularDataLoaders.from_df``), so they
live in one module.

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

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from fastlearn.data.blocks import CategoryBlock, RegressionBlock, as_block
from fastlearn.data.categorical import CategoryMap
from fastlearn.data.checks import check_missing_targets_arg
from fastlearn.data.databunch import DataBunch
from fastlearn.data.splitters import RandomSplitter
from fastlearn.data.tables import as_slice, column_codes, private_copy, read_csv_file, set_column, values_in_rows
from fastlearn.registry import register_code
from fastlearn.tabular.columns import check_columns, column_list, target_kind
from fastlearn.tabular.loader import TabularDataLoader, TabularSplit, display_table, table_tensors
from fastlearn.tabular.procs import TabularProc, as_proc, proc_from_description
from fastlearn.tabular.row_checks import (as_numbers, check_continuous, check_row_splits, check_training_rows,
                                          rows_frame, without_missing_targets)

SPEC_FORMAT = "fastlearn.tabular/1"


class TabularPandas:
    """A DataFrame processed for a tabular model.

    ``procs`` (classes or instances, e.g. ``[Categorify, FillMissing, Normalize]``) are set up on
    the training rows of ``splits`` (``(train_idx, valid_idx)`` positions; None: all rows train)
    and applied to all rows. The target ``y_names`` is a category (class codes, vocab from the
    training rows) or a regression (floats): ``y_block`` says which, else number columns (integers
    too, as in fastai) mean regression and strings or booleans a category. ``items`` is the
    processed DataFrame; ``classes`` the categorical vocabs; ``reduce_memory`` stores continuous
    columns as float32. Rows without a target are an error naming them, or left out with
    ``missing_targets="drop"``. Regression targets come out of the
    loaders as ``(N, n_targets)``, the shape of a tabular model's output, so ``F.mse_loss`` does not
    broadcast; ``flat_target=True`` gives one target as ``(N,)`` (ratings: the dot model's output).

    >>> to = TabularPandas(df, [Categorify, FillMissing, Normalize], cat_names=["Home"],
    ...                    cont_names=["Income"], y_names="Status", splits=splits)   # doctest: +SKIP
    >>> dls = to.dataloaders(bs=64)                                                 # doctest: +SKIP
    """

    def __init__(self, df: pd.DataFrame, procs=None, cat_names=None, cont_names=None, y_names=None,
                 y_block=None, splits: tuple[Sequence[int], Sequence[int]] | None = None, do_setup: bool = True,
                 reduce_memory: bool = True, with_cont: bool = True, missing_targets: str = "raise",
                 flat_target: bool = False) -> None:
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"TabularPandas takes a pandas DataFrame, got {type(df).__name__}")
        self.cat_names, self.cont_names = column_list(cat_names, "cat_names"), column_list(cont_names, "cont_names")
        self.y_names = column_list(y_names, "y_names")
        for what, names in (("cat_names", self.cat_names), ("cont_names", self.cont_names),
                            ("y_names", self.y_names)):
            check_columns(df, names, what)
        self.procs: list[TabularProc] = sorted((as_proc(p) for p in column_list(procs, "procs")),
                                               key=lambda p: p.order)
        self.y_kind = target_kind(df, self.y_names, y_block)
        given_vocab = getattr(as_block(y_block).type_tfms[0], "vocab", None) if y_block is not None else None
        self.y_vocab: CategoryMap | None = given_vocab if self.y_kind == "category" else None
        self.reduce_memory, self.with_cont, self.flat_target = reduce_memory, with_cont, flat_target
        splits = check_row_splits(splits, len(df))
        self.items, self.splits = without_missing_targets(private_copy(df), self.y_names, splits,
                                                          check_missing_targets_arg(missing_targets))
        self._tensors: tuple[torch.Tensor, ...] | None = None
        if do_setup:
            self.setup()

    # --- processing --------------------------------------------------------------------------------

    def setup(self) -> None:
        """Learn every proc on the training rows and process all rows."""
        check_training_rows(self.items, self.splits)
        df = check_continuous(private_copy(self.items), self.cont_names, "the data")
        train_rows = as_slice(self.splits[0])
        for proc in self.procs:
            df = proc.setup_apply(self, df, train_rows)
        self.items = self._finish(df, "the data", train_rows)

    def _finish(self, df: pd.DataFrame, source: str, train_rows: slice | np.ndarray | None = None) -> pd.DataFrame:
        present = [name for name in self.y_names if name in df.columns]
        if self.y_kind == "category" and present:
            set_column(df, present[0], self._encode_target(df[present[0]], source, train_rows))
        elif self.y_kind == "regression" and present:
            for name in present:
                df[name] = as_numbers(df[name], f"target column {name!r} of {source}",
                                      "clean the column, or pass y_block=CategoryBlock() for classes").astype("float32")
        if self.reduce_memory:
            for name in self.cont_names:
                df[name] = df[name].astype("float32")
        return df

    def _encode_target(self, column: pd.Series, source: str, train_rows: slice | np.ndarray | None = None
                       ) -> np.ndarray:
        """The class codes of ``column``; in ``setup`` (``train_rows`` given) the vocab, unless one
        was given, is first learnt from those rows (sorted), from the same one hashing of the column."""
        if len(self.y_names) != 1:
            raise ValueError(f"y_names={self.y_names}: a categorical target is one column; pass one name, or "
                             "y_block=RegressionBlock for several float targets")
        row_codes, uniques = column_codes(column)
        if self.y_vocab is None and train_rows is not None:
            self.y_vocab = CategoryMap(values_in_rows(row_codes, uniques, train_rows))
        in_vocab = pd.Index(list(self.y_vocab.items)).get_indexer(uniques)
        codes = np.append(in_vocab, -1)[row_codes]  # code -1 (missing) stays -1: not in the vocab
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
        df = check_continuous(private_copy(df), self.cont_names, source)
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
            self._tensors = table_tensors(self)
        return self._tensors

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
        display_table(decoded)

    def dataloaders(self, bs: int = 64, shuffle_train: bool = True, val_bs: int | None = None,
                    drop_last: bool | None = None, path=".", device: torch.device | str | None = None,
                    seed: int | None = None):
        """Training and validation loaders (``TabularDataLoaders``) over these rows.

        >>> dls = to.dataloaders(bs=64)   # doctest: +SKIP
        """
        return TabularDataLoaders.from_tabular(self, bs=bs, shuffle_train=shuffle_train, val_bs=val_bs,
                                               drop_last=drop_last, path=path, device=device, seed=seed)


class TabularDataLoaders(DataBunch):
    """Training and validation :class:`TabularDataLoader`\\ s of a :class:`TabularPandas`.

    ``classes`` is the dict of categorical vocabs, ``vocab`` the target's classes, ``c`` the
    number of outputs; ``test_dl(df)`` processes new rows like the training rows.

    >>> dls = TabularDataLoaders.from_df(df, y_names="Status", cat_names=["Home"],
    ...                                  cont_names=["Income"], procs=[Categorify, FillMissing])  # doctest: +SKIP
    >>> dls.classes["Home"].o2i["rent"]                                                         # doctest: +SKIP
    5
    """

    @property
    def tabular(self) -> TabularPandas:
        return self.train_ds.tabular

    @property
    def classes(self) -> dict:
        return self.tabular.classes

    @property
    def cat_names(self) -> list[str]:
        return self.tabular.cat_names

    @property
    def cont_names(self) -> list[str]:
        return self.tabular.cont_names

    @property
    def y_names(self) -> list[str]:
        return self.tabular.y_names

    @property
    def procs(self) -> list:
        return self.tabular.procs

    def show_batch(self, b=None, max_n: int = 10, nrows: int | None = None, ncols: int | None = None,
                   unique: bool = False, figsize=None) -> None:
        """Display ``max_n`` decoded training rows as a table."""
        self.train.show_batch(b, max_n=max_n)

    def show_results(self, learn, max_n: int = 10, figsize=None, ds_idx: int = 1, nrows: int | None = None,
                     dl: TabularDataLoader | None = None) -> None:
        """Display the rows of ``dl`` (default ``self[ds_idx]``) with ``learn``'s predictions in
        ``<target>_pred`` columns, as a table (``learn.show_results`` calls this)."""
        (dl if dl is not None else self[ds_idx]).show_results(learn, max_n=max_n)

    def decode_target(self, target):
        """A predicted class index → its label; a regression output → a float (or list)."""
        if isinstance(target, torch.Tensor):
            target = target.detach().cpu()
            if self.tabular.y_kind == "category":
                return self.tabular.y_vocab[int(target)]
            return target.item() if target.numel() == 1 else target.tolist()
        return target

    def test_dl(self, items, with_labels: bool | None = None, bs: int | None = None,
                num_workers: int | str | None = 0) -> TabularDataLoader:
        """A loader over new rows (a DataFrame, or a list of Series / dicts) processed like the
        training rows; targets are included when their columns are there (``with_labels=None``).

        >>> dl = dls.test_dl(test_df)          # doctest: +SKIP
        >>> preds, _ = learn.get_preds(dl=dl)  # doctest: +SKIP
        """
        df = rows_frame(items)
        if with_labels is False:
            df = df.drop(columns=[n for n in self.y_names if n in df.columns])
        elif with_labels and not all(n in df.columns for n in self.y_names):
            raise ValueError(f"test_dl(with_labels=True) but the rows lack target column(s) {self.y_names}; "
                             "add them, or pass with_labels=None")
        new = self.tabular.new(df)
        return self.valid.new(new.train, bs=bs, shuffle=False, drop_last=False)

    @classmethod
    def from_tabular(cls, to: TabularPandas, bs: int = 64, shuffle_train: bool = True, val_bs: int | None = None,
                     drop_last: bool | None = None, path=".", device: torch.device | str | None = None,
                     seed: int | None = None) -> "TabularDataLoaders":
        """Loaders over the splits of ``to`` (the training one shuffled and dropping its last partial
        batch, the validation one in order with ``val_bs``, default ``2 * bs``)."""
        to.tensors()  # built (and checked: NaN, non-code categories) now rather than at the first batch
        drop = shuffle_train if drop_last is None else drop_last
        train = TabularDataLoader(to.train, bs=bs, shuffle=shuffle_train, drop_last=drop and len(to.train) > bs,
                                  seed=seed)
        valid = TabularDataLoader(to.valid, bs=val_bs or 2 * bs, shuffle=False)
        return cls(train, valid, path=path, device=device)

    @classmethod
    def from_df(cls, df: pd.DataFrame, path=".", procs=None, cat_names=None, cont_names=None, y_names=None,
                y_block=None, valid_idx=None, bs: int = 64, shuffle_train: bool = True, val_bs: int | None = None,
                seed: int | None = None, device: torch.device | str | None = None,
                reduce_memory: bool = True, missing_targets: str = "raise") -> "TabularDataLoaders":
        """Loaders from a DataFrame: ``valid_idx`` (row positions) is the validation set, else a random
        20% (seeded by ``seed``). ``cont_names=None`` takes the numeric columns that are neither
        categorical nor targets. Rows without a target are an error naming them, or left out with
        ``missing_targets="drop"``.

        >>> dls = TabularDataLoaders.from_df(df, y_names="Status", cat_names=["Home", "Job"],
        ...                                  procs=[Categorify, FillMissing, Normalize])   # doctest: +SKIP
        """
        cat_names = [cat_names] if isinstance(cat_names, str) else list(cat_names or [])
        ys = [y_names] if isinstance(y_names, str) else list(y_names or [])
        if cont_names is None:
            cont_names = [c for c in df.columns if c not in cat_names and c not in ys
                          and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
        if valid_idx is None:
            splits = RandomSplitter(0.2, seed=seed)(range(len(df)))
        else:
            valid = np.asarray(list(valid_idx), dtype=np.int64)
            splits = (np.setdiff1d(np.arange(len(df)), valid), valid)
        to = TabularPandas(df, procs, cat_names, cont_names, y_names=ys, y_block=y_block, splits=splits,
                           reduce_memory=reduce_memory, missing_targets=missing_targets)
        return cls.from_tabular(to, bs=bs, shuffle_train=shuffle_train, val_bs=val_bs, path=path, device=device,
                                seed=seed)

    @classmethod
    def from_csv(cls, csv: str | os.PathLike, skipinitialspace: bool = True, path=".", procs=None, cat_names=None,
                 cont_names=None, y_names=None, y_block=None, valid_idx=None, bs: int = 64,
                 shuffle_train: bool = True, val_bs: int | None = None, seed: int | None = None,
                 device: torch.device | str | None = None, missing_targets: str = "raise") -> "TabularDataLoaders":
        """:meth:`from_df` on ``pd.read_csv(csv)``.

        >>> dls = TabularDataLoaders.from_csv(path / "credit_data.csv", y_names="Status",
        ...                                   cat_names=["Home"], procs=[Categorify, FillMissing])  # doctest: +SKIP
        """
        df = read_csv_file(csv, skipinitialspace=skipinitialspace)
        return cls.from_df(df, path=path, procs=procs, cat_names=cat_names, cont_names=cont_names, y_names=y_names,
                           y_block=y_block, valid_idx=valid_idx, bs=bs, shuffle_train=shuffle_train, val_bs=val_bs,
                           seed=seed, device=device, missing_targets=missing_targets)

    # --- export ------------------------------------------------------------------------------------

    def inference_spec(self) -> dict:
        """What inference needs, as JSON: the column names, each proc's learnt state (vocabs, fill
        values, means and stds) and the target's kind and classes."""
        to = self.tabular
        return {"format": SPEC_FORMAT, "cat_names": list(to.cat_names), "cont_names": list(to.cont_names),
                "y_names": list(to.y_names), "y_kind": to.y_kind,
                "y_vocab": None if to.y_vocab is None else list(to.y_vocab.items),
                "with_cont": to.with_cont, "flat_target": to.flat_target, "procs": [p.describe() for p in to.procs],
                "bs": self.valid.bs}

    @classmethod
    def from_inference_spec(cls, spec: dict, device: torch.device | str | None = "cpu") -> "TabularDataLoaders":
        """Loaders without rows, set up from :meth:`inference_spec`; ``test_dl(df)`` prepares new rows."""
        if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
            raise ValueError(f"not a tabular inference description (expected format {SPEC_FORMAT!r}); make it "
                             "with dls.inference_spec()")
        procs = [proc_from_description(d) for d in spec["procs"]]
        made = {f"{n}_na" for p in procs for n in getattr(p, "na_cols", [])}
        raw_cats = [n for n in spec["cat_names"] if n not in made]
        columns = raw_cats + spec["cont_names"] + spec["y_names"]
        to = TabularPandas(pd.DataFrame({name: [] for name in columns}), [as_proc(p) for p in procs],
                           cat_names=raw_cats, cont_names=spec["cont_names"], y_names=spec["y_names"],
                           do_setup=False, with_cont=spec["with_cont"], flat_target=spec.get("flat_target", False))
        to.cat_names, to.y_kind = list(spec["cat_names"]), spec["y_kind"]
        to.y_vocab = None if spec["y_vocab"] is None else CategoryMap(spec["y_vocab"], sort=False)
        to.items = to.process(to.items, "the empty template")
        bs = spec.get("bs", 128)
        return cls(TabularDataLoader(to.train, bs=bs), TabularDataLoader(to.valid, bs=bs), device=device)


register_code("data", TabularDataLoaders)  # export files may name it (fastlearn.registry)
