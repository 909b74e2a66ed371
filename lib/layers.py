"""Layers shared by the applications: ``Embedding``, ``sigmoid_range`` / ``SigmoidRange``, ``LinBnDrop``.

>>> import torch
>>> emb = Embedding(10, 3)
>>> emb(torch.tensor([1, 2])).shape
torch.Size([2, 3])
"""
from __future__ import annotations

import math
import numbers

import torch
from torch import nn


class Embedding(nn.Embedding):
    """``nn.Embedding`` initialised from a truncated normal with standard deviation ``std`` (0.01).

    Small initial vectors let the dot products of collaborative filtering and the embeddings of a
    tabular model start near zero.

    >>> emb = Embedding(100, 4)
    >>> float(emb.weight.detach().abs().max()) <= 0.02
    True
    """

    def __init__(self, ni: int, nf: int, std: float = 0.01) -> None:
        super().__init__(ni, nf)
        with torch.no_grad():
            nn.init.trunc_normal_(self.weight, mean=0.0, std=std, a=-2 * std, b=2 * std)


def sigmoid_range(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """A sigmoid scaled to ``(low, high)``.

    >>> sigmoid_range(torch.tensor([0.]), 0, 10)
    tensor([5.])
    """
    return torch.sigmoid(x) * (high - low) + low


class SigmoidRange(nn.Module):
    """:func:`sigmoid_range` as a layer, for regression heads with ``y_range``.

    >>> SigmoidRange(-1, 1)(torch.tensor([100.]))
    tensor([1.])
    """

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        given = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in (low, high))
        if not (given and math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"y_range=({low!r}, {high!r}); expected (low, high): finite numbers with low < high, the "
                             "range predictions are squashed into (e.g. y_range=(0, 5.5)), or y_range=None")
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sigmoid_range(x, self.low, self.high)

    def extra_repr(self) -> str:
        return f"low={self.low}, high={self.high}"


class LinBnDrop(nn.Sequential):
    """A linear layer with batch norm, dropout and an activation around it.

    ``lin_first=False``: BatchNorm1d(n_in) → Dropout(p) → Linear → act; ``lin_first=True``:
    Linear → act → BatchNorm1d(n_out) → Dropout(p). The linear layer has no bias when followed or
    preceded by batch norm (the norm's shift plays that part).

    >>> block = LinBnDrop(4, 2, p=0.1, act=nn.ReLU())
    >>> [type(m).__name__ for m in block]
    ['BatchNorm1d', 'Dropout', 'Linear', 'ReLU']
    """

    def __init__(self, n_in: int, n_out: int, bn: bool = True, p: float = 0.0, act: nn.Module | None = None,
                 lin_first: bool = False) -> None:
        norm_and_drop: list[nn.Module] = []
        if bn:
            norm_and_drop.append(nn.BatchNorm1d(n_out if lin_first else n_in))
        if p:
            norm_and_drop.append(nn.Dropout(p))
        linear: list[nn.Module] = [nn.Linear(n_in, n_out, bias=not bn)]
        if act is not None:
            linear.append(act)
        super().__init__(*(linear + norm_and_drop if lin_first else norm_and_drop + linear))
