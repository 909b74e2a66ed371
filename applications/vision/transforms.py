"""Item transforms for images: ``Resize``, ``RandomResizedCrop``, ``CropPad``, ``ToTensor``,
``PointScaler``.

They act on the parts of a sample by kind: images (uint8 ``(C, H, W)``, or PIL images, which
are converted) are resampled bilinearly, masks (``(H, W)`` codes) with nearest-neighbour, and
points (``(n, 2)`` pixel ``(x, y)``) are moved the same way. A random crop is drawn once per
sample, so an image, its mask and its points stay aligned. On the validation set (and when
called by hand) crops are centred.

>>> import torch
>>> img = torch.zeros(3, 40, 60, dtype=torch.uint8)
>>> Resize(32)(img).shape, Resize((20, 30), method="squish")(img).shape
(torch.Size([3, 32, 32]), torch.Size([3, 20, 30]))
"""
from __future__ import annotations

import math
from enum import Enum

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as nnf
import torchvision.transforms.v2.functional as tvf

from fastlearn.data.transforms import Transform, register_transform
from fastlearn.vision.image import load_image


class ResizeMethod(str, Enum):
    """How ``Resize`` reaches the target aspect ratio: crop, pad or squish."""

    Crop = "crop"
    Pad = "pad"
    Squish = "squish"


class PadMode(str, Enum):
    """What fills padding: a reflection of the image, zeros, or the border pixels repeated."""

    Reflection = "reflection"
    Zeros = "zeros"
    Border = "border"


def _size(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size={size!r}; expected an int or (height, width) of positive ints")
    return size


def _enum(value, enum: type[Enum], arg: str):
    try:
        return enum(value.value if isinstance(value, Enum) else value)
    except ValueError:
        raise ValueError(f"{arg}={value!r}; expected one of {[e.value for e in enum]}") from None


def _as_tensor(x, kind: str) -> torch.Tensor:
    if isinstance(x, PIL.Image.Image):
        if kind == "mask":
            return torch.from_numpy(np.asarray(x).astype(np.uint8).copy())
        return load_image(x, mode="L" if x.mode == "L" else "RGB")
    return x


def _part_size(part) -> tuple[int, int]:
    if isinstance(part, torch.Tensor):
        h, w = part.shape[-2:]
        return h, w
    h, w = (part.size[1], part.size[0]) if isinstance(part, PIL.Image.Image) else part.shape[-2:]
    return int(h), int(w)


class CropResizeTransform(Transform):
    """Base of the crop / pad / resize item transforms: ``plan(h, w, train, rng)`` returns the
    source region ``(top, left, height, width)`` (it may reach outside the image: padding) and
    the output size; the same plan is applied to every image and mask part of one size and to
    the points (a part of another size, such as the second image of a pair, gets its own plan)."""

    order = 1
    kinds = ("image", "mask", "points")
    pad_mode: PadMode = PadMode.Zeros

    def plan(self, h: int, w: int, train: bool, rng) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
        raise NotImplementedError

    def before_call(self, sample, kinds, split_idx, rng) -> None:
        # parts of one size (an image and its mask) share a crop; a part of another size (the
        # second image of a Siamese pair) gets its own; points follow the first image
        plans, first, train = {}, None, split_idx == 0
        for part, kind in zip(sample, kinds):
            if kind == "image" or kind == "mask":
                size = _part_size(part)
                plan = plans.get(size)
                if plan is None:
                    plan = plans[size] = self.plan(size[0], size[1], train, rng)
                if first is None:
                    first = plan
        self._plans, self._plan = plans, first

    def call_one(self, x, split_idx: int | None = None):
        return self.call_sample((x,), ("image",), split_idx)[0]

    def encode_part(self, x, kind: str):
        if self._plan is None:
            raise ValueError(f"{type(self).__name__} needs an image or mask in the sample to size "
                             "its crop; points alone cannot be resized")
        if kind == "points":
            (top, left, rh, rw), (oh, ow) = self._plan
            scale = torch.tensor([ow / rw, oh / rh], dtype=torch.float32)
            offset = torch.tensor([left, top], dtype=torch.float32)
            return (torch.as_tensor(x, dtype=torch.float32) - offset) * scale
        (top, left, rh, rw), (oh, ow) = self._plans[_part_size(x)]
        t = _as_tensor(x, kind)
        squeeze = t.ndim == 2
        if squeeze:
            t = t[None]
        h, w = t.shape[-2:]
        if top or left or rh != h or rw != w:  # the whole image is neither cropped nor padded
            t = self._crop_pad(t, top, left, rh, rw, kind)
        if rh != oh or rw != ow:
            if kind == "mask":
                t = tvf.resize_image(t, [oh, ow], interpolation=tvf.InterpolationMode.NEAREST_EXACT, antialias=False)
            else:
                t = tvf.resize_image(t, [oh, ow], interpolation=tvf.InterpolationMode.BILINEAR, antialias=True)
        return t[0] if squeeze else t

    def _crop_pad(self, t: torch.Tensor, top: int, left: int, rh: int, rw: int, kind: str) -> torch.Tensor:
        h, w = t.shape[-2:]
        if top >= 0 and left >= 0 and top + rh <= h and left + rw <= w:
            return t[..., top:top + rh, left:left + rw]
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + rh, h), min(left + rw, w)
        t = t[..., y0:y1, x0:x1]
        pads = (x0 - left, left + rw - x1, y0 - top, top + rh - y1)  # left, right, top, bottom
        if not any(pads):
            return t
        mode = {PadMode.Zeros: "constant", PadMode.Border: "replicate",
                PadMode.Reflection: "reflect"}[self.pad_mode]
        if mode == "reflect" and (max(pads[:2]) >= t.shape[-1] or max(pads[2:]) >= t.shape[-2]):
            mode = "replicate"
        if mode == "constant":
            return nnf.pad(t, pads, mode="constant", value=0)
        return nnf.pad(t[None].float(), pads, mode=mode)[0].round().to(t.dtype)


