"""Images: ``PILImage`` / ``PILImageBW``, fast decoding to uint8 tensors, showing, checking files.

Files are decoded with ``torchvision.io.decode_image`` (straight to a ``(C, H, W)`` uint8 tensor)
and with PIL for formats it does not read; an animated image gives its first frame. A file that
is not an image, is truncated, or is not a regular file (a FIFO) raises a ValueError naming it.

>>> import torch
>>> img = PILImage.create(torch.zeros(3, 4, 5, dtype=torch.uint8))
>>> img.shape, img.mode, image2tensor(img).shape
((4, 5), 'RGB', torch.Size([3, 4, 5]))
"""
from __future__ import annotations

import io
import os
import stat
import struct
import warnings
from collections.abc import Iterable

import numpy as np
import PIL.Image
import torch
from torchvision.io import ImageReadMode, decode_image

from fastlearn.config import MIN_IMAGE_PIXELS_LIMIT, get_config
from fastlearn.data.transforms import Transform, register_transform
from fastlearn.foundation import L
from fastlearn.paths import Path

imagenet_stats: tuple[list[float], list[float]] = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                        category=DeprecationWarning)
_READ_MODES = {"RGB": ImageReadMode.RGB, "L": ImageReadMode.GRAY}
# torchvision's decoding operator, called without ``decode_image``'s per-call logging and
# deprecation warning (the same kernel; ``decode_image`` where the operator is not found)
try:
    _DECODE_OP = torch.ops.image.decode_image
except (AttributeError, RuntimeError):
    _DECODE_OP = None
_READV = getattr(os, "readv", None)


def _bad_image(source, error: Exception) -> ValueError:
    return ValueError(
        f"cannot decode image {source}: {type(error).__name__}: {error}. The file is not an image "
        "or is truncated/corrupt; delete it (verify_images(get_image_files(path)) lists such files)")


def _unsupported(error: RuntimeError) -> bool:
    """torchvision cannot read this format (PIL may); other decode errors mean a damaged file."""
    return "unsupported image" in str(error).lower()


# images up to this size are never compared with the config's limit (it is at least this much),
# so small images are decoded without reading the config
_ALWAYS_ALLOWED_PIXELS = MIN_IMAGE_PIXELS_LIMIT
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start of frame: holds the size


def _header_size(data) -> tuple[int, int] | None:
    """``(width, height)`` read from the header of a PNG, JPEG, GIF or WebP held in memory, or
    None for another format (or a header too damaged to read; the decoder then says so)."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return struct.unpack_from(">II", data, 16)
        if data.startswith(b"\xff\xd8"):
            at = 2
            while at + 9 < len(data) and data[at] == 0xFF:
                marker = data[at + 1]
                if marker in _JPEG_FRAME_MARKERS:
                    height, width = struct.unpack_from(">HH", data, at + 5)
                    return width, height
                if marker == 0xFF:  # fill byte
                    at += 1
                elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
                    at += 2
                else:
                    at += 2 + struct.unpack_from(">H", data, at + 2)[0]
            return None
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack_from("<HH", data, 6)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            chunk = bytes(data[12:16])
            if chunk == b"VP8X":
                return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
            if chunk == b"VP8L":
                bits = struct.unpack_from("<I", data, 21)[0]
                return (bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1
            if chunk == b"VP8 ":
                width, height = struct.unpack_from("<HH", data, 26)
                return width & 0x3FFF, height & 0x3FFF
    except struct.error:
        return None
    return None


def _check_pixels(width: int, height: int, source) -> None:
    """Refuse an image above the config's ``max_image_pixels`` before it is decoded."""
    if width * height <= _ALWAYS_ALLOWED_PIXELS:
        return
    limit = get_config().get("defaults", "max_image_pixels")
    if limit is not None and width * height > limit:
        raise _too_large(source, width, height, limit)


def _too_large(source, width: int, height: int, limit: int) -> ValueError:
    return ValueError(
        f"image {_source_name(source)} is {width}x{height} pixels (width x height), {width * height:_} pixels, "
        f"more than max_image_pixels = {limit:_}: decoded it would take {width * height * 3 / 2**30:.1f} GiB (it may "
        "be a decompression bomb). If you trust the file, raise the limit: max_image_pixels = <pixels> (or none) "
        "under [defaults] in ~/.fastlearn/config.ini or in the file FASTLEARN_CONFIG names")


