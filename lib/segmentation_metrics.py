"""Segmentation metrics, summed over the whole validation set: ``foreground_acc``, the binary
``Dice`` and ``JaccardCoeff`` (foreground against background), and ``DiceMulti`` /
``JaccardCoeffMulti`` (per class, averaged over the classes present).

The binary metrics refuse a mask with more than two classes (a binary Dice of class indices is
not a score), and say to use the ``Multi`` metrics instead.

>>> from types import SimpleNamespace
>>> m = DiceMulti(); m.reset()
>>> m.accumulate(SimpleNamespace(pred=torch.tensor([[[[0., 0., 5.]], [[5., 5., 0.]]]]), yb=(torch.tensor([[[1, 0, 0]]]),)))
>>> round(m.value, 4)
0.6667
"""
from __future__ import annotations

import torch

from fastlearn.metric_base import Metric, _as_value, flatten_check


def foreground_acc(inp: torch.Tensor, targ: torch.Tensor, bkg_idx: int = 0, axis: int = 1) -> torch.Tensor:
    """Segmentation accuracy over the pixels whose target is not the background class ``bkg_idx``.

    >>> foreground_acc(torch.tensor([[[[5., 0.]], [[0., 5.]]]]), torch.tensor([[[1, 1]]]))
    tensor(0.5000)
    """
    pred = inp.argmax(dim=axis)
    mask = targ != bkg_idx
    return (pred[mask] == targ[mask]).float().mean()


def _binary_masks(pred: torch.Tensor, targ: torch.Tensor, axis: int, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and target foreground masks (0/1), refusing masks of more than two classes."""
    n_scores = pred.shape[axis]
    if n_scores > 2:
        raise ValueError(
            f"{metric} is the binary score of the foreground (class 1) against the background, but the model gives "
            f"{n_scores} class scores per pixel (output shape {tuple(pred.shape)}); use {metric}Multi() for the "
            "mean over classes")
    labels = (pred > 0).squeeze(axis).long() if n_scores == 1 else pred.argmax(dim=axis)
    return flatten_check(labels, targ)


class Dice(Metric):
    """Binary Dice ``2 |A n B| / (|A| + |B|)`` of the predicted foreground (argmax of two class
    scores, or a positive logit for one), summed over the whole set. Masks of more classes are an
    error: use ``DiceMulti``.

    >>> from types import SimpleNamespace
    >>> m = Dice(); m.reset()  # predicted mask [1, 1, 0], target [1, 0, 0]
    >>> m.accumulate(SimpleNamespace(pred=torch.tensor([[[[0., 0., 5.]], [[5., 5., 0.]]]]), yb=(torch.tensor([[[1, 0, 0]]]),)))
    >>> round(m.value, 4)
    0.6667
    """

    def __init__(self, axis: int = 1):
        self.axis = axis
        self.reset()

    def reset(self) -> None:
        self.intersection, self.union, self.highest = 0.0, 0.0, 0

    def accumulate(self, learn) -> None:
        pred, targ = _binary_masks(learn.pred, learn.yb[0], self.axis, type(self).__name__)
        self.intersection = self.intersection + (pred * targ).float().sum()
        self.union = self.union + (pred + targ).float().sum()
        if targ.numel():  # kept on the device: checked once, in value
            self.highest = torch.maximum(torch.as_tensor(self.highest, device=targ.device), targ.max())

    def _check_binary(self) -> None:
        if int(self.highest) > 1:
            name = type(self).__name__
            raise ValueError(f"{name} is binary but the target masks hold class {int(self.highest)}; use "
                             f"{name}Multi() for masks of several classes")

    @property
    def value(self) -> float | None:
        self._check_binary()
        return _as_value(2.0 * self.intersection / self.union) if self.union > 0 else None


class JaccardCoeff(Dice):
    """Binary Jaccard index (intersection over union) of the predicted foreground over the whole set.

    >>> from types import SimpleNamespace
    >>> m = JaccardCoeff(); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.tensor([[[[0., 0., 5.]], [[5., 5., 0.]]]]), yb=(torch.tensor([[[1, 0, 0]]]),)))
    >>> m.value
    0.5
    """

    @property
    def value(self) -> float | None:
        self._check_binary()
        return _as_value(self.intersection / (self.union - self.intersection)) if self.union > 0 else None


class DiceMulti(Metric):
    """Dice per class (classes absent from both prediction and target skipped), averaged over classes.

    >>> from types import SimpleNamespace
    >>> m = DiceMulti(); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.tensor([[[[0., 0., 5.]], [[5., 5., 0.]]]]), yb=(torch.tensor([[[1, 0, 0]]]),)))
    >>> round(m.value, 4)  # class 0: 2*1/3, class 1: 2*1/3
    0.6667
    """

    def __init__(self, axis: int = 1):
        self.axis = axis
        self.reset()

    def reset(self) -> None:
        self.intersection: dict[int, torch.Tensor] = {}
        self.union: dict[int, torch.Tensor] = {}

    def accumulate(self, learn) -> None:
        n_classes = learn.pred.shape[self.axis]
        pred, targ = flatten_check(learn.pred.argmax(dim=self.axis), learn.yb[0])
        for c in range(n_classes):
            p, t = pred == c, targ == c
            self.intersection[c] = self.intersection.get(c, 0.0) + (p & t).float().sum()
            self.union[c] = self.union.get(c, 0.0) + p.float().sum() + t.float().sum()

    def _score(self, c: int) -> torch.Tensor:
        return 2.0 * self.intersection[c] / self.union[c]

    @property
    def value(self) -> float | None:
        scores = [self._score(c) for c in self.union if self.union[c] > 0]
        return _as_value(torch.stack(scores).mean()) if scores else None


class JaccardCoeffMulti(DiceMulti):
    """Jaccard index (intersection over union) per class, averaged over the classes present.

    >>> from types import SimpleNamespace
    >>> m = JaccardCoeffMulti(); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.tensor([[[[0., 0., 5.]], [[5., 5., 0.]]]]), yb=(torch.tensor([[[1, 0, 0]]]),)))
    >>> m.value  # class 0: 1/2, class 1: 1/2
    0.5
    """

    def _score(self, c: int) -> torch.Tensor:
        return self.intersection[c] / (self.union[c] - self.intersection[c])
