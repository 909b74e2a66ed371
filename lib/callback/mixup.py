"""Data augmentation that mixes training items: ``MixUp`` and ``CutMix`` (the course's
``fastai.callback.mixup``).

Each training batch is mixed with a shuffled copy of itself. For class-index targets the loss is
mixed (``lam * loss(pred, y) + (1 - lam) * loss(pred, y_shuffled)``, per item), so any loss that
can give one value per item works; float targets (multi-label, one-hot, regression) are mixed
themselves. Validation is never mixed.

>>> learn.fit_one_cycle(5, cbs=MixUp(0.4))    # doctest: +SKIP
>>> learn.fit_one_cycle(5, cbs=CutMix(1.0))   # doctest: +SKIP
"""
from __future__ import annotations

import torch
from torch.distributions import Beta

from fastlearn.callback import Callback
from fastlearn.losses import loss_with_reduction
from fastlearn.training import GradientAccumulation

__all__ = ["CutMix", "MixHandler", "MixUp"]


def _per_item(weights: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``weights`` (one per item) shaped to broadcast over a batch of ``shape``."""
    return weights.reshape(-1, *([1] * (len(shape) - 1)))


class MixHandler(Callback):
    """Base of ``MixUp`` and ``CutMix``: ``mix_inputs`` (in subclasses) mixes ``xb`` with
    ``xb[perm]`` and sets ``lam``, one weight per item; this class mixes the targets or the loss.

    >>> MixHandler(0.4).alpha
    0.4
    """

    run_valid = False
    run_before = GradientAccumulation  # which scales the mixed loss

    def __init__(self, alpha: float = 0.5):
        if not alpha > 0:
            raise ValueError(f"alpha={alpha!r}; expected a positive Beta distribution parameter (0.4 is usual)")
        self.alpha = alpha
        self.distrib = Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))
        self.lam: torch.Tensor | None = None
        self.perm: torch.Tensor | None = None
        self.shuffled_targets: tuple = ()
        self.mixes_loss = False

    def mix_inputs(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def before_batch(self):
        if not self.xb or not isinstance(self.xb[0], torch.Tensor):
            return
        x = self.xb[0]
        self.perm = torch.randperm(len(x), device=x.device)
        self.learn.xb = (self.mix_inputs(x), *self.xb[1:])
        self.shuffled_targets = tuple(y[self.perm] for y in self.yb)
        self.mixes_loss = bool(self.yb) and not self.yb[0].is_floating_point()
        if self.yb and not self.mixes_loss:
            self.learn.yb = tuple(torch.lerp(shuffled, y, _per_item(self.lam, y.shape).to(y.dtype))
                                  for y, shuffled in zip(self.yb, self.shuffled_targets))

    def after_loss(self):
        if self.lam is None or not self.yb or not self.mixes_loss or self.pred is None:
            return
        per_item = loss_with_reduction(self.loss_func, "none")
        losses = per_item(self.pred, *self.yb)
        shuffled = per_item(self.pred, *self.shuffled_targets)
        lam = self.lam.to(losses.dtype)
        if losses.numel() != len(lam):  # one loss per pixel or per token: the item's weight for each
            lam = lam.repeat_interleave(losses.numel() // len(lam))
        mixed = (lam * losses.reshape(-1) + (1 - lam) * shuffled.reshape(-1)).mean()
        self.learn.loss_grad, self.learn.loss = mixed, mixed.detach().clone()

    def after_batch(self):
        self.lam, self.perm, self.shuffled_targets = None, None, ()


class MixUp(MixHandler):
    """MixUp: each training item becomes ``lam * x + (1 - lam) * x_other``, with ``lam`` drawn per
    item from ``Beta(alpha, alpha)`` and kept above 0.5 (the item stays the main one).

    >>> MixUp().alpha
    0.4
    """

    def __init__(self, alpha: float = 0.4):
        super().__init__(alpha)

    def mix_inputs(self, x: torch.Tensor) -> torch.Tensor:
        lam = self.distrib.sample((len(x),)).to(x.device)
        self.lam = torch.maximum(lam, 1 - lam)
        return torch.lerp(x[self.perm], x, _per_item(self.lam, x.shape).to(x.dtype))


class CutMix(MixHandler):
    """CutMix: a random box of each training image is replaced by the same box of another image;
    the box covers ``1 - lam`` of the image, ``lam`` drawn from ``Beta(alpha, alpha)`` per batch
    (then set to the box's real share), and the targets or loss are mixed with it.

    >>> CutMix().alpha
    1.0
    """

    def __init__(self, alpha: float = 1.0):
        super().__init__(alpha)
        self.box: tuple[int, int, int, int] | None = None

    def mix_inputs(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 3:
            raise ValueError(f"CutMix cuts boxes out of images (batch, channels, height, width); got inputs of "
                             f"shape {tuple(x.shape)}; use MixUp for other data")
        height, width = x.shape[-2:]
        lam = float(self.distrib.sample())
        ratio = (1 - lam) ** 0.5
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        cy, cx = int(torch.randint(0, height, ())), int(torch.randint(0, width, ()))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
        self.box = (y0, y1, x0, x1)
        mixed = x.clone()
        mixed[..., y0:y1, x0:x1] = x[self.perm][..., y0:y1, x0:x1]
        kept = 1 - (y1 - y0) * (x1 - x0) / (height * width)
        self.lam = torch.full((len(x),), kept, device=x.device)
        return mixed
