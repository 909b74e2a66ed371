"""Batch transforms of the data layer: ``IntToFloatTensor`` and ``Normalize``.

Both act on the batch tuple on the device, on the parts named by their ``kinds`` (see
:mod:`fastlearn.data.transforms`).

>>> import torch
>>> batch = (torch.full((2, 3, 4, 4), 255, dtype=torch.uint8), torch.tensor([0, 1]))
>>> x, y = IntToFloatTensor().call_sample(batch, ("image", "category"))
>>> x.dtype, float(x.max()), y.tolist()
(torch.float32, 1.0, [0, 1])
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from fastlearn.data.transforms import Transform, register_transform


@register_transform
class IntToFloatTensor(Transform):
    """uint8 images to float in [0, 1] (divided by ``div``); masks to int64 class codes.

    >>> IntToFloatTensor()(torch.tensor([0, 51, 255], dtype=torch.uint8))
    tensor([0.0000, 0.2000, 1.0000])
    """

    order = 10
    kinds = ("image", "mask")

    def __init__(self, div: float = 255.0, div_mask: int = 1):
        super().__init__()
        self.div, self.div_mask = div, div_mask

    def encodes(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().div_(self.div) if not x.is_floating_point() else x

    def encode_part(self, x, kind: str):
        if kind == "mask":
            return (x // self.div_mask).long() if self.div_mask != 1 else x.long()
        return self.encodes(x)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.div).round().clamp(0, 255).to(torch.uint8) if x.is_floating_point() else x

    def decode_part(self, x, kind: str):
        return x if kind == "mask" else self.decodes(x)

    def describe_args(self) -> dict:
        return {"div": self.div, "div_mask": self.div_mask}


@register_transform
class Normalize(Transform):
    """Subtract ``mean`` and divide by ``std`` per channel of image batches; decodes back.

    ``Normalize.from_stats(mean, std)`` uses given statistics (e.g. ``imagenet_stats``);
    ``Normalize()`` computes them from the first training batch when the loaders are built.

    >>> norm = Normalize.from_stats([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    >>> x = torch.full((1, 3, 2, 2), 0.75)
    >>> float(norm(x)[0, 0, 0, 0]), float(norm.decode(norm(x))[0, 0, 0, 0])
    (1.0, 0.75)
    """

    order = 99
    kinds = ("image",)

    def __init__(self, mean: Sequence[float] | torch.Tensor | None = None,
                 std: Sequence[float] | torch.Tensor | None = None, axes: tuple[int, ...] = (0, 2, 3)):
        super().__init__()
        if (mean is None) != (std is None):
            raise ValueError(f"Normalize(mean={mean!r}, std={std!r}): give both or neither "
                             "(neither computes them from the first batch)")
        self.axes = tuple(axes)
        self.mean = None if mean is None else self._as_stat(mean)
        self.std = None if std is None else self._as_stat(std)

    @staticmethod
    def _as_stat(values) -> torch.Tensor:
        t = torch.as_tensor(values, dtype=torch.float32)
        return t.reshape(1, -1, 1, 1) if t.ndim <= 1 else t

    @classmethod
    def from_stats(cls, mean: Sequence[float], std: Sequence[float], dim: int = 1, ndim: int = 4,
                   cuda: bool = True) -> "Normalize":
        """Normalize with given per-channel statistics (``dim``/``ndim``/``cuda`` kept for course code)."""
        if dim != 1 or ndim != 4:
            raise ValueError(f"Normalize.from_stats(dim={dim}, ndim={ndim}): only channel dim 1 of "
                             "4-d image batches is supported")
        return cls(mean, std)

    def setups(self, x) -> None:
        if self.mean is not None or x is None:
            return
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            raise ValueError("Normalize() computes its statistics from a batch of images (B, C, H, W);"
                             f" got {type(x).__name__} {getattr(x, 'shape', '')}. Use "
                             "Normalize.from_stats(mean, std) instead")
        x = x.float()
        self.mean = x.mean(self.axes, keepdim=True).cpu()
        self.std = x.std(self.axes, keepdim=True).cpu() + 1e-7

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mean is None:
            raise ValueError("Normalize() has no statistics yet: it gets them from the first "
                             "training batch when the DataLoaders are built; call "
                             "setup(image_batch) or use Normalize.from_stats(mean, std)")
        if self.mean.device != x.device:
            self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        return self.mean, self.std

    def encodes(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(x)
        return (x - mean) / std

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(x)
        return x * std + mean

    def describe_args(self) -> dict:
        if self.mean is None:
            raise ValueError("Normalize() has no statistics to export; build the DataLoaders first")
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist(),
                "axes": list(self.axes)}
