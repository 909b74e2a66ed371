"""The checks each sample of a ``Datasets`` passes as ``dsets[i]`` builds it, and how an item is
named in an error message.

A mask must have its image's size before any resize stretches it over an image it was not drawn
for, and key points must lie inside their image (unless their ``PointBlock(allow_outside=True)``
allows points outside): a ``get_y`` that gives another image's labels would otherwise train
without a sign. A failure is a ValueError naming the item, its split and the image's file.

>>> describe_item(list(range(100)), limit=20)
'[0, 1, 2, 3, 4, 5...'
>>> _height_width(torch.zeros(3, 32, 48))
(32, 48)
"""
from __future__ import annotations

import os

import torch


def describe_item(item, limit: int = 80) -> str:
    """``item`` as an error message shows it: its repr (a row's as a dict), cut to ``limit`` characters.

    >>> describe_item({"name": "cat.png", "label": "cat"})
    "{'name': 'cat.png', 'label': 'cat'}"
    """
    text = repr(item) if not hasattr(item, "to_dict") else repr(item.to_dict())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _height_width(value) -> tuple[int, int]:
    """The height and width of an image or mask: a PIL image, or an array / tensor ``(..., H, W)``."""
    if isinstance(getattr(value, "size", None), tuple) and not hasattr(value, "ndim"):
        return value.size[1], value.size[0]  # PIL gives (width, height)
    return tuple(value.shape[-2:])


def _source_name(value) -> str:
    """A file's whole path (a long one is not cut like other values), else the value shortened."""
    return os.fspath(value) if isinstance(value, (str, os.PathLike)) else describe_item(value)


def check_sample(dsets, sample: tuple, k: int) -> None:
    """Refuse ``sample``, item ``k`` (an index into all items) of the ``Datasets`` ``dsets``, if a
    mask is not its image's size or a key point lies outside its image; ``dsets[i]`` calls this.

    >>> from fastlearn.data.datasets import Datasets
    >>> check_sample(Datasets(["a"]), ("a",), 0)   # no image part: nothing to check
    """
    for image, part, kind in _parts_of_the_image(dsets):
        height, width = _height_width(sample[image])
        if kind == "mask" and (height, width) != _height_width(sample[part]):
            _refuse_mask_size(dsets, sample, image, part, k)
        if kind == "points":
            points = torch.as_tensor(sample[part]).reshape(-1, 2)
            outside = (points < 0).any(1) | (points[:, 0] > width) | (points[:, 1] > height)
            if outside.any():
                _refuse_points_outside(dsets, points[outside], (height, width), image, k)


def _parts_of_the_image(dsets) -> list[tuple[int, int, str]]:
    """``(image part, part, kind)`` for the masks, whose size must be the image's before any
    resize stretches a mask over an image it was not drawn for, and for the key points, which
    must lie inside the image (unless their block allows points outside). Worked out once and
    kept on ``dsets`` (its views and pickled copies keep it too)."""
    parts = dsets.__dict__.get("_image_parts")
    if parts is None:
        kinds = [block.kind for block in dsets.blocks]
        image = kinds.index("image") if "image" in kinds else None
        parts = [] if image is None else [
            (image, p, kind) for p, (kind, block) in enumerate(zip(kinds, dsets.blocks))
            if kind == "mask" or kind == "points" and not getattr(block, "allow_outside", False)]
        dsets._image_parts = parts
    return parts


def _refuse_points_outside(dsets, points: torch.Tensor, height_width: tuple[int, int], image: int, k: int):
    height, width = height_width
    shown = ", ".join(f"({x:g}, {y:g})" for x, y in points[:3].tolist()) + (", ..." if len(points) > 3 else "")
    raise ValueError(
        f"{dsets._where(k)} {k}: key point(s) {shown} lie outside the image {_source_name(dsets._source(image, k))}, "
        f"which is {width}x{height} pixels (width x height; x from 0 to {width}, y from 0 to {height}); check "
        "that get_y gives pixels (x, y) of this image, or pass PointBlock(allow_outside=True) to keep them")


def _refuse_mask_size(dsets, sample, image: int, mask: int, k: int):
    (ih, iw), (mh, mw) = _height_width(sample[image]), _height_width(sample[mask])
    mask_file, image_file = (_source_name(dsets._source(p, k)) for p in (mask, image))
    raise ValueError(
        f"{dsets._where(k)} {k}: the mask {mask_file} is {mh}x{mw} pixels "
        f"(height x width) but its image {image_file} is {ih}x{iw}; a "
        "mask must have its image's size: check that get_y gives this image's mask, or fix the mask file")
