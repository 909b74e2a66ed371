"""U-Net for segmentation: a pretrained encoder, and a decoder that upsamples back to the input size,
merging the encoder's feature maps at every resolution.

The skip connections are found by running a dummy image through the encoder's children: the
output of the last child before each drop in resolution is kept and fed to the decoder block of
that resolution.

The decoder is built for a pretrained encoder and little training: each block upsamples by
bilinear interpolation (no weights, so the encoder's deepest features reach every resolution
unchanged from the first step), concatenates the BatchNorm-ed and ReLU-ed skip, and merges them
with one conv layer; widths are capped at ``max_width`` (256) whatever the encoder's width.
fastai's structure (pixel-shuffle upsampling, a middle block at twice the encoder's width) is one
argument each: ``upsample="shuffle"``, ``middle=True``.

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
from fastlearn.vision.layers import ConvLayer, NormType, SigmoidRange, SimpleSelfAttention
from fastlearn.vision.learner import add_normalization, create_body, describe_arch, describe_cut
from fastlearn.vision.models import arch_meta, params_of

UPSAMPLE_MODES = ("bilinear", "nearest", "shuffle")


def icnr_(weight: torch.Tensor, scale: int = 2, init: Callable = nn.init.kaiming_normal_) -> torch.Tensor:
    """Initialise, in place, the weight of a conv followed by ``PixelShuffle(scale)`` so that all
    ``scale**2`` sub-pixels of an output channel start from the same kernel: the shuffle then
    starts as nearest-neighbour upsampling, without a checkerboard (Aitken et al., 2017, ICNR).

    >>> conv = nn.Conv2d(4, 2 * 4, 1, bias=False)
    >>> _ = icnr_(conv.weight)
    >>> out = nn.PixelShuffle(2)(conv(torch.rand(1, 4, 3, 3)))
    >>> bool((out[..., ::2, ::2] == out[..., 1::2, 1::2]).all())
    True
    """
    n_out, *rest = weight.shape
    if n_out % (scale * scale):
        raise ValueError(f"weight with {n_out} output channels; expected a multiple of scale**2={scale * scale}")
    kernel = torch.empty(n_out // (scale * scale), *rest, device=weight.device, dtype=weight.dtype)
    init(kernel)
    with torch.no_grad():
        weight.copy_(kernel.repeat_interleave(scale * scale, dim=0))
    return weight


def _blur(x: torch.Tensor) -> torch.Tensor:
    """A 2x2 average shifted by one pixel (replicate padding): smooths an upsampling's pattern."""
    return F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), 2, stride=1)


