"""A split of a ``TabularPandas`` as tensors, and ``TabularDataLoader``, which slices them.

A batch is ``(x_cat int64 (B, n_cat), x_cont float32 (B, n_cont), y)``: one slice (or one
gather, when shuffled) of the whole split's tensors, with no per-row ``__getitem__`` and no
collate. The split's tensors are moved to the loader's device once and kept there.

>>> dl = TabularDataLoader(to.train, bs=64, shuffle=True)   # doctest: +SKIP
>>> x_cat, x_cont, y = dl.one_batch()                        # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from fastlearn.data.categorical import CategoryMap
from fastlearn.data.dataloader import DataLoader
from fastlearn.data.tables import as_slice


def table_tensors(to) -> tuple[torch.Tensor, ...]:
    """``(cats int64 (N, n_cat), conts float32 (N, n_cont), ys)`` from the processed rows of a
    ``TabularPandas`` (``conts`` left out without continuous inputs, ``ys`` without targets);
    a column that is not codes, or a NaN, is an error naming the column and the fix."""
    df = to.items
    for name in to.cat_names:
        if not (pd.api.types.is_integer_dtype(df[name]) or pd.api.types.is_bool_dtype(df[name])):
            raise ValueError(f"categorical column {name!r} holds {df[name].dtype} values, not codes; add "
                             "Categorify to procs")
    parts = [torch.from_numpy(_row_major(df, to.cat_names, np.int64))]
    if to.with_cont:
        conts = _row_major(df, to.cont_names, np.float32)
        if np.isnan(conts).any():
            nan_rows, nan_cols = np.nonzero(np.isnan(conts))
            name = to.cont_names[nan_cols[0]]
            raise ValueError(f"continuous column {name!r} has missing values (NaN), first at row "
                             f"{df.index[nan_rows[0]]!r} ({len(nan_rows)} in all); add FillMissing to "
                             "procs, or fill the column before building the loaders")
        parts.append(torch.from_numpy(conts))
    if to.y_names and all(name in df for name in to.y_names):
        if to.y_kind == "category":
            parts.append(torch.from_numpy(df[to.y_names[0]].to_numpy(dtype=np.int64, copy=True)))
        else:
            # (N, n_targets) even for one target, as a tabular model's output is (N, n_out): a loss such
            # as F.mse_loss would otherwise broadcast (N,) against (N, 1) into an (N, N) difference.
            # flat_target: (N,) for one target, as collaborative filtering's dot model predicts
            ys = _row_major(df, to.y_names, np.float32)
            flat = getattr(to, "flat_target", False) and ys.shape[1] == 1
            parts.append(torch.from_numpy(ys[:, 0].copy() if flat else ys))
    return tuple(parts)


def _row_major(df: pd.DataFrame, names: list[str], dtype) -> np.ndarray:
    """The columns ``names`` as a new ``(N, len(names))`` array in row order (C-contiguous, one
    allocation): pandas hands a frame's columns back column-major, and a batch gathers rows."""
    if not names:
        return np.empty((len(df), 0), dtype=dtype)
    return np.stack([df[name].to_numpy(dtype=dtype) for name in names], axis=1)


def display_table(df: pd.DataFrame) -> None:
    """Show ``df`` as a table in a notebook, printed elsewhere."""
    try:
        from IPython.display import display
    except ImportError:
        print(df.to_string())
    else:
        display(df)


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
        return self.tabular.items.iloc[as_slice(self.idxs)]

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
        rows = as_slice(self.idxs)  # consecutive rows (a split cut from an ordered table): views, no copies
        index = rows if isinstance(rows, slice) else torch.from_numpy(rows)
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
        if len(parts) > self.n_inp:
            ys = parts[self.n_inp].reshape(len(parts[0]), -1)  # (N,) classes or ratings, (N, n_targets) floats
            columns.update({name: ys[:, i] for i, name in enumerate(tabular.y_names[:ys.shape[1]])})
        return tabular.decode(pd.DataFrame(columns))

    def show_batch(self, b=None, max_n: int = 10, nrows: int | None = None, ncols: int | None = None,
                   unique: bool = False, figsize=None) -> None:
        """Display ``max_n`` decoded rows of a batch as a table (printed outside a notebook)."""
        decoded = self.decode_batch(b if b is not None else self.one_batch(), max_n=max_n)
        display_table(decoded)

    def results_table(self, learn, max_n: int = 10) -> pd.DataFrame:
        """The first ``max_n`` rows, decoded, with ``learn``'s predictions beside the targets in
        ``<target>_pred`` columns (class names, or numbers for a regression).

        >>> learn.dls.valid.results_table(learn, max_n=3).columns[-2:].tolist()   # doctest: +SKIP
        ['Status', 'Status_pred']
        """
        subset = self.new(sampler=range(min(max_n, len(self.dataset))), shuffle=False, drop_last=False)
        if subset.n == 0:
            raise ValueError("show_results: the loader has no rows to show")
        table = self.decode_batch(subset.one_batch(), max_n=max_n)
        _, _, decoded = learn.get_preds(dl=subset, with_decoded=True)
        decoded = decoded.detach().cpu()
        tabular = self.dataset.tabular
        if tabular.y_kind == "category":
            table[f"{tabular.y_names[0]}_pred"] = [tabular.y_vocab[int(i)] for i in decoded.reshape(-1)]
        else:
            decoded = decoded.reshape(len(table), -1).numpy()
            for i, name in enumerate(tabular.y_names[:decoded.shape[1]]):
                table[f"{name}_pred"] = decoded[:, i]
        return table

    def show_results(self, learn, max_n: int = 10) -> None:
        """Display :meth:`results_table` (printed outside a notebook)."""
        display_table(self.results_table(learn, max_n=max_n))
