"""Layers of the vision heads and architectures: concat pooling, flatten, sigmoid range, and the
``ConvLayer`` / ``ResBlock`` / ``SimpleSelfAttention`` blocks ``XResNet`` is made of.

``sigmoid_range`` and ``SigmoidRange`` are defined in :mod:`fastlearn.layers` (shared with the
tabular and collab applications) and imported here.

>>> import torch
>>> AdaptiveConcatPool2d()(torch.zeros(2, 8, 4, 4)).shape
torch.Size([2, 16, 1, 1])
"""
from __future__ import annotations

from enum import Enum

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


class NormType(Enum):
    """The normalization of a :class:`ConvLayer`: ``Batch``; ``BatchZero`` (batch norm whose scale
    starts at zero, so a residual branch ending with it starts as the identity); ``Instance`` /
    ``InstanceZero``; ``Weight`` / ``Spectral`` (weight or spectral normalization of the conv)."""

    Batch = "batch"
    BatchZero = "batch_zero"
    Weight = "weight"
    Spectral = "spectral"
    Instance = "instance"
    InstanceZero = "instance_zero"


_CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_TRANSPOSED = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_BATCH_NORMS = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_INSTANCE_NORMS = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
_RELU_LIKE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU)


def _check_ndim(ndim: int) -> int:
    if ndim not in _CONVS:
        raise ValueError(f"ndim={ndim!r}; expected 1, 2 or 3 spatial dimensions")
    return ndim


def _norm_layer(norm_type: NormType, nf: int, ndim: int) -> nn.Module | None:
    if norm_type in (NormType.Batch, NormType.BatchZero):
        norm = _BATCH_NORMS[ndim](nf)
    elif norm_type in (NormType.Instance, NormType.InstanceZero):
        norm = _INSTANCE_NORMS[ndim](nf, affine=True)
    else:
        return None
    with torch.no_grad():
        norm.bias.zero_()
        norm.weight.fill_(0.0 if norm_type in (NormType.BatchZero, NormType.InstanceZero) else 1.0)
    return norm


class ConvLayer(nn.Sequential):
    """A convolution followed by a normalization and an activation: the building block of the
    architecture chapters (chapter 14: ``ConvLayer(ni, nf, stride=2)``,
    ``ConvLayer(nf, nf, act_cls=None, norm_type=NormType.BatchZero)``).

    ``padding`` defaults to ``(ks - 1) // 2`` (``0`` when ``transpose``), ``bias`` to ``True``
    only without batch or instance norm (the norm's shift replaces it). ``bn_1st`` puts the norm
    before the activation. Weights are initialised with Kaiming normal for ReLU-like activations
    (``init="auto"``); any other ``init`` (``"pytorch"``) keeps PyTorch's default init.
    ``ndim`` chooses 1-, 2- or 3-d convolutions; ``xtra`` appends a layer; other keyword
    arguments go to the convolution (``groups``, ``dilation``...).

    >>> layer = ConvLayer(3, 8, stride=2)
    >>> [type(m).__name__ for m in layer], layer(torch.zeros(1, 3, 8, 8)).shape
    (['Conv2d', 'BatchNorm2d', 'ReLU'], torch.Size([1, 8, 4, 4]))
    """

    def __init__(self, ni: int, nf: int, ks: int = 3, stride: int = 1, padding: int | None = None,
                 bias: bool | None = None, ndim: int = 2, norm_type: NormType | None = NormType.Batch,
                 bn_1st: bool = True, act_cls: type[nn.Module] | None = nn.ReLU, transpose: bool = False,
                 init: str = "auto", xtra: nn.Module | None = None, groups: int = 1, dilation: int = 1):
        ndim = _check_ndim(ndim)
        if norm_type is not None and not isinstance(norm_type, NormType):
            raise TypeError(f"norm_type={norm_type!r}; expected a NormType (NormType.Batch, NormType.BatchZero, ...) "
                            "or None")
        if padding is None:
            padding = 0 if transpose else (ks - 1) // 2
        norm = _norm_layer(norm_type, nf, ndim) if norm_type is not None else None
        if bias is None:
            bias = norm is None
        conv_cls = (_TRANSPOSED if transpose else _CONVS)[ndim]
        conv = conv_cls(ni, nf, kernel_size=ks, stride=stride, padding=padding, bias=bias, groups=groups,
                        dilation=dilation)
        act = act_cls() if act_cls is not None else None
        if init == "auto" and (act_cls is None or issubclass(act_cls, _RELU_LIKE)):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu" if act_cls is not None else "linear")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
        if norm_type == NormType.Weight:
            conv = nn.utils.parametrizations.weight_norm(conv)
        elif norm_type == NormType.Spectral:
            conv = nn.utils.parametrizations.spectral_norm(conv)
        after = [m for m in ((norm, act) if bn_1st else (act, norm)) if m is not None]
        super().__init__(conv, *after, *([xtra] if xtra is not None else []))


