"""``CollabDataLoaders``: (user, item) → rating batches for collaborative filtering.

Batches are ``(x int64 (B, 2), y float32 (B,))``: user and item codes (``#na#`` is 0, so the
codes index ``dls.classes[user]`` / ``dls.classes[item]``), and the rating. Built on the tabular
pipeline: the two columns are categorified on the training rows, and batches are slices of
pre-built tensors.

>>> dls = CollabDataLoaders.from_df(ratings, item_name="title", bs=64)   # doctest: +SKIP
>>> x, y = dls.one_batch()                                               # doctest: +SKIP
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch

from fastlearn.data.blocks import RegressionBlock
from fastlearn.data.checks import missing_in_columns, row_names
from fastlearn.data.splitters import RandomSplitter
from fastlearn.data.tables import read_csv_file
from fastlearn.registry import register_code
from fastlearn.tabular.loader import TabularDataLoader
from fastlearn.tabular.tabular_pandas import TabularDataLoaders, TabularPandas, rows_frame
from fastlearn.tabular.procs import Categorify


class CollabDataLoaders(TabularDataLoaders):
    """Loaders of ratings: ``classes`` is ``{user_col: CategoryMap, item_col: CategoryMap}``.

    >>> dls = CollabDataLoaders.from_csv(path / "ratings.csv")   # doctest: +SKIP
    >>> len(dls.classes["user"])                                 # doctest: +SKIP
    944
    """

    @property
    def user_name(self) -> str:
        return self.cat_names[0]

    @property
    def item_name(self) -> str:
        return self.cat_names[1]

    def test_dl(self, items, with_labels: bool | None = None, bs: int | None = None,
                num_workers: int | str | None = 0) -> TabularDataLoader:
        """A loader over new ratings (a DataFrame, or a list of Series / dicts) processed like the
        training rows; a missing user or item id is a ValueError naming the column and rows, and an
        id not seen in training is predicted as ``#na#`` with a warning naming it.

        >>> learn.predict(pd.Series({"user": 14, "item": 51}))   # doctest: +SKIP
        """
        df = rows_frame(items)
        _check_ids(df, [name for name in (self.user_name, self.item_name) if name in df.columns], "the new data")
        return super().test_dl(df, with_labels=with_labels, bs=bs, num_workers=num_workers)

    @classmethod
    def from_df(cls, ratings: pd.DataFrame, valid_pct: float = 0.2, user_name: str | None = None,
                item_name: str | None = None, rating_name: str | None = None, seed: int | None = None, path=".",
                bs: int = 64, val_bs: int | None = None, shuffle: bool = True,
                device: torch.device | str | None = None, missing_targets: str = "raise") -> "CollabDataLoaders":
        """Loaders from a ratings DataFrame; the user, item and rating columns default to the first,
        second and third; a random ``valid_pct`` of the rows (seeded by ``seed``) is validation.
        Rows without a rating are an error naming them, or left out with ``missing_targets="drop"``.

        >>> dls = CollabDataLoaders.from_df(ratings, item_name="title", bs=64, seed=42)   # doctest: +SKIP
        """
        if not isinstance(ratings, pd.DataFrame):
            raise TypeError(f"CollabDataLoaders.from_df takes a DataFrame of ratings, got {type(ratings).__name__}")
        if len(ratings.columns) < 3 and None in (user_name, item_name, rating_name):
            raise ValueError(f"the ratings have columns {list(ratings.columns)}; by default the first three are "
                             "user, item and rating: pass user_name=, item_name= and rating_name=")
        user_name = user_name if user_name is not None else ratings.columns[0]
        item_name = item_name if item_name is not None else ratings.columns[1]
        rating_name = rating_name if rating_name is not None else ratings.columns[2]
        _check_names(ratings, {"user_name": user_name, "item_name": item_name, "rating_name": rating_name})
        _check_ids(ratings, [user_name, item_name], "the ratings")
        splits = RandomSplitter(valid_pct, seed=seed)(range(len(ratings)))
        categorify = Categorify(unseen="na")  # a random split leaves some users or items in validation only
        to = TabularPandas(ratings, [categorify], cat_names=[user_name, item_name],
                           y_names=[rating_name], y_block=RegressionBlock, splits=splits, with_cont=False,
                           missing_targets=missing_targets, flat_target=True)
        categorify.unseen = "warn"  # new rows (predict, test_dl) are told about ids not seen in training
        return cls.from_tabular(to, bs=bs, shuffle_train=shuffle, val_bs=val_bs, path=path, device=device, seed=seed)

    @classmethod
    def from_csv(cls, csv: str | os.PathLike, valid_pct: float = 0.2, user_name: str | None = None,
                 item_name: str | None = None, rating_name: str | None = None, seed: int | None = None,
                 path=".", bs: int = 64, val_bs: int | None = None, shuffle: bool = True,
                 device: torch.device | str | None = None, missing_targets: str = "raise") -> "CollabDataLoaders":
        """:meth:`from_df` on ``pd.read_csv(csv)``.

        >>> dls = CollabDataLoaders.from_csv(movielens_100k() / "ratings.csv")   # doctest: +SKIP
        """
        return cls.from_df(read_csv_file(csv), valid_pct=valid_pct, user_name=user_name, item_name=item_name,
                           rating_name=rating_name, seed=seed, path=path, bs=bs, val_bs=val_bs, shuffle=shuffle,
                           device=device, missing_targets=missing_targets)


CollabDataBunch = CollabDataLoaders


def _check_names(df: pd.DataFrame, names: dict[str, str]) -> None:
    """A ValueError naming the argument whose column is not in ``df`` (with the columns it has), or
    the two arguments that name one column."""
    for argument, name in names.items():
        if name not in df.columns:
            raise ValueError(f"{argument}={name!r} is not a column of the ratings; their columns are "
                             f"{list(df.columns)[:20]}{'...' if len(df.columns) > 20 else ''}: fix the name")
    seen: dict[str, str] = {}
    for argument, name in names.items():
        if name in seen:
            raise ValueError(f"{seen[name]} and {argument} both name the column {name!r}; the user, item and rating "
                             "are three different columns: pass the other one")
        seen[name] = argument


def _check_ids(df: pd.DataFrame, names: list[str], source: str) -> None:
    """A ValueError naming the column and rows of ``df`` whose user or item id is missing (None,
    NaN or blank): it would become an id of its own, ``#na#``, shared by every such row."""
    for name in names:
        missing = missing_in_columns(df, [name])
        if missing.any():
            positions = np.flatnonzero(missing).tolist()
            example = df[name].iloc[positions[0]]
            example = example.item() if isinstance(example, np.generic) else example
            raise ValueError(f"column {name!r} of {source} has a missing id (e.g. {example!r}) "
                             f"in {len(positions)} of {len(df)} rows: {row_names(df, positions)}; every id must "
                             "name a user or item: fill or remove those rows")


register_code("data", CollabDataLoaders)  # export files may name it (fastlearn.registry)