def _refused_by_pil(source, error: Exception) -> ValueError:
    return ValueError(f"image {_source_name(source)} was refused by PIL: {error} If you trust the file, set "
                      "PIL.Image.MAX_IMAGE_PIXELS = None (PIL's own limit) and raise max_image_pixels in the config")


def _pil_header_size(data, source) -> tuple[int, int] | None:
    """``(width, height)`` as PIL reads it from the header (nothing is decoded); None if PIL
    does not know the format."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(io.BytesIO(data)) as img:
                return img.size
    except PIL.Image.DecompressionBombError as error:
        raise _refused_by_pil(source, error) from None
    except Exception:  # noqa: BLE001 - not an image PIL knows: the decoder names the problem
        return None


def _pil_open(path, name: str | None = None) -> PIL.Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)  # the config's limit decides
            with PIL.Image.open(path) as img:
                _check_pixels(*img.size, name or path)
                img.load()
                return img
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {path} does not exist; check the path") from None
    except PIL.Image.DecompressionBombError as error:
        raise _refused_by_pil(name or path, error) from None
    except (PIL.UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise _bad_image(name or path, error) from None


def _source_name(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (np.ndarray, torch.Tensor)):
        return f"{'an array' if isinstance(source, np.ndarray) else 'a tensor'} of shape {tuple(source.shape)}"
    if isinstance(source, PIL.Image.Image):
        return f"a PIL image of mode {source.mode}"
    return "given as bytes" if isinstance(source, (bytes, bytearray, memoryview)) else f"a {type(source).__name__}"


def _high_depth(img: PIL.Image.Image) -> bool:
    """A float, 32-bit or 16-bit grey PIL image (which ``convert`` would clip to 8 bits)."""
    return img.mode in ("F", "I") or img.mode.startswith("I;16")


def _uint8(t: torch.Tensor, source) -> torch.Tensor:
    """8-bit pixels: floats in [0, 1] times 255, floats and integers in [0, 255] as they are,
    16-bit values (a uint16 image, or integers up to 65535) shifted right by 8 as decoders do;
    anything else (NaN, negative or larger values) is refused rather than clipped."""
    if t.dtype == torch.uint8 or t.numel() == 0:
        return t.to(torch.uint8)
    if t.dtype == torch.bool:
        return t.to(torch.uint8) * 255
    if t.dtype == torch.uint16:
        return (t.to(torch.int32) >> 8).to(torch.uint8)
    if t.is_floating_point():
        finite = torch.isfinite(t)
        if not finite.all():
            bad = t[~finite]
            raise ValueError(f"the image ({_source_name(source)}) holds {bad.isnan().sum()} NaN and "
                             f"{bad.isinf().sum()} infinite value(s); pixels must be numbers: replace them "
                             "(np.nan_to_num(array)) or fix what computed them")
    low, high = t.min().item(), t.max().item()
    if low >= 0 and high <= 1 and t.is_floating_point():
        return (t * 255).round().to(torch.uint8)
    if low >= 0 and high <= 255:
        return t.round().to(torch.uint8) if t.is_floating_point() else t.to(torch.uint8)
    if low >= 0 and high <= 65535 and not t.is_floating_point():
        return (t.to(torch.int32) >> 8).to(torch.uint8)
    expected = "[0, 1] or [0, 255]" if t.is_floating_point() else "[0, 255] (8-bit) or [0, 65535] (16-bit)"
    raise ValueError(f"the image ({_source_name(source)}) has {str(t.dtype).removeprefix('torch.')} pixels from {low:g} to {high:g}; expected "
                     f"{expected}. Scale it yourself, e.g. (a - a.min()) / (a.max() - a.min()) for values in [0, 1]")


_CHANNEL_COUNTS = range(1, 5)  # grey, grey + alpha, RGB, RGBA


def _channels_first(t: torch.Tensor, source) -> torch.Tensor:
    """``(C, H, W)`` from an (H, W), (H, W, C) or (C, H, W) array or tensor, the layout told by
    the shape: the channels are the one end of size 1 to 4 (the other end being another size);
    when both ends could be, an array is refused and a tensor read as (C, H, W), torch's layout."""
    if t.ndim == 2:
        return t[None]
    if t.ndim == 3:
        first, last = t.shape[0] in _CHANNEL_COUNTS, t.shape[-1] in _CHANNEL_COUNTS
        if last and not first:
            return t.permute(2, 0, 1)
        if first and (not last or isinstance(source, torch.Tensor)):
            return t
    if t.ndim != 3:
        problem = "an image must be (H, W), (H, W, C) or (C, H, W)"
    elif first:
        problem = "both its first and last sizes could be the channels (1 to 4: grey, grey + alpha, RGB, RGBA)"
    else:
        problem = "neither its first nor its last size is a number of channels (1 to 4: grey, grey + alpha, RGB, RGBA)"
    raise ValueError(f"cannot tell the channels of the image ({_source_name(source)}): {problem}; pass a (C, H, W) "
                     "tensor (torch.from_numpy(array).permute(2, 0, 1) for an (H, W, C) array) or a PIL image")


