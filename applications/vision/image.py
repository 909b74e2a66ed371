"""Images: ``PILImage`` / ``PILImageBW`` / ``PILMask``, ``TensorImage``, showing, checking files,
and the ``LoadImage`` / ``LoadMask`` transforms; decoding itself is :mod:`fastlearn.vision.decode`
(``load_image``, ``image2tensor``, re-exported here).

>>> import torch
>>> img = PILImage.create(torch.zeros(3, 4, 5, dtype=torch.uint8))
>>> img.shape, img.mode, image2tensor(img).shape
((4, 5), 'RGB', torch.Size([3, 4, 5]))
"""
from __future__ import annotations

import io
import os
from collections.abc import Iterable

import numpy as np
import PIL.Image
import torch

from fastlearn.data.transforms import Transform, register_transform
from fastlearn.foundation import L
from fastlearn.paths import Path
from fastlearn.vision.decode import _READ_MODES, _high_depth, _pil_open, _read_regular_file, load_image, upright
from fastlearn.vision.decode import image2tensor  # noqa: F401  (imported from here by the course and vision/__init__)

imagenet_stats: tuple[list[float], list[float]] = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def produces(kind: str):
    """Mark a function as making values of ``kind`` (so a Datasets built from it knows the part)."""
    def mark(f):
        f.output_kind = kind
        return f
    return mark


class PILBase(PIL.Image.Image):
    """A PIL image made by ``create`` from a path, bytes, a file-like object, an array, a tensor
    or a PIL image. Images the library opens are of this class, so they have ``shape`` and
    ``to_thumb`` (plain ``PIL.Image.open`` results do not: PIL itself is not changed)."""

    _mode = "RGB"
    sample_kind = "image"  # its kind as a part of a fastuple (fastlearn.data.tuples)

    @classmethod
    @produces("image")
    def create(cls, source, mode: str | None = None) -> "PILBase":
        """Open or convert ``source``: a file path, bytes (an upload's content), a file-like
        object (``io.BytesIO``, an open file), an ndarray, a tensor or a PIL image.

        >>> PILImageBW.create(np.zeros((2, 2), dtype=np.uint8)).mode
        'L'
        """
        mode = mode or cls._mode
        if callable(getattr(source, "read", None)):
            source = source.read()
        if isinstance(source, memoryview):
            source = source.tobytes()
        if isinstance(source, PIL.Image.Image) and not _high_depth(source):
            img = upright(source)
        elif isinstance(source, (str, os.PathLike, bytes, bytearray, np.ndarray, torch.Tensor, PIL.Image.Image)):
            t = load_image(source, mode="L" if mode == "L" else "RGB")
            array = t.permute(1, 2, 0).numpy()
            img = PIL.Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
        else:
            raise TypeError(f"{cls.__name__}.create cannot open {type(source).__name__}; pass a "
                            "file path, bytes, a file-like object, a numpy array, a tensor or a PIL image")
        if img.mode != mode:
            img = img.convert(mode)
        return cls._wrap(img)

    @classmethod
    def _wrap(cls, img: PIL.Image.Image) -> "PILBase":
        new = cls.__new__(cls)
        new.__dict__.update(img.__dict__)
        return new

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.size[1], self.size[0]

    def to_thumb(self, h: int, w: int | None = None) -> "PILBase":
        """A copy fitting in ``h`` x ``w`` (``w`` defaults to ``h``), keeping the aspect ratio."""
        w = h if w is None else w
        thumb = self.copy()
        thumb.thumbnail((w, h))
        return type(self)._wrap(thumb)

    def show(self, ctx=None, ax=None, figsize=None, title: str | None = None, **kwargs):
        """Draw on a matplotlib axes (``ctx`` is the course's name for it); returns the axes."""
        return show_image(self, ax=ax if ax is not None else ctx, figsize=figsize, title=title, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__} mode={self.mode} size={self.size[0]}x{self.size[1]}"


class PILImage(PILBase):
    """A colour (RGB) image: ``PILImage.create("cat.jpg")``.

    >>> PILImage.create(np.zeros((8, 6, 3), dtype=np.uint8)).shape
    (8, 6)
    """

    _mode = "RGB"