def _centre(length: int, region: int) -> int:
    return (length - region) // 2


def _aspect_region(h: int, w: int, oh: int, ow: int, inside: bool) -> tuple[int, int]:
    """The largest (``inside``) or smallest enclosing region of aspect ``ow/oh``."""
    aspect = ow / oh
    if (w / h > aspect) == inside:
        return h, max(1, round(h * aspect))
    return max(1, round(w / aspect)), w


@register_transform
class Resize(CropResizeTransform):
    """Resize to ``size`` (int or (height, width)): ``method="crop"`` takes the largest region
    of the right aspect ratio (random on the training set, centred otherwise), ``"pad"`` fits the
    whole image and pads it (``pad_mode``), ``"squish"`` ignores the aspect ratio.

    >>> Resize(10, method=ResizeMethod.Pad, pad_mode=PadMode.Zeros)(torch.ones(1, 10, 20)).sum().item()
    50.0
    """

    def __init__(self, size: int | tuple[int, int], method: str | ResizeMethod = ResizeMethod.Crop,
                 pad_mode: str | PadMode = PadMode.Reflection):
        super().__init__()
        self.size = _size(size)
        self.method = _enum(method, ResizeMethod, "method")
        self.pad_mode = _enum(pad_mode, PadMode, "pad_mode")

    def plan(self, h, w, train, rng):
        oh, ow = self.size
        if self.method == ResizeMethod.Squish:
            return (0, 0, h, w), (oh, ow)
        if self.method == ResizeMethod.Pad:
            rh, rw = _aspect_region(h, w, oh, ow, inside=False)
            return (-_centre(rh, h), -_centre(rw, w), rh, rw), (oh, ow)
        rh, rw = _aspect_region(h, w, oh, ow, inside=True)
        if train:
            return (rng.randint(0, h - rh), rng.randint(0, w - rw), rh, rw), (oh, ow)
        return (_centre(h, rh), _centre(w, rw), rh, rw), (oh, ow)

    def describe_args(self) -> dict:
        return {"size": list(self.size), "method": self.method.value, "pad_mode": self.pad_mode.value}


