"""Batch augmentation on the device: flips, rotations, zooms and perspective warps in ONE ``grid_sample``.

Each geometric augmentation is a random 3x3 matrix per image mapping output coordinates to input
coordinates (normalized to [-1, 1]). ``aug_transforms`` multiplies them into one matrix per image,
so a batch is resampled once however many augmentations are chosen. Images use ``mode``
(bilinear), masks nearest-neighbour with the same matrix, and points are moved by its inverse.
Augmentations run on training batches only (``split_idx=0``).

>>> import torch, random
>>> tfms = aug_transforms(max_rotate=30.)
>>> [type(t).__name__ for t in tfms]
['AffineCoordTfm', 'LightingTfm']
>>> x = torch.rand(4, 3, 32, 32)
>>> out, = tfms[0].call_sample((x,), ("image",), split_idx=0, rng=random.Random(0))
>>> out.shape, tfms[0].call_sample((x,), ("image",), split_idx=1)[0] is x
(torch.Size([4, 3, 32, 32]), True)
"""
from __future__ import annotations

import math
import random
from collections.abc import Sequence

import torch
from torch.nn import functional as F

from fastlearn.data.transforms import Transform
from fastlearn.vision.lighting import Brightness, Contrast, LightingTfm

PAD_MODES = ("zeros", "border", "reflection")
MODES = ("bilinear", "nearest", "bicubic")


