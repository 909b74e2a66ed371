"""``XResNet``: the ResNet of "Bag of Tricks for Image Classification" (a stem of three 3x3
convolutions, average-pooled shortcuts, residual branches that start at zero), as chapters 7 and
14 use it: ``model = xresnet50(n_out=dls.c)``, trained from scratch.

There are no pretrained XResNet weights offline: ``pretrained=True`` is an error. It is an
``nn.Sequential`` (stem, max pool, four stages, pooling, flatten, dropout, linear), so
``vision_learner(dls, xresnet34, pretrained=False)`` cuts it before the pooling like any ResNet.

>>> model = xresnet18(n_out=10)
>>> model(torch.zeros(2, 3, 64, 64)).shape
torch.Size([2, 10])
"""
from __future__ import annotations

from collections.abc import Sequence

import torch  # noqa: F401  (the examples use it)
from torch import nn

from fastlearn.vision.layers import ConvLayer, Flatten, ResBlock


def init_cnn(model: nn.Module) -> nn.Module:
    """Kaiming-normal weights and zero biases for every convolution and linear layer of ``model``
    (norm layers keep their own initialisation); returns ``model``."""
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


class XResNet(nn.Sequential):
    """An XResNet of ``layers`` blocks per stage (``[2, 2, 2, 2]``: 18 layers), with ``expansion``
    1 (basic blocks) or 4 (bottlenecks).

    ``c_in`` input channels, ``n_out`` classes, ``p`` dropout before the last linear layer,
    ``stem_szs`` the stem's widths, ``widen`` scales the stage widths, ``sa`` adds self-attention
    to the last block of the fourth stage, ``act_cls`` the activation, ``ndim`` 1-, 2- or 3-d.

    >>> [type(m).__name__ for m in XResNet(1, [1, 1, 1, 1], n_out=2)][-4:]
    ['AdaptiveAvgPool2d', 'Flatten', 'Dropout', 'Linear']
    """

    def __init__(self, expansion: int, layers: Sequence[int], p: float = 0.0, c_in: int = 3, n_out: int = 1000,
                 stem_szs: Sequence[int] = (32, 32, 64), widen: float = 1.0, sa: bool = False,
                 act_cls: type[nn.Module] = nn.ReLU, ndim: int = 2, ks: int = 3, stride: int = 2):
        if expansion not in (1, 4):
            raise ValueError(f"XResNet(expansion={expansion!r}); expected 1 (basic blocks) or 4 (bottlenecks)")
        if len(layers) < 4:
            raise ValueError(f"XResNet(layers={list(layers)}): expected at least 4 stages, e.g. [2, 2, 2, 2]")
        widths = [c_in, *stem_szs]
        stem = [ConvLayer(widths[i], widths[i + 1], ks=ks, stride=stride if i == 0 else 1, act_cls=act_cls,
                          ndim=ndim) for i in range(len(stem_szs))]
        block_szs = [64 // expansion] + [int(w * widen) for w in [64, 128, 256, 512] + [256] * (len(layers) - 4)]
        stages = [self._make_stage(expansion, block_szs[i], block_szs[i + 1], n_blocks,
                                   stride=1 if i == 0 else 2, sa=sa and i == len(layers) - 4,
                                   act_cls=act_cls, ndim=ndim, ks=ks)
                  for i, n_blocks in enumerate(layers)]
        max_pool = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[ndim](ks, stride=stride, padding=ks // 2)
        pool = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}[ndim](1)
        super().__init__(*stem, max_pool, *stages, pool, Flatten(), nn.Dropout(p),
                         nn.Linear(block_szs[-1] * expansion, n_out))
        init_cnn(self)

    @staticmethod
    def _make_stage(expansion: int, ni: int, nf: int, n_blocks: int, stride: int, sa: bool, act_cls, ndim: int,
                    ks: int) -> nn.Sequential:
        return nn.Sequential(*[
            ResBlock(expansion, ni if i == 0 else nf, nf, stride=stride if i == 0 else 1,
                     sa=sa and i == n_blocks - 1, act_cls=act_cls, ndim=ndim, ks=ks)
            for i in range(n_blocks)])


def _xresnet(name: str, expansion: int, layers: list[int]):
    def build(pretrained: bool = False, n_out: int = 1000, c_in: int = 3, p: float = 0.0, sa: bool = False,
              act_cls: type[nn.Module] = nn.ReLU, widen: float = 1.0) -> XResNet:
        if pretrained:
            raise ValueError(f"{name} has no pretrained weights (none are available offline); pass "
                             f"pretrained=False, or use a pretrained architecture such as 'efficientnet_lite0'")
        return XResNet(expansion, layers, p=p, c_in=c_in, n_out=n_out, sa=sa, act_cls=act_cls, widen=widen)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = (f"An XResNet-{name[7:]} ({expansion=}, stages {layers}), untrained: "
                     f"``{name}(n_out=dls.c)``.")
    build.__module__ = __name__
    return build


xresnet18 = _xresnet("xresnet18", 1, [2, 2, 2, 2])
xresnet34 = _xresnet("xresnet34", 1, [3, 4, 6, 3])
xresnet50 = _xresnet("xresnet50", 4, [3, 4, 6, 3])
xresnet101 = _xresnet("xresnet101", 4, [3, 4, 23, 3])
xresnet152 = _xresnet("xresnet152", 4, [3, 8, 36, 3])
XRESNET_ARCHS = (xresnet18, xresnet34, xresnet50, xresnet101, xresnet152)
