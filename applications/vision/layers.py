"""Layers the vision heads are built from: concat pooling, flatten, sigmoid range.

``sigmoid_range`` and ``SigmoidRange`` are defined in :mod:`fastlearn.layers` (shared with the
tabular and collab applications) and imported here.

>>> import torch
>>> AdaptiveConcatPool2d()(torch.zeros(2, 8, 4, 4)).shape
torch.Size([2, 16, 1, 1])
"""
from __future__ import annotations

import torch
from torch import nn

from fastlearn.layers import SigmoidRange, sigmoid_range  # noqa: F401  (re-exported)


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
