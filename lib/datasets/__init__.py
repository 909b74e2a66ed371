"""Built-in datasets: real data from installable packages, written in the course's layouts.

Every function builds its folder under ``[paths] data`` of the config on first use (in a hidden
temporary folder renamed into place when complete) and returns it as a ``fastlearn.paths.Path``;
later calls return the folder at once. No network is used: the sources are packages (see
``fastlearn.datasets.sources`` and ``make sources``), and a missing source raises
``FileNotFoundError`` or ``ModuleNotFoundError`` naming the one command that installs it.

One module per kind of source: ``images`` (class folders of PNGs), ``canvases`` (multi-label,
keypoint and segmentation canvases), ``text`` (reviews and novels), ``tables`` (tabular CSVs),
``ratings`` (MovieLens); ``sources`` finds the installed source packages and builds a folder
once; ``idx`` and ``rdata`` read the MNIST and R file formats.

=========================  ==========================================  =========================
function                   what                                        course layout of
=========================  ==========================================  =========================
``fashion_mnist``          10 clothing classes, PNG folders            ``train/``/``valid/``
``mnist_digits``           digits 0-9, PNG folders                     ``URLs.MNIST``
``mnist_sample``           3 vs 7, PNG folders + ``labels.csv``         ``URLs.MNIST_SAMPLE``
``fashion_multilabel``     1-3 items per image, ``train.csv``           ``URLs.PASCAL_2007``
``fashion_keypoints``      an item's centre, ``points.csv``             (PointBlock lessons)
``fashion_segmentation``   per-pixel masks, ``codes.txt``               ``URLs.CAMVID_TINY``
``food_reviews``           great/other reviews, ``.txt`` + ``texts.csv``  ``URLs.IMDB(_SAMPLE)``
``jane_austen``            six novels by chapter, ``train.txt``         (language-model lessons)
``human_numbers``          1 to 9,999 in words, ``train.txt``           ``URLs.HUMAN_NUMBERS``
``credit_data``            tabular, categorical + continuous + NaN     (``ADULT_SAMPLE`` lesson)
``wa_churn``               tabular churn                               (tabular lessons)
``movielens_100k``         100k ratings + titles                       ``URLs.ML_SAMPLE``/``ML_100k``
=========================  ==========================================  =========================

``untar_data`` never substitutes these for a URL: ``untar_data(URLs.MNIST_SAMPLE)`` downloads
MNIST_SAMPLE or fails. To run course code offline, change its data line to
``path = builtin_path(URLs.MNIST_SAMPLE)``: the built-in dataset with the same layout (other
images, so other numbers).

>>> from fastlearn.datasets import builtin_path, fashion_mnist
>>> from fastlearn.external import URLs
>>> path = builtin_path(URLs.MNIST_SAMPLE)   # doctest: +SKIP
>>> [p.name for p in path.ls()]              # doctest: +SKIP
['labels.csv', 'train', 'valid']
"""
from __future__ import annotations

from collections.abc import Callable

from fastlearn.datasets.canvases import fashion_keypoints, fashion_multilabel, fashion_segmentation
from fastlearn.datasets.images import FASHION_CLASSES, fashion_mnist, mnist_digits, mnist_sample
from fastlearn.datasets.ratings import movielens_100k
from fastlearn.datasets.sources import sources_path
from fastlearn.datasets.tables import credit_data, wa_churn
from fastlearn.datasets.text import AUSTEN_BOOKS, food_reviews, human_numbers, jane_austen
from fastlearn.external import URLs, url_file_name
from fastlearn.paths import Path

__all__ = [
    "AUSTEN_BOOKS", "BUILTIN_EQUIVALENTS", "FASHION_CLASSES", "builtin_path", "credit_data",
    "fashion_keypoints", "fashion_mnist", "fashion_multilabel", "fashion_segmentation", "food_reviews",
    "human_numbers", "jane_austen", "mnist_digits", "mnist_sample", "movielens_100k", "sources_path", "wa_churn",
]

BUILTIN_EQUIVALENTS: dict[str, Callable[[], Path]] = {
    URLs.MNIST_SAMPLE: mnist_sample,
    URLs.MNIST_TINY: lambda: mnist_sample(n_per_class=50, n_valid_per_class=50),
    URLs.MNIST: mnist_digits,
    URLs.PASCAL_2007: fashion_multilabel,
    URLs.CAMVID_TINY: fashion_segmentation,
    URLs.IMDB: food_reviews,
    URLs.IMDB_SAMPLE: food_reviews,
    URLs.HUMAN_NUMBERS: human_numbers,
    URLs.ML_SAMPLE: movielens_100k,
    URLs.ML_100k: movielens_100k,
}
"""Course URLs whose archive layout a built-in dataset reproduces, and that dataset."""


def builtin_path(url: str) -> Path:
    """The built-in dataset laid out like the archive at ``url`` (built on first use).

    The files the course's code opens are there under the same names (``labels.csv``,
    ``train/3``, ``codes.txt``, ``texts.csv``, ``ratings.csv``, ...), with other data: Fashion
    -MNIST canvases instead of PASCAL photos, food reviews instead of IMDB's (the human numbers are
    the same, generated). A URL without an equivalent raises ``ValueError`` listing those with one.
    A mirror URL (another base) matches by its archive name.

    >>> builtin_path(URLs.CAMVID_TINY).ls()   # doctest: +SKIP
    (#3) [Path('codes.txt'), Path('images'), Path('labels')]
    """
    by_name = {url_file_name(known): build for known, build in BUILTIN_EQUIVALENTS.items()}
    build = BUILTIN_EQUIVALENTS.get(url) or by_name.get(url_file_name(url))
    if build is None:
        known = sorted(name for name, value in vars(URLs).items()
                       if isinstance(value, str) and value in BUILTIN_EQUIVALENTS)
        raise ValueError(
            f"{url!r} has no built-in equivalent; built-in equivalents exist for "
            f"{', '.join('URLs.' + name for name in known)}. For other lessons use a built-in "
            "dataset directly (fashion_mnist(), credit_data(), wa_churn(), fashion_keypoints()) "
            "or download the archive with untar_data(url) where there is a network")
    return build()
