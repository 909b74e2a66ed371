"""``DataBlock``: say what the inputs and targets are, how to get and split the items, and get
``Datasets`` and ``DataLoaders`` from any source (a folder, a list, a DataFrame).

>>> import pandas as pd
>>> df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": ["a", "b", "a", "b"]})
>>> dblock = DataBlock(blocks=(RegressionBlock, CategoryBlock), get_x=ColReader("x"),
...                    get_y=ColReader("y"), splitter=IndexSplitter([3]))
>>> dsets = dblock.datasets(df)
>>> dsets.train[1], dsets.vocab.items
((tensor(2.), tensor(1)), (#2) ['a', 'b'])
"""
from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable, Sequence

from fastlearn.data.blocks import CategoryBlock, RegressionBlock, TransformBlock, as_block  # noqa: F401
from fastlearn.data.checks import check_missing_targets_arg, row_names
from fastlearn.data.datasets import Datasets
from fastlearn.data.getters import ColReader  # noqa: F401  (doctest)
from fastlearn.data.splitters import IndexSplitter, RandomSplitter, check_splits  # noqa: F401
from fastlearn.data.summary import summarize
from fastlearn.data.transforms import as_transform
from fastlearn.foundation import L, listify


def _merge_tfms(block_tfms: list, user_tfms: list) -> list:
    """Block defaults (one per class), replaced by a user transform of the same class."""
    user = [as_transform(t) for t in user_tfms]
    user_classes = {type(t) for t in user if type(t).__name__ != "Transform"}
    merged, seen = [], set()
    for t in (as_transform(t) for t in block_tfms):
        if type(t) in user_classes or type(t) in seen:
            continue
        seen.add(type(t))
        merged.append(t)
    return merged + user