class PILImageBW(PILBase):
    """A grey image (mode ``"L"``)."""

    _mode = "L"


class PILMask(PILBase):
    """A segmentation mask (mode ``"L"``: one class code per pixel)."""

    _mode = "L"
    sample_kind = "mask"

    @classmethod
    @produces("mask")
    def create(cls, source, mode: str | None = None) -> "PILMask":
        """Open or convert a mask (file path, bytes, array, tensor, PIL image). A mask file's
        pixels are class numbers: a palette PNG's (Pascal VOC's) are its palette indices, a
        1-bit image's 0 and 1, a grey one stored as RGB its grey; a colour image is refused."""
        if mode is None and isinstance(source, (str, os.PathLike, bytes, bytearray)):
            return cls._wrap(_class_numbers(source))
        return super().create(source, mode)


def _class_numbers(source) -> PIL.Image.Image:
    """The mask file (or its bytes) ``source`` as an image of class numbers, 8 bits (mode ``L``)
    or 16 (``I;16``/``I`` kept for codes above 255)."""
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "given as bytes"
    data = _read_regular_file(name) if isinstance(source, (str, os.PathLike)) else bytes(source)
    img = _pil_open(io.BytesIO(data), name=name)
    if img.mode in ("L", "I", "I;16"):
        return img
    if img.mode.startswith("I;16"):  # another byte order: as 32-bit integers
        return PIL.Image.fromarray(np.asarray(img).astype(np.int32))
    if img.mode in ("P", "1"):  # palette indices (not the colours they show), or 0 and 1
        return PIL.Image.fromarray(np.asarray(img).astype(np.uint8))
    colour = np.asarray(img.convert("RGB"))
    if (colour[..., :1] == colour).all():  # grey stored as RGB (or with an alpha channel)
        return PIL.Image.fromarray(np.ascontiguousarray(colour[..., 0]))
    raise ValueError(f"mask {name} is a colour image (mode {img.mode}) whose pixels are colours, not class numbers; "
                     "save masks as 8-bit grey or palette PNGs holding 0, 1, 2... per pixel, or map each colour to "
                     "its class number in get_y (e.g. a function returning a uint8 array)")


class TensorImage(torch.Tensor):
    """An image tensor that shows itself: chapter 18 writes
    ``TensorImage(dls.train.decode((x,))[0][0]).show(ctx=ax)`` to draw a decoded input under a
    class activation map.

    The library never hands a ``TensorImage`` to a model or a loss (batches are plain tensors);
    it exists for course code that makes one to show it. Operations on it return plain tensors.

    >>> TensorImage(torch.zeros(3, 4, 4)).show()   # doctest: +SKIP
    """

    sample_kind = "image"

    @staticmethod
    def __new__(cls, x, **kwargs):
        return torch.Tensor._make_subclass(cls, torch.as_tensor(x, **kwargs), False)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        result = super().__torch_function__(func, types, args, kwargs or {})
        return _plain_tensors(result)

    def show(self, ctx=None, ax=None, figsize=None, title: str | None = None, **kwargs):
        """Draw on a matplotlib axes (``ctx``, the course's name, or ``ax``); returns the axes."""
        return show_image(self.as_subclass(torch.Tensor), ax=ax if ax is not None else ctx, figsize=figsize,
                          title=title, **kwargs)


def _plain_tensors(value):
    if isinstance(value, TensorImage):
        return value.as_subclass(torch.Tensor)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain_tensors(v) for v in value) if not hasattr(value, "_fields") else value
    return value


