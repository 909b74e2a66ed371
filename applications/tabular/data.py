"""Tabular loaders: batches sliced from pre-built tensors, and ``TabularDataLoaders``.

A batch is ``(x_cat int64 (B, n_cat), x_cont float32 (B, n_cont), y)``: one slice (or one
gather, when shuffled) of the whole split's tensors, with no per-row ``__getitem__`` and no
collate. The split's tensors are moved to the loader's device once and kept there.

>>> dls = TabularDataLoaders.from_csv(path / "credit_data.csv", y_names="Status",
...     cat_names=["Home", "Job"], cont_names=["Income", "Age"],
...     procs=[Categorify, FillMissing, Normalize])                  # doctest: +SKIP
>>> x_cat, x_cont, y = dls.one_batch()                               # doctest: +SKIP
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch

from fastlearn.data.databunch import DataBunch, DataLoader
from fastlearn.data.splitters import RandomSplitter
from fastlearn.data.tables import read_csv_file
from fastlearn.registry import register_code
from fastlearn.tabular.tabular_pandas import TabularPandas, TabularSplit
from fastlearn.tabular.procs import as_proc, proc_from_description

SPEC_FORMAT = "fastlearn.tabular/1"


class TabularDataLoader(DataLoader):
    """Batches of a :class:`TabularSplit` by index ranges: ``bs`` rows at a time, shuffled by a
    seeded permutation when ``shuffle``. A ``sampler`` (e.g. distributed) gives the row order.

    >>> dl = TabularDataLoader(to.train, bs=64, shuffle=True)   # doctest: +SKIP
    >>> [t.shape for t in dl.one_batch()]                       # doctest: +SKIP
    [torch.Size([64, 5]), torch.Size([64, 9]), torch.Size([64])]
    """

    def __init__(self, dataset: TabularSplit, bs: int = 64, shuffle: bool = False, drop_last: bool = False,
                 device: torch.device | str | None = None, seed: int | None = None,
                 sampler: torch.utils.data.Sampler | None = None, num_workers: int | str | None = 0) -> None:
        super().__init__(dataset, bs=bs, shuffle=shuffle, drop_last=drop_last, num_workers=0, device=device,
                         seed=seed, sampler=sampler, n_inp=dataset.n_inp)
        self._cache: tuple[torch.device | None, tuple[torch.Tensor, ...]] | None = None

    def _split_tensors(self) -> tuple[torch.Tensor, ...]:
        if self._cache is None or self._cache[0] != self.device:
            tensors = self.dataset.tensors()
            if self.device is not None:
                tensors = tuple(t.to(self.device) for t in tensors)
            self._cache = (self.device, tensors)
        return self._cache[1]

    def _order(self) -> torch.Tensor | None:
        if self.sampler is not None:
            return torch.as_tensor(list(iter(self.sampler)), dtype=torch.long)
        if not self.shuffle:
            return None
        generator = torch.Generator()
        if self.seed is not None:
            generator.manual_seed(self.seed + self.epoch)
        else:
            generator.seed()
        return torch.randperm(len(self.dataset), generator=generator)

    def __iter__(self):
        tensors, order = self._split_tensors(), self._order()
        n = self.n
        stop = n - n % self.bs if self.drop_last else n
        if order is not None:
            order = order.to(tensors[0].device)
        for start in range(0, stop, self.bs):
            end = min(start + self.bs, n)
            if order is None:
                yield tuple(t[start:end] for t in tensors)
            else:
                index = order[start:end]
                yield tuple(t.index_select(0, index) for t in tensors)
        if self.shuffle and self.seed is not None:
            self.epoch += 1

    def to(self, device: torch.device | str) -> "TabularDataLoader":
        self.device = torch.device(device)
        return self

    def new(self, dataset: TabularSplit | None = None, bs: int | None = None, shuffle: bool | None = None,
            drop_last: bool | None = None, device: torch.device | str | None = None, seed: int | None = None,
            sampler=None, num_workers: int | str | None = 0) -> "TabularDataLoader":
        """A copy with some arguments changed, e.g. ``dl.new(shuffle=False, bs=128)``."""
        new = type(self)(dataset if dataset is not None else self.dataset, bs=bs or self.bs,
                         shuffle=self.shuffle if shuffle is None else shuffle,
                         drop_last=self.drop_last if drop_last is None else drop_last,
                         device=device if device is not None else self.device,
                         seed=self.seed if seed is None else seed, sampler=sampler)
        new.split_idx = self.split_idx
        return new

    def decode_batch(self, batch, max_n: int = 9) -> pd.DataFrame:
        """A batch back to a DataFrame of readable rows (labels, unscaled values)."""
        tabular = self.dataset.tabular
        parts = [t[:max_n].detach().cpu().numpy() for t in batch]
        columns = {name: parts[0][:, i] for i, name in enumerate(tabular.cat_names)}
        if tabular.with_cont:
            columns.update({name: parts[1][:, i] for i, name in enumerate(tabular.cont_names)})
        if len(parts) > self.n_inp and len(tabular.y_names) == 1:
            columns[tabular.y_names[0]] = parts[self.n_inp]
        return tabular.decode(pd.DataFrame(columns))

    def show_batch(self, b=None, max_n: int = 10, nrows: int | None = None, ncols: int | None = None,
                   unique: bool = False, figsize=None) -> None:
        """Display ``max_n`` decoded rows of a batch as a table (printed outside a notebook)."""
        decoded = self.decode_batch(b if b is not None else self.one_batch(), max_n=max_n)
        try:
            from IPython.display import display
        except ImportError:
            print(decoded.to_string())
        else:
            display(decoded)


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
        if isinstance(items, pd.DataFrame):
            df = items
        else:
            df = pd.DataFrame([item.to_dict() if isinstance(item, pd.Series) else dict(item) for item in items])
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
                "with_cont": to.with_cont, "procs": [p.describe() for p in to.procs], "bs": self.valid.bs}

    @classmethod
    def from_inference_spec(cls, spec: dict, device: torch.device | str | None = "cpu") -> "TabularDataLoaders":
        """Loaders without rows, set up from :meth:`inference_spec`; ``test_dl(df)`` prepares new rows."""
        from fastlearn.data.categorical import CategoryMap
        if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
            raise ValueError(f"not a tabular inference description (expected format {SPEC_FORMAT!r}); make it "
                             "with dls.inference_spec()")
        procs = [proc_from_description(d) for d in spec["procs"]]
        made = {f"{n}_na" for p in procs for n in getattr(p, "na_cols", [])}
        raw_cats = [n for n in spec["cat_names"] if n not in made]
        columns = raw_cats + spec["cont_names"] + spec["y_names"]
        to = TabularPandas(pd.DataFrame({name: [] for name in columns}), [as_proc(p) for p in procs],
                           cat_names=raw_cats, cont_names=spec["cont_names"], y_names=spec["y_names"],
                           do_setup=False, with_cont=spec["with_cont"])
        to.cat_names, to.y_kind = list(spec["cat_names"]), spec["y_kind"]
        to.y_vocab = None if spec["y_vocab"] is None else CategoryMap(spec["y_vocab"], sort=False)
        to.items = to.process(to.items, "the empty template")
        bs = spec.get("bs", 128)
        return cls(TabularDataLoader(to.train, bs=bs), TabularDataLoader(to.valid, bs=bs), device=device)


register_code("data", TabularDataLoaders)  # export files may name it (fastlearn.registry)