class DataBlock:
    """A recipe for data: ``blocks`` (inputs then targets; ``n_inp`` inputs, default all but the
    last), ``get_items`` (source → items), ``get_x`` / ``get_y`` (item → raw input / target),
    ``splitter`` (items → train and valid indices, default ``RandomSplitter()``), and extra
    ``item_tfms`` / ``batch_tfms``. With no blocks, two generic blocks return the raw values.

    A missing target (None, NaN, an empty label) is an error naming the rows; with
    ``missing_targets="drop"`` those items are left out, with a warning.
    """

    def __init__(self, blocks: Sequence | None = None, dl_type: type | None = None,
                 getters: Sequence[Callable | None] | None = None, n_inp: int | None = None,
                 item_tfms: Sequence | None = None, batch_tfms: Sequence | None = None,
                 get_items: Callable | None = None, splitter: Callable | None = None,
                 get_y: Callable | Sequence[Callable] | None = None,
                 get_x: Callable | Sequence[Callable] | None = None, missing_targets: str = "raise"):
        blocks = [TransformBlock(), TransformBlock()] if blocks is None else listify(blocks)
        if not blocks:
            raise ValueError("DataBlock(blocks=[]): give at least one block, e.g. (ImageBlock, CategoryBlock)")
        self.blocks = [as_block(b) for b in blocks]
        n = len(self.blocks)
        self.n_inp = n_inp if n_inp is not None else max(1, n - 1)
        if not 1 <= self.n_inp <= n:
            raise ValueError(f"n_inp={n_inp} with {n} blocks; expected 1..{n}")
        for name, f in (("get_items", get_items), ("splitter", splitter)):
            if f is not None and not callable(f):
                raise TypeError(f"DataBlock({name}={f!r}): expected a function")
        self.get_items, self.splitter, self.dl_type = get_items, splitter, dl_type
        self.getters = self._getters(getters, get_x, get_y, n)
        self.get_x, self.get_y = get_x, get_y
        self.missing_targets = check_missing_targets_arg(missing_targets)
        self.user_item_tfms, self.user_batch_tfms = listify(item_tfms), listify(batch_tfms)
        self.item_tfms = _merge_tfms([t for b in self.blocks for t in b.item_tfms], self.user_item_tfms)
        self.batch_tfms = _merge_tfms([t for b in self.blocks for t in b.batch_tfms], self.user_batch_tfms)

    def _getters(self, getters, get_x, get_y, n: int) -> list:
        if getters is not None:
            getters = listify(getters)
            if len(getters) != n:
                raise ValueError(f"getters has {len(getters)} functions for {n} blocks; give one per block")
            return getters
        result = [None] * n
        for name, fs, start, stop in (("get_x", get_x, 0, self.n_inp), ("get_y", get_y, self.n_inp, n)):
            fs = listify(fs)
            if len(fs) > stop - start:
                raise ValueError(f"{len(fs)} {name} functions for {stop - start} "
                                 f"{'input' if name == 'get_x' else 'target'} blocks")
            for k, f in enumerate(fs):
                if f is not None and not callable(f):
                    raise TypeError(f"DataBlock({name}={f!r}): expected a function of an item")
                result[start + k] = f
        return result

    def __repr__(self) -> str:
        return (f"DataBlock(blocks={self.blocks}, n_inp={self.n_inp}, get_items={self.get_items}, "
                f"splitter={self.splitter}, item_tfms={self.item_tfms}, batch_tfms={self.batch_tfms})")

    # --- building ---------------------------------------------------------------------------
    def collect_items(self, source):
        """``get_items(source)``, or the source itself; an empty result is an error."""
        if self.get_items is not None:
            items = self.get_items(source)
        elif isinstance(source, (str, os.PathLike)):
            raise TypeError(f"DataBlock got the folder {source!r} but no get_items; pass "
                            "get_items=get_image_files (or another getter) to list its files")
        else:
            items = source
        if not (hasattr(items, "iloc") and hasattr(items, "columns")):
            items = L(items)
        if len(items) == 0:
            where = f"{self.get_items.__name__ if hasattr(self.get_items, '__name__') else self.get_items}" \
                    f"({source!r})" if self.get_items is not None else f"the source {type(source).__name__}"
            raise ValueError(f"no items found: {where} returned nothing; check the path exists and "
                             "holds files with the expected extensions (e.g. .png, .jpg)")
        return items

    def split(self, items) -> tuple:
        splitter = self.splitter if self.splitter is not None else RandomSplitter()
        return splitter(items)

    def _drop_missing_targets(self, items, splits) -> tuple:
        """Items whose target is missing left out (after splitting, so index-based splitters
        keep their meaning), with a warning naming them."""
        splits = check_splits(splits, len(items), self.splitter)
        missing = set()
        for p in range(self.n_inp, len(self.blocks)):
            getter = self.getters[p]
            for i in range(len(items)):
                item = items.iloc[i] if hasattr(items, "iloc") else items[i]
                try:
                    value = getter(item) if getter is not None else item
                except Exception:  # noqa: BLE001  (Datasets reports a failing getter, naming the item)
                    continue
                if self.blocks[p].is_missing(value):
                    missing.add(i)
        if not missing:
            return items, splits
        dropped = sorted(missing)
        warnings.warn(f"DataBlock: dropped {len(dropped)} of {len(items)} items with a missing or empty "
                      f"target (missing_targets='drop'): {row_names(items, dropped)}", RuntimeWarning, stacklevel=3)
        keep = [i for i in range(len(items)) if i not in missing]
        new_position = {old: new for new, old in enumerate(keep)}
        items = items.iloc[keep] if hasattr(items, "iloc") else L([items[i] for i in keep])
        return items, [L([new_position[i] for i in split if i in new_position]) for split in splits]

    def type_tfms(self) -> list[list]:
        """Each block's type transforms, copied so each Datasets owns its vocab."""
        return [copy.deepcopy(b.type_tfms) for b in self.blocks]

    def datasets(self, source, verbose: bool = False) -> Datasets:
        """Items from ``source``, split, through each block's pipeline (set up on training items).

        Getters run on every item and targets are encoded at once, so a failing ``get_y``, a
        label missing from a given vocab or a bad split is reported now, naming the item.
        """
        items = self.collect_items(source)
        splits = self.split(items)
        if self.missing_targets == "drop":
            items, splits = self._drop_missing_targets(items, splits)
        blocks = [copy.copy(b) for b in self.blocks]
        dsets = Datasets(items, tfms=self.type_tfms(), splits=splits, n_inp=self.n_inp,
                         blocks=blocks, getters=self.getters, check_getters=True,
                         check=[p for p, b in enumerate(blocks) if b.eager])
        if verbose:
            print(f"{dsets!r}")
        return dsets

    def dataloaders(self, source, path: str | os.PathLike = ".", verbose: bool = False,
                    bs: int | None = 64, shuffle: bool = True, num_workers: int | str | None = None,
                    device=None, seed: int | None = None, drop_last: bool | None = None,
                    val_bs: int | None = None, before_batch: Callable | None = None,
                    pin_memory: bool | None = None, persistent_workers: bool | None = None,
                    dl_type: type | None = None, **loader_kwargs):
        """A ``DataBunch`` (alias ``DataLoaders``) from ``source``: the training loader shuffled
        (seeded by ``seed``), batch transforms on ``device`` (default: the best available).
        ``num_workers=None`` reads the config (``"auto"``).

        The loader class is the one the blocks ask for (a ``TextBlock``: ``LMDataLoader`` for a
        language model, ``SortedDL`` for a classifier), or ``dl_type``; the other keyword
        arguments (``loader_kwargs``) are forwarded to it, as the course passes ``seq_len``.
        One it does not take is a ``TypeError`` naming it and listing the valid ones.

        >>> dls_lm = DataBlock(blocks=TextBlock.from_folder(path, is_lm=True), get_items=get_text_files,
        ...                    splitter=RandomSplitter(0.1)).dataloaders(path, path=path, bs=128, seq_len=80)  # doctest: +SKIP
        """
        if loader_kwargs:  # refused before the (slow) datasets are built
            self._probe_datasets().checked_loader_kwargs(dl_type or self.dl_type, loader_kwargs, "dataloaders")
        dsets = self.datasets(source, verbose=verbose)
        return dsets.dataloaders(
            bs=bs, shuffle=shuffle, num_workers=num_workers, device=device, path=path, seed=seed,
            drop_last=drop_last, val_bs=val_bs, after_item=self.item_tfms,
            after_batch=self.batch_tfms, before_batch=before_batch, pin_memory=pin_memory,
            persistent_workers=persistent_workers, dl_type=dl_type or self.dl_type, **loader_kwargs)

    def _probe_datasets(self) -> Datasets:
        """Empty datasets with these blocks (only to check loader arguments)."""
        return Datasets([], tfms=[[] for _ in self.blocks], n_inp=self.n_inp, blocks=self.blocks)

    databunch = dataloaders

    def new(self, item_tfms: Sequence | None = None, batch_tfms: Sequence | None = None) -> "DataBlock":
        """A copy with other ``item_tfms`` / ``batch_tfms`` (the blocks' own are kept).

        >>> bears = bears.new(item_tfms=Resize(128, ResizeMethod.Squish))   # doctest: +SKIP
        """
        return DataBlock(blocks=self.blocks, dl_type=self.dl_type, getters=self.getters,
                         n_inp=self.n_inp, get_items=self.get_items, splitter=self.splitter,
                         missing_targets=self.missing_targets,
                         item_tfms=self.user_item_tfms if item_tfms is None else item_tfms,
                         batch_tfms=self.user_batch_tfms if batch_tfms is None else batch_tfms)

    def summary(self, source, bs: int = 4, show_batch: bool = False) -> None:
        """Walk one sample and one batch through every step, printing each result's type and
        shape; a failing step is named with the item, the exception and a fix (then raised)."""
        summarize(self, source, bs=bs, show_batch=show_batch)