class SimpleSelfAttention(nn.Module):
    """Self-attention over all positions of a feature map at a cost linear in their number:
    ``out = x + gamma * (x x^T) conv(x)`` on the flattened positions, with ``gamma`` starting at 0
    (the block starts as the identity). ``sym`` keeps the 1x1 convolution's matrix symmetric.
    Used in the last stage of an ``XResNet`` with ``sa=True``.

    >>> SimpleSelfAttention(8)(torch.zeros(2, 8, 4, 4)).shape
    torch.Size([2, 8, 4, 4])
    """

    def __init__(self, n_in: int, ks: int = 1, sym: bool = False):
        super().__init__()
        self.sym, self.n_in = sym, n_in
        self.conv = nn.Conv1d(n_in, n_in, ks, padding=ks // 2, bias=False)
        nn.init.kaiming_normal_(self.conv.weight)
        self.gamma = nn.Parameter(torch.tensor([0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sym:
            with torch.no_grad():
                matrix = self.conv.weight.view(self.n_in, self.n_in)
                self.conv.weight.copy_(((matrix + matrix.t()) / 2).view_as(self.conv.weight))
        size = x.shape
        flat = x.reshape(size[0], size[1], -1)
        gram = torch.bmm(flat, flat.transpose(1, 2))
        out = self.gamma * torch.bmm(gram, self.conv(flat)) + flat
        return out.reshape(size)


class ResBlock(nn.Module):
    """A residual block: ``act(convs(x) + idconv(pool(x)))``.

    ``expansion=1``: two ``ks`` x ``ks`` convolutions (ResNet-18/34); ``expansion=4``: a 1x1, a
    ``ks`` x ``ks`` and a 1x1 convolution, the output ``nf * 4`` channels wide (the bottleneck of
    ResNet-50 and deeper). The last convolution's norm starts at zero (``NormType.BatchZero``), so
    the block starts as the identity. The shortcut average-pools when ``stride > 1`` and uses a
    1x1 ConvLayer when the channel counts differ. ``sa`` adds :class:`SimpleSelfAttention`,
    ``groups`` grouped convolutions (ResNeXt), ``dw`` depthwise ones.

    >>> ResBlock(1, 16, 32, stride=2)(torch.zeros(1, 16, 8, 8)).shape
    torch.Size([1, 32, 4, 4])
    """

    def __init__(self, expansion: int, ni: int, nf: int, stride: int = 1, groups: int = 1, nh1: int | None = None,
                 nh2: int | None = None, dw: bool = False, g2: int = 1, sa: bool = False, sym: bool = False,
                 norm_type: NormType = NormType.Batch, act_cls: type[nn.Module] = nn.ReLU, ndim: int = 2,
                 ks: int = 3, pool_first: bool = True):
        super().__init__()
        ndim = _check_ndim(ndim)
        zero = NormType.InstanceZero if norm_type in (NormType.Instance, NormType.InstanceZero) else NormType.BatchZero
        nh2 = nf if nh2 is None else nh2
        nh1 = nh2 if nh1 is None else nh1
        nf, ni = nf * expansion, ni * expansion
        first = dict(norm_type=norm_type, act_cls=act_cls, ndim=ndim)
        last = dict(norm_type=zero, act_cls=None, ndim=ndim)
        if expansion == 1:
            layers = [ConvLayer(ni, nh2, ks, stride=stride, groups=ni if dw else groups, **first),
                      ConvLayer(nh2, nf, ks, groups=g2, **last)]
        else:
            layers = [ConvLayer(ni, nh1, 1, **first),
                      ConvLayer(nh1, nh2, ks, stride=stride, groups=nh1 if dw else groups, **first),
                      ConvLayer(nh2, nf, 1, groups=g2, **last)]
        if sa:
            layers.append(SimpleSelfAttention(nf, ks=1, sym=sym))
        self.convpath = nn.Sequential(*layers)
        shortcut: list[nn.Module] = []
        if ni != nf:
            shortcut.append(ConvLayer(ni, nf, 1, act_cls=None, ndim=ndim))
        if stride != 1:
            pool = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[ndim](stride, ceil_mode=True)
            shortcut.insert(0 if pool_first else len(shortcut), pool)
        self.idpath = nn.Sequential(*shortcut)
        self.act = act_cls()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.convpath(x) + self.idpath(x))
