"""Layers the vision heads are built from: concat pooling, flatten, sigmoid range.

>>> import torch
>>> AdaptiveConcatPool2d()(torch.zeros(2, 8, 4, 4)).shape
torch.Size([2, 16, 1, 1])
"""
from __future__ import annotations

import torch
from torch import nn


class AdaptiveConcatPool2d(nn.Module):
    """Max pooling and average pooling to ``size``, concatenated on the channels (max first).

    >>> x = torch.arange(4.).view(1, 1, 2, 2)
    >>> AdaptiveConcatPool2d()(x).flatten().tolist()
    [3.0, 1.5]
    """

    def __init__(self, size: int = 1) -> None:
        super().__init__()
        self.size = size
        self.max_pool = nn.AdaptiveMaxPool2d(size)
        self.avg_pool = nn.AdaptiveAvgPool2d(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.max_pool(x), self.avg_pool(x)], dim=1)


class Flatten(nn.Module):
    """``x.view(len(x), -1)`` as a layer (``full=True`` flattens to one dimension).

    >>> Flatten()(torch.zeros(2, 3, 1, 1)).shape
    torch.Size([2, 3])
    """

    def __init__(self, full: bool = False) -> None:
        super().__init__()
        self.full = full

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1) if self.full else x.reshape(x.shape[0], -1)


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
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sigmoid_range(x, self.low, self.high)

    def extra_repr(self) -> str:
        return f"low={self.low}, high={self.high}"
