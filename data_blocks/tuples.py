"""``fastuple``: a tuple whose parts transforms change one by one (chapter 11's ``SiameseImage``).

A transform called on a ``fastuple`` applies to each part whose kind it changes and returns the
same class of tuple: ``Resize(224)(SiameseImage(img1, img2, True))`` resizes both images and
keeps the label. The kind of each part comes from the value (:func:`kind_of_value`): an image the
library opens (``PILImage``) is an ``"image"``, a ``PILMask`` a ``"mask"``, anything else
``"raw"``.

>>> t = fastuple(1, 2, 3)
>>> t, t.add(10), fastuple([4, 5])
((1, 2, 3), (11, 12, 13), (4, 5))
"""
from __future__ import annotations

import operator
from collections.abc import Callable

import numpy as np
import PIL.Image


def kind_of_value(value) -> str:
    """The sample kind of a value found in a tuple: its class's ``sample_kind`` (``PILImage``:
    ``"image"``, ``PILMask``: ``"mask"``, ``TensorImage``: ``"image"``), ``"image"`` for any
    other PIL image, else ``"raw"`` (left alone by image transforms).

    >>> kind_of_value(PIL.Image.new("RGB", (2, 2))), kind_of_value(True)
    ('image', 'raw')
    """
    kind = getattr(type(value), "sample_kind", None)
    if kind is not None:
        return kind
    if isinstance(value, PIL.Image.Image):
        return "image"
    return "raw"


class fastuple(tuple):
    """A tuple built from its parts (``fastuple(a, b, c)``) or from one iterable
    (``fastuple([a, b, c])``); a single non-iterable gives a one-part tuple.

    Subclass it to give a tuple of values its own ``show`` (chapter 11:
    ``class SiameseImage(fastuple)``). Transforms map over its parts (see the module docstring).
    ``add``, ``mul``, ``sub`` and ``truediv`` work part by part (``+`` still concatenates).
    """

    def __new__(cls, x=None, *rest):
        if x is None and not rest:
            parts: tuple = ()
        elif rest:
            parts = (x, *rest)
        elif isinstance(x, tuple):
            parts = x
        elif isinstance(x, (list, range)) or (hasattr(x, "__iter__") and not isinstance(x, (str, bytes, dict))
                                              and not hasattr(x, "shape")):
            parts = tuple(x)
        else:
            parts = (x,)
        return super().__new__(cls, parts)

    def with_parts(self, parts) -> "fastuple":
        """The same class of tuple holding ``parts`` (what transforms return)."""
        return tuple.__new__(type(self), tuple(parts))

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kind of each part (:func:`kind_of_value`)."""
        return tuple(kind_of_value(part) for part in self)

    def _op(self, op: Callable, other) -> "fastuple":
        others = other if isinstance(other, tuple) else (other,) * len(self)
        if len(others) != len(self):
            raise ValueError(f"{type(self).__name__} of {len(self)} parts combined with {len(others)} values")
        return self.with_parts(op(a, b) for a, b in zip(self, others))

    def add(self, other) -> "fastuple":
        return self._op(operator.add, other)

    def sub(self, other) -> "fastuple":
        return self._op(operator.sub, other)

    def mul(self, other) -> "fastuple":
        return self._op(operator.mul, other)

    def truediv(self, other) -> "fastuple":
        return self._op(operator.truediv, other)

    def show(self, ctx=None, title: str | None = None, **kwargs):
        """Draw the image parts side by side on ``ctx`` (a matplotlib axes, new if None), with the
        other parts as the title; returns the axes. Subclasses usually define their own."""
        import matplotlib.pyplot as plt
        images = [_as_hwc(part) for part in self if kind_of_value(part) in ("image", "mask")
                  or _looks_like_image(part)]
        others = [part for part in self if kind_of_value(part) not in ("image", "mask")
                  and not _looks_like_image(part)]
        if ctx is None:
            _, ctx = plt.subplots(figsize=kwargs.pop("figsize", None))
        if images:
            height = max(im.shape[0] for im in images)
            channels = max(im.shape[2] for im in images)
            padded = [_pad_to(im, height, channels) for im in images]
            gap = np.zeros((height, max(1, height // 20), channels), dtype=padded[0].dtype)
            row = np.concatenate([piece for im in padded for piece in (im, gap)][:-1], axis=1)
            ctx.imshow(row[..., 0] if channels == 1 else row, cmap="gray" if channels == 1 else None, **kwargs)
        ctx.set_title(title if title is not None else " ".join(str(_plain(o)) for o in others))
        ctx.axis("off")
        return ctx


def _plain(value):
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value


def _looks_like_image(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "ndim") and value.ndim in (2, 3) and min(value.shape) > 0 \
        and not isinstance(value, (str, bytes))


def _as_hwc(value) -> np.ndarray:
    """An image as an ``(H, W, C)`` array with values in [0, 1]."""
    if isinstance(value, PIL.Image.Image):
        array = np.asarray(value)
    else:
        array = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
        if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
            array = array.transpose(1, 2, 0)
    if array.ndim == 2:
        array = array[..., None]
    array = array.astype(np.float32)
    return array / 255 if array.max() > 1 else array


def _pad_to(image: np.ndarray, height: int, channels: int) -> np.ndarray:
    if image.shape[2] != channels:
        image = np.repeat(image[..., :1], channels, axis=2)
    if image.shape[0] < height:
        image = np.pad(image, ((0, height - image.shape[0]), (0, 0), (0, 0)))
    return image