def show_image(im, ax=None, figsize=None, title: str | None = None, ctx=None, cmap: str | None = None,
               alpha: float | None = None, **kwargs):
    """Show a ``(C, H, W)`` / ``(H, W)`` tensor (uint8 or float in [0, 1]), array or PIL image.

    >>> ax = show_image(torch.rand(3, 8, 8), title="noise")   # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    ax = ax if ax is not None else ctx
    if isinstance(im, PIL.Image.Image):
        im = np.asarray(im)
    elif isinstance(im, torch.Tensor):
        t = im.detach().cpu()
        if t.ndim == 3 and t.shape[0] in (1, 3, 4):
            t = t.permute(1, 2, 0)
        if t.is_floating_point():
            t = t.clamp(0, 1)
        im = t.numpy()
    if im.ndim == 3 and im.shape[-1] == 1:
        im = im[..., 0]
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    if im.ndim == 2 and cmap is None:
        cmap = "gray"
    ax.imshow(im, cmap=cmap, alpha=alpha, **kwargs)
    if title is not None:
        ax.set_title(title)
    ax.axis("off")
    return ax


def verify_image(path) -> bool:
    """Whether ``path`` decodes completely as an image."""
    try:
        load_image(path)
        return True
    except (ValueError, FileNotFoundError):
        return False


def verify_images(paths: Iterable) -> L:
    """The files among ``paths`` that do not decode (to delete before building data).

    >>> failed = verify_images(get_image_files(path)); failed.map(Path.unlink)   # doctest: +SKIP
    """
    return L([Path(p) for p in paths if not verify_image(p)])


@register_transform
class LoadImage(Transform):
    """The type transform of ``ImageBlock``: a path / bytes / PIL image / array → uint8 ``(C, H, W)``.

    >>> LoadImage("L")(np.zeros((2, 2), dtype=np.uint8)).shape
    torch.Size([1, 2, 2])
    """

    output_kind = "image"

    def __init__(self, mode: str = "RGB"):
        super().__init__()
        if mode not in _READ_MODES:
            raise ValueError(f"LoadImage(mode={mode!r}); expected 'RGB' or 'L'")
        self.mode = mode

    def encodes(self, source) -> torch.Tensor:
        return load_image(source, self.mode)

    def describe_args(self) -> dict:
        return {"mode": self.mode}


@register_transform
class LoadMask(Transform):
    """The type transform of ``MaskBlock``: a mask file / array → uint8 ``(H, W)`` class codes.

    >>> LoadMask()(np.array([[0, 1], [2, 1]], dtype=np.uint8)).tolist()
    [[0, 1], [2, 1]]
    """

    output_kind = "mask"

    def encodes(self, source) -> torch.Tensor:
        if isinstance(source, (str, os.PathLike, bytes)):
            img = PILMask.create(source)
            if img.mode not in ("L", "P", "I", "I;16"):
                img = img.convert("L")
            array = np.array(img)  # a copy torch may own; I/I;16 masks widened so max() works on them
            codes = torch.from_numpy(array if array.dtype == np.uint8 else array.astype(np.int64))
        else:
            codes = torch.as_tensor(np.asarray(source)) if not isinstance(source, torch.Tensor) else source
            codes = codes[0] if codes.ndim == 3 else codes
        self._check_codes(codes, source)
        return codes.to(torch.uint8)

    def _check_codes(self, codes: torch.Tensor, source) -> None:
        """Every pixel's code names a class of ``codes`` (0 to 255 without them): a larger one
        fails in the loss, mid-epoch (on a GPU as a device-side assert), or wraps round in uint8."""
        names = getattr(self, "vocab", None)
        limit = len(names) if names else 256
        if codes.numel() == 0 or int(codes.max()) < limit and (codes.dtype == torch.uint8 or int(codes.min()) >= 0):
            return
        found = codes.unique()
        bad = found[(found < 0) | (found >= limit)].tolist()
        shown = ", ".join(map(str, list(names)[:5])) + (", ..." if names and len(names) > 5 else "")
        named = f"codes names {limit} classes (0 to {limit - 1}: {shown})" if names else "a mask holds codes 0 to 255"
        where = f"mask {source}" if isinstance(source, (str, os.PathLike)) else "the mask"
        raise ValueError(f"{where} holds class code(s) {bad[:5]} but {named}; add the missing classes to codes, "
                         "map the mask's values to class numbers in get_y, or fix the mask file")

    def describe_args(self) -> dict:
        return {}
