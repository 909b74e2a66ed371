"""Decoding images to ``(C, H, W)`` uint8 tensors: ``load_image`` and ``image2tensor``.

Files are decoded with torchvision's decoder (straight to a uint8 tensor) and with PIL for formats
it does not read; an animated image gives its first frame. A photo whose EXIF orientation says it
was taken turned (a phone held upright) is turned the way image viewers show it. A file that is not an image, is
truncated, is not a regular file (a FIFO), or holds more pixels than ``max_image_pixels`` (read from
its header before decoding) raises a ValueError naming it. Arrays, tensors and PIL images of every
depth become the same 8-bit image a file with those pixels gives.

>>> load_image(np.zeros((2, 3), dtype=np.uint8)).shape
torch.Size([3, 2, 3])
"""
from __future__ import annotations

import io
import os
import stat
import struct
import warnings

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch
from torchvision.io import ImageReadMode, decode_image

from fastlearn.config import MIN_IMAGE_PIXELS_LIMIT, get_config

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
    """torchvision cannot read this format, or an animated WebP (PIL may: its first frame); other
    decode errors mean a damaged file."""
    message = str(error).lower()
    return "unsupported image" in message or "animated webp" in message


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
        brand = _heif_brand(path)
        if brand is not None:
            raise ValueError(
                f"cannot decode image {name or path}: it is a HEIF photo ({brand!r}: HEIC or AVIF, what phones save "
                "by default), which this installation's decoders do not read; it is not damaged. Convert it to JPEG "
                "or PNG (or install pillow-heif and register its opener)") from None
        raise _bad_image(name or path, error) from None


_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis")


def _heif_brand(source) -> str | None:
    """The brand of a HEIF container (HEIC, AVIF) from its first bytes (``....ftyp<brand>``), or None."""
    try:
        if isinstance(source, io.BytesIO):
            head = source.getvalue()[:12]
        else:
            with open(source, "rb") as handle:
                head = handle.read(12)
    except OSError:
        return None
    return head[8:12].decode("ascii") if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS else None


_EXIF_ORIENTATION = 0x0112


def upright(img: PIL.Image.Image) -> PIL.Image.Image:
    """``img`` turned as its EXIF orientation says (how viewers show it), or ``img`` itself when
    it has none, so a photo gives the same pixels from its file, its bytes or a PIL image.

    >>> upright(PIL.Image.new("RGB", (4, 2))).size
    (4, 2)
    """
    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - damaged EXIF: the pixels are still the image
        return img
    if orientation in (None, 1) or not isinstance(orientation, int) or not 2 <= orientation <= 8:
        return img
    return PIL.ImageOps.exif_transpose(img)


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
            decoded = _DECODE_OP(encoded, _READ_MODES[mode].value, True)  # True: apply the EXIF orientation
        else:
            decoded = decode_image(encoded, mode=_READ_MODES[mode], apply_exif_orientation=True)
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
        source = upright(source)
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
