"""Built-in multi-label, keypoint and segmentation sets made from real Fashion-MNIST photos.

Each image is a black ``size`` x ``size`` canvas with 28x28 Fashion-MNIST items (from the
official test file) pasted on it; positions, classes and items come from a seeded generator, so
the same arguments give the same files everywhere. Every folder is built once under
``[paths] data`` and reused (see :func:`fastlearn.datasets.sources.build_once`).

Source of the items: Debian ``dataset-fashion-mnist`` (``apt-get install -y
dataset-fashion-mnist``), MIT licence, Zalando Research.

>>> from fastlearn.datasets.canvases import fashion_segmentation
>>> path = fashion_segmentation(n_images=20)   # doctest: +SKIP
>>> [p.name for p in path.ls()]                # doctest: +SKIP
['codes.txt', 'images', 'labels']
"""
from __future__ import annotations

import os
import pathlib

import numpy as np
from PIL import Image

from fastlearn.datasets.images import FASHION_CLASSES, save_png
from fastlearn.paths import Path
from fastlearn.datasets.sources import build_once, check_count, fashion_mnist_arrays

ITEM = 28
MASK_THRESHOLD = 32
"""Item pixels brighter than this (of 255) belong to the item in a segmentation mask."""


class _Items:
    """The test-file items by class, and a seeded way to paste them on canvases."""

    def __init__(self, seed: int):
        self.images, labels = fashion_mnist_arrays("t10k")
        self.by_class = [np.flatnonzero(labels == label) for label in range(len(FASHION_CLASSES))]
        self.rng = np.random.default_rng(seed)

    def item(self, label: int) -> np.ndarray:
        return self.images[self.rng.choice(self.by_class[label])]

    def cell_corners(self, size: int, count: int) -> list[tuple[int, int]]:
        """Top-left corners of ``count`` items in distinct cells of a 2x2 grid, with jitter."""
        cell = size // 2
        cells = self.rng.choice(4, size=count, replace=False)
        return [((c // 2) * cell + int(self.rng.integers(0, cell - ITEM + 1)),
                 (c % 2) * cell + int(self.rng.integers(0, cell - ITEM + 1))) for c in cells]


def _paste(canvas: np.ndarray, item: np.ndarray, top: int, left: int) -> None:
    region = canvas[top:top + ITEM, left:left + ITEM]
    np.maximum(region, item, out=region)


def _csv_rows(header: str, rows: list[str]) -> str:
    return header + "\n" + "\n".join(rows) + "\n"


def fashion_multilabel(n_train: int = 400, n_valid: int = 100, size: int = 64, seed: int = 42,
                       data: str | os.PathLike | None = None) -> Path:
    """A multi-label set in the layout of the course's ``URLs.PASCAL_2007``: canvases holding 1
    to 3 items of distinct classes, in ``train/<nnnnn>.png``, and ``train.csv`` (also written
    as ``labels.csv``) with columns ``fname,labels,is_valid``; ``labels`` are the classes
    present, sorted and space-separated (``"Bag Sneaker"``), ``is_valid`` is ``True`` for the
    last ``n_valid`` rows.

    ``size`` (at least 56) is the canvas side; items sit in distinct cells of a 2x2 grid.
    Built once in ``fashion_multilabel_<n_train>-<n_valid>_<size>px_seed<seed>``.
    Size: about 1 kB per 64 px image.

    >>> import pandas as pd
    >>> path = fashion_multilabel(n_train=40, n_valid=10)   # doctest: +SKIP
    >>> pd.read_csv(path / "train.csv").columns.tolist()     # doctest: +SKIP
    ['fname', 'labels', 'is_valid']
    """
    n_train = check_count("n_train", n_train, 1, 100_000)
    n_valid = check_count("n_valid", n_valid, 0, 100_000)
    size = check_count("size", size, 2 * ITEM, 1024)

    def build(folder: pathlib.Path) -> None:
        items = _Items(seed)
        (folder / "train").mkdir()
        rows = []
        for number in range(n_train + n_valid):
            count = int(items.rng.integers(1, 4))
            labels = items.rng.choice(len(FASHION_CLASSES), size=count, replace=False)
            canvas = np.zeros((size, size), np.uint8)
            for label, (top, left) in zip(labels, items.cell_corners(size, count)):
                _paste(canvas, items.item(int(label)), top, left)
            name = f"{number:05d}.png"
            save_png(canvas, folder / "train" / name, size)
            tags = " ".join(sorted(FASHION_CLASSES[int(label)] for label in labels))
            rows.append(f"{name},{tags},{number >= n_train}")
        text = _csv_rows("fname,labels,is_valid", rows)
        (folder / "train.csv").write_text(text)
        (folder / "labels.csv").write_text(text)

    return build_once(f"fashion_multilabel_{n_train}-{n_valid}_{size}px_seed{seed}", build, data)


def fashion_keypoints(n_train: int = 400, n_valid: int = 100, size: int = 64, seed: int = 42,
                      data: str | os.PathLike | None = None) -> Path:
    """A keypoint-regression set: one item pasted at a random place on each canvas, in
    ``images/<nnnnn>.png``, and ``points.csv`` with ``fname,x,y,is_valid``, where ``(x, y)`` is
    the item's centre (the brightness-weighted centroid) in pixels from the top-left corner of
    the image, pixel centres at ``i + 0.5``; ``is_valid`` is ``True`` for the last ``n_valid``.

    Built once in ``fashion_keypoints_<n_train>-<n_valid>_<size>px_seed<seed>``.
    Size: about 1 kB per 64 px image.

    >>> import pandas as pd
    >>> path = fashion_keypoints(n_train=40, n_valid=10)    # doctest: +SKIP
    >>> pd.read_csv(path / "points.csv").columns.tolist()  # doctest: +SKIP
    ['fname', 'x', 'y', 'is_valid']
    """
    n_train = check_count("n_train", n_train, 1, 100_000)
    n_valid = check_count("n_valid", n_valid, 0, 100_000)
    size = check_count("size", size, ITEM, 1024)

    def build(folder: pathlib.Path) -> None:
        items = _Items(seed)
        (folder / "images").mkdir()
        rows = []
        for number in range(n_train + n_valid):
            item = items.item(int(items.rng.integers(len(FASHION_CLASSES))))
            top, left = (int(v) for v in items.rng.integers(0, size - ITEM + 1, size=2))
            canvas = np.zeros((size, size), np.uint8)
            _paste(canvas, item, top, left)
            weights = canvas.astype(np.float64)
            rows_index, cols_index = np.indices(canvas.shape)
            x = (weights * (cols_index + 0.5)).sum() / weights.sum()
            y = (weights * (rows_index + 0.5)).sum() / weights.sum()
            name = f"{number:05d}.png"
            save_png(canvas, folder / "images" / name, size)
            rows.append(f"{name},{x:.3f},{y:.3f},{number >= n_train}")
        (folder / "points.csv").write_text(_csv_rows("fname,x,y,is_valid", rows))

    return build_once(f"fashion_keypoints_{n_train}-{n_valid}_{size}px_seed{seed}", build, data)


def fashion_segmentation(n_images: int = 100, size: int = 64, seed: int = 42,
                         data: str | os.PathLike | None = None) -> Path:
    """A segmentation set in the layout of the course's ``URLs.CAMVID_TINY``: canvases with 1 to
    3 items in ``images/<nnnnn>.png``, masks in ``labels/<nnnnn>_P.png`` (one byte per pixel:
    the class code) and ``codes.txt``, one code name per line: ``background`` (0), then the 10
    classes (1 to 10). A pixel is an item's where the item is brighter than
    :data:`MASK_THRESHOLD`. There is no fixed split (the course uses a random splitter).

    Built once in ``fashion_segmentation_<n_images>_<size>px_seed<seed>``.
    Size: about 1.5 kB per 64 px image and mask.

    >>> path = fashion_segmentation(n_images=20)                        # doctest: +SKIP
    >>> mask_of = lambda image: path / "labels" / f"{image.stem}_P{image.suffix}"
    """
    n_images = check_count("n_images", n_images, 1, 100_000)
    size = check_count("size", size, 2 * ITEM, 1024)

    def build(folder: pathlib.Path) -> None:
        items = _Items(seed)
        (folder / "images").mkdir()
        (folder / "labels").mkdir()
        (folder / "codes.txt").write_text("\n".join(("background",) + FASHION_CLASSES) + "\n")
        for number in range(n_images):
            count = int(items.rng.integers(1, 4))
            canvas = np.zeros((size, size), np.uint8)
            mask = np.zeros((size, size), np.uint8)
            for top, left in items.cell_corners(size, count):
                label = int(items.rng.integers(len(FASHION_CLASSES)))
                item = items.item(label)
                _paste(canvas, item, top, left)
                mask[top:top + ITEM, left:left + ITEM][item > MASK_THRESHOLD] = label + 1
            save_png(canvas, folder / "images" / f"{number:05d}.png", size)
            Image.fromarray(mask, mode="L").save(folder / "labels" / f"{number:05d}_P.png")

    return build_once(f"fashion_segmentation_{n_images}_{size}px_seed{seed}", build, data)
