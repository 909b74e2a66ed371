"""U-Net for segmentation: a pretrained encoder, and a decoder that upsamples back to the input size,
merging the encoder's feature maps at every resolution.

The skip connections are found by running a dummy image through the encoder's children: the
output of the last child before each drop in resolution is kept and fed to the decoder block of
that resolution.

>>> import torch
>>> model = unet_model("resnet18", n_out=3, img_size=(64, 64), pretrained=False)
>>> model(torch.zeros(2, 3, 64, 64)).shape
torch.Size([2, 3, 64, 64])
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from fastlearn.foundation import listify
from fastlearn.learner import Learner, learner_kwargs
from fastlearn.registry import register_code
from fastlearn.training import BnFreeze
from fastlearn.vision.layers import SigmoidRange
from fastlearn.vision.learner import add_normalization, create_body, describe_arch, describe_cut
from fastlearn.vision.models import arch_meta, params_of


def conv_bn_relu(n_in: int, n_out: int, kernel_size: int = 3) -> nn.Sequential:
    """Conv (no bias), BatchNorm, ReLU, keeping the spatial size.

    >>> conv_bn_relu(3, 8)(torch.zeros(1, 3, 5, 5)).shape
    torch.Size([1, 8, 5, 5])
    """
    return nn.Sequential(nn.Conv2d(n_in, n_out, kernel_size, padding=kernel_size // 2, bias=False),
                         nn.BatchNorm2d(n_out), nn.ReLU(inplace=True))


class PixelShuffleUp(nn.Module):
    """Double the resolution: a 1x1 conv to 4x the channels, ReLU, ``PixelShuffle(2)``; ``blur``
    smooths the checkerboard pattern with a shifted 2x2 average.

    >>> PixelShuffleUp(8, 4)(torch.zeros(1, 8, 3, 3)).shape
    torch.Size([1, 4, 6, 6])
    """

    def __init__(self, n_in: int, n_out: int, blur: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(n_in, n_out * 4, 1)
        self.shuffle = nn.PixelShuffle(2)
        self.blur = blur

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shuffle(F.relu(self.conv(x)))
        if self.blur:
            x = F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), 2, stride=1)
        return x


class UnetBlock(nn.Module):
    """Upsample the decoder's input, concatenate the (normalized) encoder skip, two conv layers.

    >>> UnetBlock(16, 8)(torch.zeros(1, 16, 4, 4), torch.zeros(1, 8, 8, 8)).shape
    torch.Size([1, 8, 8, 8])
    """

    def __init__(self, up_channels: int, skip_channels: int, blur: bool = False) -> None:
        super().__init__()
        self.up = PixelShuffleUp(up_channels, up_channels // 2, blur=blur)
        self.skip_bn = nn.BatchNorm2d(skip_channels)
        merged = up_channels // 2 + skip_channels
        self.convs = nn.Sequential(conv_bn_relu(merged, merged // 2), conv_bn_relu(merged // 2, merged // 2))
        self.out_channels = merged // 2

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if x.shape[-2:] != skip.shape[-2:]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        return self.convs(torch.cat([x, F.relu(self.skip_bn(skip))], dim=1))


def _skip_indices(encoder: nn.Sequential, n_in: int, img_size: tuple[int, int]) -> tuple[list[int], list]:
    was_training = encoder.training
    encoder.eval()
    shapes = []
    with torch.no_grad():
        x = torch.zeros(1, n_in, *img_size, device=next(encoder.parameters()).device)
        for layer in encoder:
            x = layer(x)
            shapes.append(x.shape)
    encoder.train(was_training)
    indices = [i for i in range(len(shapes) - 1) if shapes[i + 1][-1] < shapes[i][-1]]
    return indices, shapes


class DynamicUnet(nn.Module):
    """A U-Net around any ``nn.Sequential`` encoder (see the module docstring).

    ``self.encoder`` is the pretrained body (``model.encoder``, the first param group); the rest
    is the decoder. ``last_cross`` concatenates the input image before the final layers.

    >>> from fastlearn.vision.learner import create_body
    >>> unet = DynamicUnet(create_body("resnet18", pretrained=False), n_out=2, img_size=(64, 64))
    >>> unet(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 2, 64, 64])
    """

    def __init__(self, encoder: nn.Sequential, n_out: int, img_size: tuple[int, int], n_in: int = 3,
                 blur: bool = False, y_range: tuple[float, float] | None = None, last_cross: bool = True) -> None:
        super().__init__()
        self.encoder = encoder
        self.skip_indices, shapes = _skip_indices(encoder, n_in, tuple(img_size))
        channels = shapes[-1][1]
        self.middle = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                    conv_bn_relu(channels, channels * 2), conv_bn_relu(channels * 2, channels))
        blocks = []
        for index in reversed(self.skip_indices):
            block = UnetBlock(channels, shapes[index][1], blur=blur)
            blocks.append(block)
            channels = block.out_channels
        self.blocks = nn.ModuleList(blocks)
        self.final_up = PixelShuffleUp(channels, channels, blur=blur)
        self.last_cross = last_cross
        cross_channels = channels + n_in if last_cross else channels
        self.cross = conv_bn_relu(cross_channels, cross_channels) if last_cross else nn.Identity()
        self.head = nn.Conv2d(cross_channels, n_out, 1)
        self.y_range = SigmoidRange(*y_range) if y_range is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips, out = [], x
        for i, layer in enumerate(self.encoder):
            out = layer(out)
            if i in self.skip_indices:
                skips.append(out)
        out = self.middle(out)
        for block, skip in zip(self.blocks, reversed(skips)):
            out = block(out, skip)
        if out.shape[-2:] != x.shape[-2:]:
            out = self.final_up(out)
            if out.shape[-2:] != x.shape[-2:]:
                out = F.interpolate(out, size=x.shape[-2:], mode="nearest")
        if self.last_cross:
            out = self.cross(torch.cat([out, x], dim=1))
        return self.y_range(self.head(out))


def unet_split(model: DynamicUnet) -> list[list[nn.Parameter]]:
    """Two param groups: the encoder, then the decoder.

    >>> len(unet_split(unet_model("resnet18", 2, (32, 32), pretrained=False)))
    2
    """
    encoder_ids = {id(p) for p in model.encoder.parameters()}
    return [params_of(model.encoder), [p for p in model.parameters() if id(p) not in encoder_ids]]


def unet_model(arch: Callable | str, n_out: int, img_size: Sequence[int], pretrained: bool = True,
               cut: int | Callable | None = None, n_in: int = 3, blur: bool = False,
               y_range: Sequence[float] | None = None, last_cross: bool = True) -> DynamicUnet:
    """A :class:`DynamicUnet` on ``create_body(arch)``; what ``unet_learner`` trains and export rebuilds.

    >>> unet_model("efficientnet_lite0", 4, (64, 64), pretrained=False).head.out_channels
    4
    """
    encoder = create_body(arch, n_in=n_in, pretrained=pretrained, cut=cut)
    return DynamicUnet(encoder, n_out, tuple(img_size), n_in=n_in, blur=blur,
                       y_range=tuple(y_range) if y_range is not None else None, last_cross=last_cross)


def unet_learner(dls, arch: Callable | str, normalize: bool = True, n_out: int | None = None,
                 pretrained: bool = True, splitter: Callable | None = None, cbs=None,
                 cut: int | Callable | None = None, n_in: int = 3, blur: bool = False,
                 y_range: tuple[float, float] | None = None, last_cross: bool = True,
                 img_size: Sequence[int] | None = None, keep_bn_stats: bool = True, **learner_args):
    """A Learner for segmentation with a U-Net on ``arch``: frozen encoder when pretrained,
    the arch's normalization added to the batch transforms, ``n_out`` from ``dls.c`` (the codes).
    ``keep_bn_stats``: the pretrained encoder's BatchNorm layers keep their statistics while
    training (``BnFreeze("body")``, as in ``vision_learner``). Every other argument
    (``loss_func``, ``metrics``, ``lr``, ``wd``, ``train_bn``, ``precision``, ... : any of
    ``Learner``'s) goes to ``Learner`` unchanged.

    >>> learn = unet_learner(dls, resnet34)   # doctest: +SKIP
    >>> learn.fine_tune(8)                    # doctest: +SKIP
    """
    learner_args = learner_kwargs("unet_learner", learner_args)
    if n_out is None:
        n_out = getattr(dls, "c", None)
        if not n_out:
            raise ValueError("unet_learner could not infer n_out from dls.c; pass n_out= (the number of codes)")
    if img_size is None:
        img_size = tuple(dls.train.one_batch()[0].shape[-2:])
    meta = arch_meta(arch)
    model = unet_model(arch, n_out, img_size, pretrained=pretrained, cut=cut, n_in=n_in, blur=blur,
                       y_range=y_range, last_cross=last_cross)
    if pretrained and normalize:
        add_normalization(dls, meta["stats"], n_in)
    keep = [BnFreeze("body")] if pretrained and keep_bn_stats else []
    learn = Learner(dls, model, splitter=splitter or unet_split, cbs=keep + listify(cbs), **learner_args)
    learn.model_spec = {"builder": "fastlearn.vision.unet.unet_model",
                        "args": {"arch": describe_arch(arch), "n_out": n_out, "img_size": list(img_size),
                                 "pretrained": False, "cut": describe_cut(cut), "n_in": n_in, "blur": blur,
                                 "y_range": list(y_range) if y_range is not None else None,
                                 "last_cross": last_cross}}
    if pretrained:
        learn.freeze()
    return learn


register_code("model", unet_model)  # export files may name it (fastlearn.registry)