class PixelShuffleUp(nn.Module):
    """Double the resolution with learned weights: a 1x1 conv to 4x the channels, ICNR-initialised
    (:func:`icnr_`), ReLU, then ``PixelShuffle(2)``; ``blur`` smooths the result.

    >>> PixelShuffleUp(8, 4)(torch.zeros(1, 8, 3, 3)).shape
    torch.Size([1, 4, 6, 6])
    """

    def __init__(self, n_in: int, n_out: int, blur: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(n_in, n_out * 4, 1)
        icnr_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.shuffle = nn.PixelShuffle(2)
        self.blur = blur

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shuffle(F.relu(self.conv(x)))
        return _blur(x) if self.blur else x


def decoder_conv(n_in: int, n_out: int, norm_type: NormType | None = NormType.Batch) -> ConvLayer:
    """A decoder layer: 3x3 conv, ``norm_type``, ReLU, with PyTorch's default init of the conv (not
    Kaiming normal). Followed by BatchNorm, a conv's scale does not change its output, so the
    effective step of its weights is the learning rate over their norm; the default init is
    about 2.4 times smaller than Kaiming normal, so a new decoder learns faster in a short
    fine-tune (see docs/transfer.md, "Segmentation").

    >>> [type(m).__name__ for m in decoder_conv(4, 8)]
    ['Conv2d', 'BatchNorm2d', 'ReLU']
    """
    return ConvLayer(n_in, n_out, norm_type=norm_type, init="pytorch")


def _resize(x: torch.Tensor, size: Sequence[int], mode: str) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=tuple(size), mode="nearest")
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class UnetBlock(nn.Module):
    """Upsample the decoder's input to the skip's size, concatenate the BatchNorm-ed and ReLU-ed
    encoder skip, and merge them with one conv layer (conv, ``norm_type``, ReLU) to ``out_channels``.
    ``upsample``: ``"bilinear"`` or ``"nearest"`` interpolation, or ``"shuffle"`` (:class:`PixelShuffleUp`
    to half the channels); ``blur`` smooths the upsampled map; ``self_attention`` adds a
    :class:`SimpleSelfAttention` (starting as the identity) after the conv.

    >>> UnetBlock(16, 8, 12)(torch.zeros(1, 16, 4, 4), torch.zeros(1, 8, 8, 8)).shape
    torch.Size([1, 12, 8, 8])
    """

    def __init__(self, up_channels: int, skip_channels: int, out_channels: int, upsample: str = "bilinear",
                 blur: bool = False, self_attention: bool = False, norm_type: NormType | None = NormType.Batch) -> None:
        super().__init__()
        _check_upsample(upsample)
        self.mode, self.blur = upsample, blur
        self.up = PixelShuffleUp(up_channels, up_channels // 2, blur=blur) if upsample == "shuffle" else None
        self.skip_bn = nn.BatchNorm2d(skip_channels)
        merged = (up_channels // 2 if upsample == "shuffle" else up_channels) + skip_channels
        self.conv = decoder_conv(merged, out_channels, norm_type)
        self.attention = SimpleSelfAttention(out_channels) if self_attention else nn.Identity()
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.up is not None:
            x = _resize(self.up(x), skip.shape[-2:], "nearest")
        else:
            x = _resize(x, skip.shape[-2:], self.mode)
            if self.blur:
                x = _blur(x)
        return self.attention(self.conv(torch.cat([x, F.relu(self.skip_bn(skip))], dim=1)))


def _check_upsample(upsample: str) -> None:
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"upsample={upsample!r}; expected one of {UPSAMPLE_MODES}")


def _norm_type(norm_type: NormType | str | None) -> NormType | None:
    """``norm_type`` as a :class:`NormType`: export files record its value (``"batch"``)."""
    if norm_type is None or isinstance(norm_type, NormType):
        return norm_type
    try:
        return NormType(norm_type)
    except ValueError:
        raise ValueError(f"norm_type={norm_type!r}; expected a NormType ({', '.join(n.name for n in NormType)}), "
                         "its value or None") from None


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
    is the decoder: one :class:`UnetBlock` per skip, from the deepest, each ``min((in + skip) // 2,
    max_width)`` channels wide; then back to the input size, ``last_cross`` concatenates the input
    image before a last conv layer, and a 1x1 conv gives ``n_out`` channels. ``middle`` adds
    fastai's middle block (BatchNorm, ReLU, two conv layers, at twice the encoder's width capped
    by ``max_width``) on the encoder's output; ``self_attention`` a self-attention layer after the
    third block from the end; ``norm_type`` is the decoder convs' normalization (None: none, with
    a bias); ``y_range`` squashes the output into that range.

    >>> from fastlearn.vision.learner import create_body
    >>> unet = DynamicUnet(create_body("resnet18", pretrained=False), n_out=2, img_size=(64, 64))
    >>> unet(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 2, 64, 64])
    """

    def __init__(self, encoder: nn.Sequential, n_out: int, img_size: tuple[int, int], n_in: int = 3,
                 blur: bool = False, self_attention: bool = False, y_range: tuple[float, float] | None = None,
                 last_cross: bool = True, norm_type: NormType | str | None = NormType.Batch,
                 upsample: str = "bilinear", max_width: int = 256, middle: bool = False) -> None:
        super().__init__()
        _check_upsample(upsample)
        if isinstance(max_width, bool) or not isinstance(max_width, int) or max_width < 1:
            raise ValueError(f"max_width={max_width!r}; expected a positive int (the decoder's widest layer)")
        norm_type = _norm_type(norm_type)
        self.encoder = encoder
        self.skip_indices, shapes = _skip_indices(encoder, n_in, tuple(img_size))
        channels = shapes[-1][1]
        if middle:
            width = min(channels * 2, max_width)
            self.middle = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                        decoder_conv(channels, width, norm_type), decoder_conv(width, width, norm_type))
            channels = width
        else:
            self.middle = nn.Identity()
        blocks = []
        for i, index in enumerate(reversed(self.skip_indices)):
            skip_channels = shapes[index][1]
            incoming = channels // 2 if upsample == "shuffle" else channels
            width = min((incoming + skip_channels) // 2, max_width)
            block = UnetBlock(channels, skip_channels, width, upsample=upsample, blur=blur, norm_type=norm_type,
                              self_attention=self_attention and i == len(self.skip_indices) - 3)
            blocks.append(block)
            channels = block.out_channels
        self.blocks = nn.ModuleList(blocks)
        self.upsample, self.blur = upsample, blur
        self.final_up = PixelShuffleUp(channels, channels, blur=blur) if upsample == "shuffle" else nn.Identity()
        self.last_cross = last_cross
        cross_channels = channels + n_in if last_cross else channels
        self.cross = decoder_conv(cross_channels, cross_channels, norm_type) if last_cross else nn.Identity()
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
            if self.upsample == "shuffle":
                out = _resize(self.final_up(out), x.shape[-2:], "nearest")
            else:
                out = _resize(out, x.shape[-2:], self.upsample)
                if self.blur:
                    out = _blur(out)
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
               cut: int | Callable | None = None, n_in: int = 3, blur: bool = False, self_attention: bool = False,
               y_range: Sequence[float] | None = None, last_cross: bool = True,
               norm_type: NormType | str | None = NormType.Batch, upsample: str = "bilinear", max_width: int = 256,
               middle: bool = False) -> DynamicUnet:
    """A :class:`DynamicUnet` on ``create_body(arch)``; what ``unet_learner`` trains and export rebuilds.

    >>> unet_model("efficientnet_lite0", 4, (64, 64), pretrained=False).head.out_channels
    4
    """
    encoder = create_body(arch, n_in=n_in, pretrained=pretrained, cut=cut)
    return DynamicUnet(encoder, n_out, tuple(img_size), n_in=n_in, blur=blur, self_attention=self_attention,
                       y_range=tuple(y_range) if y_range is not None else None, last_cross=last_cross,
                       norm_type=norm_type, upsample=upsample, max_width=max_width, middle=middle)


def unet_learner(dls, arch: Callable | str, normalize: bool = True, n_out: int | None = None,
                 pretrained: bool = True, splitter: Callable | None = None, cbs=None,
                 cut: int | Callable | None = None, n_in: int = 3, blur: bool = False, self_attention: bool = False,
                 y_range: tuple[float, float] | None = None, last_cross: bool = True,
                 norm_type: NormType | str | None = NormType.Batch, upsample: str = "bilinear",
                 max_width: int = 256, middle: bool = False,
                 img_size: Sequence[int] | None = None, keep_bn_stats: bool = True, **learner_args):
    """A Learner for segmentation with a U-Net on ``arch``: frozen encoder when pretrained,
    the arch's normalization added to the batch transforms, ``n_out`` from ``dls.c`` (the codes).
    The decoder (:class:`DynamicUnet`: ``blur``, ``self_attention``, ``y_range``, ``last_cross``,
    ``norm_type``, ``upsample``, ``max_width``, ``middle``) upsamples by bilinear interpolation with
    one conv layer per resolution, at most 256 channels wide; ``upsample="shuffle", middle=True,
    max_width=4096`` comes close to fastai's decoder.
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
    norm_type = _norm_type(norm_type)
    decoder = {"blur": blur, "self_attention": self_attention,
               "y_range": list(y_range) if y_range is not None else None, "last_cross": last_cross,
               "norm_type": norm_type.value if norm_type is not None else None, "upsample": upsample,
               "max_width": max_width, "middle": middle}
    model = unet_model(arch, n_out, img_size, pretrained=pretrained, cut=cut, n_in=n_in, **decoder)
    if pretrained and normalize:
        add_normalization(dls, meta["stats"], n_in)
    keep = [BnFreeze("body")] if pretrained and keep_bn_stats else []
    learn = Learner(dls, model, splitter=splitter or unet_split, cbs=keep + listify(cbs), **learner_args)
    learn.model_spec = {"builder": "fastlearn.vision.unet.unet_model",
                        "args": {"arch": describe_arch(arch), "n_out": n_out, "img_size": list(img_size),
                                 "pretrained": False, "cut": describe_cut(cut), "n_in": n_in, **decoder}}
    if pretrained:
        learn.freeze()
    return learn


register_code("model", unet_model)  # export files may name it (fastlearn.registry)