def _array_to_chw(array: np.ndarray, source=None) -> torch.Tensor:
    """A numpy array (of a PIL image when ``source`` is None: (H, W) or (H, W, C)) as a tensor."""
    array = np.ascontiguousarray(array)
    t = torch.from_numpy(array if array.flags.writeable else array.copy())
    if source is None:
        return t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    return _channels_first(t, source)


def _match_channels(t: torch.Tensor, mode: str) -> torch.Tensor:
    channels = t.shape[0]
    if channels <= 2:  # grey, or grey + alpha
        return t[:1].expand(3 if mode == "RGB" else 1, -1, -1).contiguous()
    if mode == "RGB":
        return t[:3].contiguous()
    if channels >= 3:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        return (t[:3].float() * weights).sum(0, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    return t[:1].contiguous()


def _decode(data, mode: str, source) -> torch.Tensor | None:
    """Decode an encoded image held in memory (read once, no second look at the file); None for
    a format torchvision does not read (PIL may); a ValueError naming ``source`` if damaged."""
    if len(data) == 0:
        raise _bad_image(source, ValueError("the file is empty"))
    size = _header_size(data) or _pil_header_size(data, source)
    if size is not None:
        _check_pixels(*size, source)
    # a bytearray (what _read_regular_file gives) is decoded where it lies; other buffers are
    # copied once into a writable one (torch wraps only writable memory without a warning)
    encoded = torch.frombuffer(data if isinstance(data, bytearray) else bytearray(data), dtype=torch.uint8)
    try:
        if _DECODE_OP is not None:
            decoded = _DECODE_OP(encoded, _READ_MODES[mode].value, False)
        else:
            decoded = decode_image(encoded, mode=_READ_MODES[mode])
    except RuntimeError as error:
        if not _unsupported(error):
            raise _bad_image(source, error) from None
        return None
    # an animated image (GIF) decodes to (frames, C, H, W): its first frame is the image
    return _uint8(decoded[0] if decoded.ndim == 4 else decoded, source)


# opened without waiting (a FIFO would wait for a writer) and never handed to another process
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _read_regular_file(path: str) -> bytearray:
    """The bytes of ``path`` in one buffer sized from the file, refusing what is not a regular
    file (a FIFO, a folder, a device) before anything is read from it."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {path} does not exist; check the path") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            what = "a FIFO (named pipe)" if stat.S_ISFIFO(info.st_mode) else "a folder" if stat.S_ISDIR(
                info.st_mode) else "a socket or device"
            raise ValueError(f"cannot read image {path}: it is {what}, not a regular file; remove it from the "
                             "data (get_image_files skips such files)")
        size = info.st_size
        if _READV is None:
            data = bytearray(os.read(fd, size + 1))
        else:
            data = bytearray(size + 1)  # one byte more than fstat says: the read ends where the file does
            del data[_READV(fd, [data]):]
        if len(data) != size:  # it changed since fstat, or the read stopped early: read on to the end
            while chunk := os.read(fd, 1 << 20):
                data += chunk
        return data
    finally:
        os.close(fd)


def load_image(source, mode: str = "RGB") -> torch.Tensor:
    """A ``(C, H, W)`` uint8 tensor (C = 3 for ``"RGB"``, 1 for ``"L"``) from a file path, bytes, a
    PIL image, an array or a tensor. Undecodable files raise a ValueError naming the file.

    An array is (H, W, C) or (C, H, W) as its shape tells (the channels are the end of size 1 to
    4, the other end larger); one that could be either, such as (3, 20, 3), is refused (pass a
    PIL image or a (C, H, W) tensor). A tensor is (C, H, W) unless only its last size can be the
    channels. Two channels are grey + alpha.

    Pixels become 8-bit the same way from a file, a PIL image, an array or a tensor: floats in
    [0, 1] times 255; floats or integers in [0, 255] as they are; 16-bit images (a 16-bit PNG or
    TIFF, PIL mode ``"I;16"``, or integers up to 65535) shifted right by 8. NaN, negative values
    or larger ones are a ValueError rather than clipped.

    >>> load_image(np.zeros((2, 3), dtype=np.uint8)).shape
    torch.Size([3, 2, 3])
    """
    if mode not in _READ_MODES:
        raise ValueError(f"mode={mode!r}; expected 'RGB' (colour) or 'L' (grey)")
    image = _load(source, mode)
    if image.shape[-2] == 0 or image.shape[-1] == 0:  # a crop or resize would divide by zero
        given = _source_name(source)
        raise ValueError(f"the image ({given}) is {image.shape[-2]}x{image.shape[-1]} pixels (height x width): "
                         "it has no pixels; pass an image at least 1x1 (check the array or crop that made it)")
    return image


def _load(source, mode: str) -> torch.Tensor:
    given = source  # named in errors: the file, not the PIL image opened from it
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        data = _read_regular_file(path)
        decoded = _decode(data, mode, path)
        if decoded is not None:
            return decoded
        source = _pil_open(path)  # formats torchvision does not decode (BMP, TIFF...)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        decoded = _decode(source, mode, "given as bytes")
        if decoded is not None:
            return decoded
        source = _pil_open(io.BytesIO(bytes(source)), name="given as bytes")
    if isinstance(source, PIL.Image.Image):
        if _high_depth(source):
            # float, 32-bit and 16-bit grey: scaled to 8 bits as numbers (convert() would clip them)
            pixels = np.asarray(source)
            pixels = pixels if pixels.dtype.isnative else pixels.astype(pixels.dtype.newbyteorder("="))
            return _match_channels(_uint8(_array_to_chw(pixels), given), mode)
        return _array_to_chw(np.asarray(source.convert(mode)))
    if isinstance(source, np.ndarray):
        return _match_channels(_uint8(_array_to_chw(source, source), source), mode)
    if isinstance(source, torch.Tensor):
        return _match_channels(_uint8(_channels_first(source.detach().cpu(), source), source), mode)
    raise TypeError(f"cannot make an image from {type(source).__name__}; pass a file path, bytes, "
                    "a PIL image, a numpy array or a tensor")


def image2tensor(img) -> torch.Tensor:
    """A PIL image (or path, array) as a ``(C, H, W)`` uint8 tensor, keeping grey images 1-channel.

    >>> image2tensor(PIL.Image.new("L", (4, 2))).shape
    torch.Size([1, 2, 4])
    """
    if isinstance(img, PIL.Image.Image) and not _high_depth(img):
        return _array_to_chw(np.asarray(img))
    grey = isinstance(img, PIL.Image.Image) and _high_depth(img) or getattr(img, "mode", "RGB") == "L"
    return load_image(img, mode="L" if grey else "RGB")


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
            img = source
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
        """Open or convert a mask (file path, bytes, array, tensor, PIL image)."""
        return super().create(source, mode)


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
            img = PILMask.create(source) if not isinstance(source, bytes) else _pil_open(io.BytesIO(source))
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