def _size_tuple(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    if len(size) != 2:
        raise ValueError(f"size={size!r}; expected an int or (height, width)")
    return (int(size[0]), int(size[1]))


def _applied(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) < p


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _eye(n: int) -> torch.Tensor:
    return torch.eye(3).repeat(n, 1, 1)


class AffinePart:
    """One kind of random coordinate transform; ``matrices`` draws one 3x3 matrix per image.

    ``params`` keeps what was drawn for the last batch (for inspection and tests).
    """

    def __init__(self, p: float) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"p={p!r}; expected a probability between 0 and 1")
        self.p = p
        self.params: dict[str, torch.Tensor] = {}

    def matrices(self, n: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError


class FlipPart(AffinePart):
    """Left-right mirror with probability ``p``."""

    def matrices(self, n, height, width, generator):
        flip = _applied(n, self.p, generator)
        self.params = {"flip": flip}
        mats = _eye(n)
        mats[:, 0, 0] = 1 - 2 * flip.float()
        return mats


class DihedralPart(AffinePart):
    """One of the 8 symmetries of the square (``k``: bit 0 mirror x, bit 1 mirror y, bit 2 transpose)."""

    def matrices(self, n, height, width, generator):
        k = torch.randint(0, 8, (n,), generator=generator) * _applied(n, self.p, generator)
        self.params = {"k": k}
        mats = _eye(n)
        mats[:, 0, 0] = 1 - 2 * (k & 1).float()
        mats[:, 1, 1] = 1 - 2 * ((k >> 1) & 1).float()
        transpose = (k & 4).bool()
        mats[transpose] = mats[transpose][:, [1, 0, 2]]
        return mats


class RotatePart(AffinePart):
    """Rotation by a uniform angle in ``[-max_deg, max_deg]`` degrees, counter-clockwise when positive,
    about the centre, in pixel space (so non-square images are not sheared)."""

    def __init__(self, max_deg: float, p: float) -> None:
        super().__init__(p)
        self.max_deg = max_deg

    def matrices(self, n, height, width, generator):
        angle = _uniform(n, -self.max_deg, self.max_deg, generator) * _applied(n, self.p, generator)
        self.params = {"angle": angle}
        theta = angle * math.pi / 180
        cos, sin = torch.cos(theta), torch.sin(theta)
        mats = _eye(n)
        # input = R^-1 output in pixel units; normalized units scale x by 1/width and y by 1/height
        mats[:, 0, 0], mats[:, 0, 1] = cos, sin * height / width
        mats[:, 1, 0], mats[:, 1, 1] = -sin * width / height, cos
        return mats


class ZoomPart(AffinePart):
    """Zoom in by a uniform factor in ``[min_zoom, max_zoom]`` about a random point of the image."""

    def __init__(self, min_zoom: float, max_zoom: float, p: float) -> None:
        super().__init__(p)
        if not 0 < min_zoom <= max_zoom:
            raise ValueError(f"min_zoom={min_zoom}, max_zoom={max_zoom}; expected 0 < min_zoom <= max_zoom")
        self.min_zoom, self.max_zoom = min_zoom, max_zoom

    def matrices(self, n, height, width, generator):
        applied = _applied(n, self.p, generator)
        scale = torch.where(applied, _uniform(n, self.min_zoom, self.max_zoom, generator), torch.ones(n))
        centre = torch.rand(n, 2, generator=generator) * 2 - 1
        self.params = {"scale": scale, "centre": centre}
        mats = _eye(n)
        mats[:, 0, 0] = mats[:, 1, 1] = 1 / scale
        mats[:, :2, 2] = centre * (1 - 1 / scale)[:, None]
        return mats


class CropPart(AffinePart):
    """A random square crop covering a uniform fraction ``[min_scale, 1]`` of the area, resized."""

    def __init__(self, min_scale: float) -> None:
        super().__init__(1.0)
        if not 0 < min_scale <= 1:
            raise ValueError(f"min_scale={min_scale}; expected a fraction of the area in (0, 1]")
        self.min_scale = min_scale

    def matrices(self, n, height, width, generator):
        side = _uniform(n, self.min_scale, 1.0, generator).sqrt()
        centre = (torch.rand(n, 2, generator=generator) * 2 - 1) * (1 - side)[:, None]
        self.params = {"side": side, "centre": centre}
        mats = _eye(n)
        mats[:, 0, 0] = mats[:, 1, 1] = side
        mats[:, :2, 2] = centre
        return mats


def _homography(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """The (n, 3, 3) perspective maps taking the 4 points ``src`` to ``dst`` (both (n, 4, 2))."""
    n = src.shape[0]
    rows = torch.zeros(n, 8, 8)
    x, y, u, v = src[..., 0], src[..., 1], dst[..., 0], dst[..., 1]
    rows[:, 0::2, 0], rows[:, 0::2, 1], rows[:, 0::2, 2] = x, y, 1
    rows[:, 0::2, 6], rows[:, 0::2, 7] = -x * u, -y * u
    rows[:, 1::2, 3], rows[:, 1::2, 4], rows[:, 1::2, 5] = x, y, 1
    rows[:, 1::2, 6], rows[:, 1::2, 7] = -x * v, -y * v
    rhs = torch.stack([u, v], dim=-1).reshape(n, 8)
    coefficients = torch.linalg.solve(rows, rhs)
    return torch.cat([coefficients, torch.ones(n, 1)], dim=1).reshape(n, 3, 3)


class WarpPart(AffinePart):
    """Perspective tilt: the image's width changes along y by up to ``magnitude`` and its height along x."""

    def __init__(self, magnitude: float, p: float) -> None:
        super().__init__(p)
        if not 0 <= magnitude < 1:
            raise ValueError(f"magnitude={magnitude}; expected 0 <= magnitude < 1")
        self.magnitude = magnitude

    def matrices(self, n, height, width, generator):
        applied = _applied(n, self.p, generator).float()
        tilt = _uniform(2 * n, -self.magnitude, self.magnitude, generator).reshape(n, 2) * applied[:, None]
        self.params = {"tilt": tilt}
        corners = torch.tensor([[-1., -1.], [1., -1.], [-1., 1.], [1., 1.]]).repeat(n, 1, 1)
        moved = corners.clone()
        moved[..., 0] = corners[..., 0] * (1 + tilt[:, :1] * corners[..., 1])
        moved[..., 1] = corners[..., 1] * (1 + tilt[:, 1:] * corners[..., 0])
        return _homography(corners, moved)


def _base_grid(height: int, width: int, align_corners: bool, device) -> torch.Tensor:
    def axis(n):
        if align_corners:
            return torch.linspace(-1, 1, n, device=device) if n > 1 else torch.zeros(1, device=device)
        return (torch.arange(n, device=device, dtype=torch.float32) * 2 + 1) / n - 1
    ys, xs = torch.meshgrid(axis(height), axis(width), indexing="ij")
    return torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(-1, 3)


def _apply_homography(points: torch.Tensor, mats: torch.Tensor) -> torch.Tensor:
    """(B, n, 2) points through (B, 3, 3) matrices, with the perspective division."""
    ones = torch.ones_like(points[..., :1])
    out = torch.cat([points, ones], dim=-1) @ mats.transpose(1, 2)
    return out[..., :2] / out[..., 2:]


class AffineCoordTfm(Transform):
    """Resample image, mask and point batches through random coordinate matrices, in one ``grid_sample``.

    ``parts`` is a list of :class:`AffinePart`; their matrices multiply in order (the first one
    acts last on the output grid, i.e. is applied to the image first). ``size`` resizes the output.

    >>> import torch, random
    >>> flip = Flip(p=1.)
    >>> x = torch.arange(4.).view(1, 1, 1, 4)
    >>> flip.call_sample((x,), ("image",), split_idx=0, rng=random.Random(0))[0].flatten().round().tolist()
    [3.0, 2.0, 1.0, 0.0]
    """

    order = 30
    split_idx = 0
    kinds = ("image", "mask", "points")

    def __init__(self, parts: Sequence[AffinePart] = (), size: int | Sequence[int] | None = None,
                 mode: str = "bilinear", pad_mode: str = "reflection", align_corners: bool = True,
                 batch: bool = False) -> None:
        super().__init__()
        mode, pad_mode = getattr(mode, "value", mode), getattr(pad_mode, "value", pad_mode)
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}; expected one of {MODES}")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode={pad_mode!r}; expected one of {PAD_MODES}")
        self.parts, self.size = list(parts), _size_tuple(size)
        self.mode, self.pad_mode, self.align_corners, self.batch = mode, pad_mode, align_corners, batch
        self.matrices: torch.Tensor | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(type(p).__name__ for p in self.parts)})"

    def draw(self, n: int, height: int, width: int, rng: random.Random | None = None) -> torch.Tensor:
        """Draw and keep the (n, 3, 3) output-to-input matrices for a batch of n images."""
        generator = torch.Generator().manual_seed((rng or random).getrandbits(62))
        draws = 1 if self.batch else n
        mats = _eye(draws)
        for part in self.parts:
            mats = mats @ part.matrices(draws, height, width, generator)
        self.matrices = mats.expand(n, 3, 3) if self.batch else mats
        return self.matrices

    def before_call(self, sample, kinds, split_idx, rng) -> None:
        grids = [p for p, k in zip(sample, kinds) if k in ("image", "mask")]
        if not grids:
            raise ValueError(f"{self!r} needs an image or mask in the batch; got kinds {kinds}")
        self.draw(grids[0].shape[0], grids[0].shape[-2], grids[0].shape[-1], rng)

    def _resample(self, x: torch.Tensor, mode: str) -> torch.Tensor:
        height, width = self.size or x.shape[-2:]
        mats = self.matrices.to(x.device)
        grid = _base_grid(height, width, self.align_corners, x.device)
        coords = grid.expand(x.shape[0], -1, -1) @ mats.transpose(1, 2)
        coords = (coords[..., :2] / coords[..., 2:]).reshape(x.shape[0], height, width, 2)
        return F.grid_sample(x, coords.to(x.dtype), mode=mode, padding_mode=self.pad_mode,
                             align_corners=self.align_corners)

    def encode_part(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        if self.matrices is None or self.matrices.shape[0] != x.shape[0]:
            self.draw(x.shape[0], x.shape[-2], x.shape[-1])
        if kind == "points":
            return _apply_homography(x.float(), torch.linalg.inv(self.matrices.to(x.device)))
        if kind == "mask":
            squeeze = x.ndim == 3
            out = self._resample((x[:, None] if squeeze else x).float(), "nearest").round().to(x.dtype)
            return out[:, 0] if squeeze else out
        if not x.is_floating_point():
            return self._resample(x.float(), self.mode).round().clamp(0, 255).to(x.dtype)
        return self._resample(x, self.mode)

    def encodes(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_part(x, "image")


class Flip(AffineCoordTfm):
    """Mirror images left-right with probability ``p``.

    >>> Flip(p=0.5).parts[0].p
    0.5
    """

    def __init__(self, p: float = 0.5, size: int | Sequence[int] | None = None, mode: str = "bilinear",
                 pad_mode: str = "reflection", align_corners: bool = True, batch: bool = False) -> None:
        super().__init__([FlipPart(p)], size, mode, pad_mode, align_corners, batch)


class Dihedral(AffineCoordTfm):
    """A random one of the 8 flips / 90-degree rotations with probability ``p``.

    >>> Dihedral(p=1.).parts[0].p
    1.0
    """

    def __init__(self, p: float = 0.5, size: int | Sequence[int] | None = None, mode: str = "bilinear",
                 pad_mode: str = "reflection", align_corners: bool = True, batch: bool = False) -> None:
        super().__init__([DihedralPart(p)], size, mode, pad_mode, align_corners, batch)


class Rotate(AffineCoordTfm):
    """Rotate by up to ``max_deg`` degrees either way with probability ``p``.

    >>> Rotate(max_deg=20).parts[0].max_deg
    20
    """

    def __init__(self, max_deg: float = 10., p: float = 0.5, size: int | Sequence[int] | None = None,
                 mode: str = "bilinear", pad_mode: str = "reflection", align_corners: bool = True,
                 batch: bool = False) -> None:
        super().__init__([RotatePart(max_deg, p)], size, mode, pad_mode, align_corners, batch)


class Zoom(AffineCoordTfm):
    """Zoom in by a factor in ``[min_zoom, max_zoom]`` with probability ``p``.

    >>> Zoom(max_zoom=1.5).parts[0].max_zoom
    1.5
    """

    def __init__(self, min_zoom: float = 1., max_zoom: float = 1.1, p: float = 0.5,
                 size: int | Sequence[int] | None = None, mode: str = "bilinear", pad_mode: str = "reflection",
                 align_corners: bool = True, batch: bool = False) -> None:
        super().__init__([ZoomPart(min_zoom, max_zoom, p)], size, mode, pad_mode, align_corners, batch)


class Warp(AffineCoordTfm):
    """Perspective warp of up to ``magnitude`` with probability ``p``.

    >>> Warp(magnitude=0.3).parts[0].magnitude
    0.3
    """

    def __init__(self, magnitude: float = 0.2, p: float = 0.5, size: int | Sequence[int] | None = None,
                 mode: str = "bilinear", pad_mode: str = "reflection", align_corners: bool = True,
                 batch: bool = False) -> None:
        super().__init__([WarpPart(magnitude, p)], size, mode, pad_mode, align_corners, batch)


class RandomResizedCropGPU(AffineCoordTfm):
    """Crop a random square of ``[min_scale, 1]`` of the area and resize it to ``size``, on the device.

    >>> RandomResizedCropGPU(32, min_scale=0.5).size
    (32, 32)
    """

    def __init__(self, size: int | Sequence[int], min_scale: float = 0.08, mode: str = "bilinear",
                 pad_mode: str = "reflection", align_corners: bool = True, batch: bool = False) -> None:
        super().__init__([CropPart(min_scale)], size, mode, pad_mode, align_corners, batch)


def aug_transforms(mult: float = 1.0, do_flip: bool = True, flip_vert: bool = False, max_rotate: float = 10.,
                   min_zoom: float = 1., max_zoom: float = 1.1, max_lighting: float = 0.2, max_warp: float = 0.2,
                   p_affine: float = 0.75, p_lighting: float = 0.75, xtra_tfms: Sequence[Transform] | None = None,
                   size: int | Sequence[int] | None = None, mode: str = "bilinear", pad_mode: str = "reflection",
                   align_corners: bool = True, batch: bool = False, min_scale: float = 1.) -> list[Transform]:
    """The standard training augmentations, as batch transforms: one affine/warp resample, one lighting step.

    ``mult`` scales rotation, lighting and warp. ``flip_vert`` uses all 8 dihedral symmetries.
    ``min_scale < 1`` adds a random resized crop to ``size``. Extra transforms in ``xtra_tfms`` are
    appended (coordinate ones merged into the single resample).

    >>> tfms = aug_transforms(size=32, min_scale=0.75)
    >>> [type(p).__name__ for p in tfms[0].parts]
    ['CropPart', 'FlipPart', 'WarpPart', 'RotatePart', 'ZoomPart']
    """
    max_rotate, max_lighting, max_warp = max_rotate * mult, max_lighting * mult, max_warp * mult
    parts: list[AffinePart] = []
    if min_scale != 1.:
        if size is None:
            raise ValueError(f"aug_transforms(min_scale={min_scale}) crops and resizes; pass size= as well")
        parts.append(CropPart(min_scale))
    if do_flip:
        parts.append(DihedralPart(0.5) if flip_vert else FlipPart(0.5))
    if max_warp:
        parts.append(WarpPart(max_warp, p_affine))
    if max_rotate:
        parts.append(RotatePart(max_rotate, p_affine))
    if min_zoom < 1 or max_zoom > 1:
        parts.append(ZoomPart(min_zoom, max_zoom, p_affine))
    lighting = []
    if max_lighting:
        lighting = [Contrast(max_lighting, p_lighting, batch), Brightness(max_lighting, p_lighting, batch)]
    others: list[Transform] = []
    for tfm in xtra_tfms or []:
        if isinstance(tfm, AffineCoordTfm):
            parts.extend(tfm.parts)
        elif isinstance(tfm, LightingTfm):
            lighting.append(tfm)
        else:
            others.append(tfm)
    result: list[Transform] = []
    if parts or size is not None:
        result.append(AffineCoordTfm(parts, size, mode, pad_mode, align_corners, batch))
    if lighting:
        result.append(LightingTfm([part for tfm in lighting for part in tfm.parts], batch=batch))
    return result + others