@register_transform
class RandomResizedCrop(CropResizeTransform):
    """On the training set, a random region of ``min_scale``..1 of the area with an aspect ratio
    in ``ratio``, resized to ``size``; otherwise the centre (less a margin of ``val_xtra``).

    >>> RandomResizedCrop(16, min_scale=0.5)(torch.zeros(3, 40, 50), split_idx=0).shape
    torch.Size([3, 16, 16])
    """

    def __init__(self, size: int | tuple[int, int], min_scale: float = 0.08,
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), val_xtra: float = 0.14):
        super().__init__()
        if not 0 < min_scale <= 1:
            raise ValueError(f"RandomResizedCrop(min_scale={min_scale!r}): expected a fraction in (0, 1]")
        self.size, self.min_scale = _size(size), min_scale
        self.ratio, self.val_xtra = (float(ratio[0]), float(ratio[1])), val_xtra

    def plan(self, h, w, train, rng):
        oh, ow = self.size
        if train:
            for _ in range(10):
                area = rng.uniform(self.min_scale, 1.0) * h * w
                aspect = math.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
                rw, rh = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
                if 1 <= rw <= w and 1 <= rh <= h:
                    return (rng.randint(0, h - rh), rng.randint(0, w - rw), rh, rw), (oh, ow)
        rh, rw = _aspect_region(h, w, oh, ow, inside=True)
        if not train:
            rh, rw = max(1, round(rh / (1 + self.val_xtra))), max(1, round(rw / (1 + self.val_xtra)))
        return (_centre(h, rh), _centre(w, rw), rh, rw), (oh, ow)

    def describe_args(self) -> dict:
        return {"size": list(self.size), "min_scale": self.min_scale, "ratio": list(self.ratio),
                "val_xtra": self.val_xtra}


@register_transform
class CropPad(CropResizeTransform):
    """Centre-crop or pad (``pad_mode``) to ``size`` without resampling.

    >>> CropPad(4)(torch.ones(1, 2, 6)).shape
    torch.Size([1, 4, 4])
    """

    def __init__(self, size: int | tuple[int, int], pad_mode: str | PadMode = PadMode.Zeros):
        super().__init__()
        self.size, self.pad_mode = _size(size), _enum(pad_mode, PadMode, "pad_mode")

    def plan(self, h, w, train, rng):
        oh, ow = self.size
        return (_centre(h, oh), _centre(w, ow), oh, ow), (oh, ow)

    def describe_args(self) -> dict:
        return {"size": list(self.size), "pad_mode": self.pad_mode.value}


@register_transform
class ToTensor(Transform):
    """PIL images and masks (and arrays) to uint8 tensors: images ``(C, H, W)``, masks ``(H, W)``.

    >>> ToTensor()(PIL.Image.new("RGB", (4, 2))).shape
    torch.Size([3, 2, 4])
    """

    order = 5
    kinds = ("image", "mask")

    def encodes(self, x):
        return self.encode_part(x, "image")

    def encode_part(self, x, kind: str):
        if isinstance(x, torch.Tensor):
            return x
        if kind == "mask":
            return torch.from_numpy(np.asarray(x).astype(np.uint8).copy())
        if isinstance(x, PIL.Image.Image):
            return load_image(x, mode="L" if x.mode == "L" else "RGB")
        return load_image(np.asarray(x))

    def describe_args(self) -> dict:
        return {}


@register_transform
class PointScaler(Transform):
    """Points from pixel ``(x, y)`` to [-1, 1] of the sample's image (and back when decoding).

    >>> img, pts = torch.zeros(1, 10, 20), torch.tensor([[0.0, 0.0], [20.0, 10.0]])
    >>> PointScaler().call_sample((img, pts), ("image", "points"))[1].tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    """

    order = 90
    kinds = ("points",)

    def _image_size(self, sample, kinds) -> torch.Tensor:
        for part, kind in zip(sample, kinds):
            if kind in ("image", "mask"):
                h, w = (part.size[1], part.size[0]) if isinstance(part, PIL.Image.Image) else part.shape[-2:]
                return torch.tensor([float(w), float(h)])
        raise ValueError("PointBlock needs an ImageBlock in the same sample: points are scaled to "
                         "the image's size")

    def before_call(self, sample, kinds, split_idx, rng) -> None:
        self._wh = self._image_size(sample, kinds)

    def encode_part(self, x, kind: str):
        return torch.as_tensor(x, dtype=torch.float32).reshape(-1, 2) * 2 / self._wh - 1

    def decode_sample(self, sample, kinds):
        wh = self._image_size(sample, kinds)
        return tuple((part + 1) * wh / 2 if kind == "points" else part
                     for part, kind in zip(sample, kinds))

    def describe_args(self) -> dict:
        return {}


