"""Brightness and contrast augmentation on float image batches, in logit space, in one step.

A pixel ``x`` in [0, 1] becomes ``sigmoid(logit(x) * contrast + logit(brightness))``: brightness
0.5 and contrast 1 leave it unchanged, and values never leave [0, 1].

>>> import torch, random
>>> tfm = Brightness(max_lighting=0.4, p=1.)
>>> x = torch.full((2, 3, 4, 4), 0.5)
>>> out, = tfm.call_sample((x,), ("image",), split_idx=0, rng=random.Random(0))
>>> bool(out.min() >= 0 and out.max() <= 1), out.shape
(True, torch.Size([2, 3, 4, 4]))
"""
from __future__ import annotations

import math
import random
from collections.abc import Sequence

import torch

from fastlearn.data.transforms import Transform


def _logit(x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


class LightingPart:
    """One random lighting change: ``draw`` returns per-image (scale, shift) in logit space."""

    def __init__(self, max_lighting: float, p: float) -> None:
        if not 0 <= max_lighting < 1:
            raise ValueError(f"max_lighting={max_lighting!r}; expected a value in [0, 1)")
        if not 0 <= p <= 1:
            raise ValueError(f"p={p!r}; expected a probability between 0 and 1")
        self.max_lighting, self.p = max_lighting, p
        self.params: dict[str, torch.Tensor] = {}

    def draw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class BrightnessPart(LightingPart):
    """Brightness uniform in ``0.5 * (1 ± max_lighting)`` (0.5 is unchanged)."""

    def draw(self, n, generator):
        applied = torch.rand(n, generator=generator) < self.p
        low, high = 0.5 * (1 - self.max_lighting), 0.5 * (1 + self.max_lighting)
        value = torch.where(applied, low + (high - low) * torch.rand(n, generator=generator), torch.full((n,), 0.5))
        self.params = {"brightness": value}
        return torch.ones(n), _logit(value)


class ContrastPart(LightingPart):
    """Contrast log-uniform in ``[1 - max_lighting, 1 / (1 - max_lighting)]`` (1 is unchanged)."""

    def draw(self, n, generator):
        applied = torch.rand(n, generator=generator) < self.p
        bound = -math.log(1 - self.max_lighting)
        value = torch.where(applied, torch.exp((torch.rand(n, generator=generator) * 2 - 1) * bound), torch.ones(n))
        self.params = {"contrast": value}
        return value, torch.zeros(n)


class LightingTfm(Transform):
    """Apply lighting parts to float image batches (training only), composed into one scale and shift.

    Parts apply in order, each as ``logit -> logit * scale + shift``.

    >>> LightingTfm([BrightnessPart(0.2, 1.), ContrastPart(0.2, 1.)]).order
    40
    """

    order = 40
    split_idx = 0
    kinds = ("image",)

    def __init__(self, parts: Sequence[LightingPart] = (), batch: bool = False) -> None:
        super().__init__()
        self.parts, self.batch = list(parts), batch
        self.scale = self.shift = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(type(p).__name__ for p in self.parts)})"

    def draw(self, n: int, rng: random.Random | None = None) -> None:
        generator = torch.Generator().manual_seed((rng or random).getrandbits(62))
        draws = 1 if self.batch else n
        scale, shift = torch.ones(draws), torch.zeros(draws)
        for part in self.parts:
            part_scale, part_shift = part.draw(draws, generator)
            scale, shift = scale * part_scale, shift * part_scale + part_shift
        self.scale, self.shift = scale.expand(n), shift.expand(n)

    def before_call(self, sample, kinds, split_idx, rng) -> None:
        images = [p for p, k in zip(sample, kinds) if k == "image"]
        if images:
            self.draw(images[0].shape[0], rng)

    def encodes(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            raise TypeError(f"{self!r} works on float images in [0, 1], got {x.dtype}; put it after "
                            "IntToFloatTensor (order 10) in batch_tfms")
        if self.scale is None or self.scale.shape[0] != x.shape[0]:
            self.draw(x.shape[0])
        shape = (-1,) + (1,) * (x.ndim - 1)
        scale, shift = self.scale.to(x.device).view(shape), self.shift.to(x.device).view(shape)
        return torch.sigmoid(_logit(x) * scale + shift).to(x.dtype)


class Brightness(LightingTfm):
    """Change brightness by up to ``max_lighting`` with probability ``p``.

    >>> Brightness(0.3).parts[0].max_lighting
    0.3
    """

    def __init__(self, max_lighting: float = 0.2, p: float = 0.75, batch: bool = False) -> None:
        super().__init__([BrightnessPart(max_lighting, p)], batch=batch)


class Contrast(LightingTfm):
    """Change contrast by up to ``max_lighting`` with probability ``p``.

    >>> Contrast(0.3).parts[0].max_lighting
    0.3
    """

    def __init__(self, max_lighting: float = 0.2, p: float = 0.75, batch: bool = False) -> None:
        super().__init__([ContrastPart(max_lighting, p)], batch=batch)
