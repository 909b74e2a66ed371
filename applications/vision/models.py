"""Architectures for transfer learning: where to cut them, how to split them, how to normalize their inputs.

``model_meta`` maps an architecture constructor (a torchvision function such as ``resnet34``, or
``efficientnet_lite0`` ... ``efficientnet_lite2``) to a dict with ``cut`` (where the body ends: a
child index, or a function ``model -> nn.Sequential``), ``split`` (``model -> list of param lists``
for a ``nn.Sequential(body, head)``) and ``stats`` (the normalization the pretrained weights expect).

>>> from torchvision.models import resnet50
>>> model_meta[resnet50]["cut"]
-2
>>> resolve_arch("resnet18").__name__
'resnet18'
"""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from torch import nn

from fastlearn.registry import code_from_name
from fastlearn.vision.efficientnet_lite import LITE_ARCHS, LITE_STATS, efficientnet_lite0
from fastlearn.vision.timm_archs import TimmArch, resolve_timm, timm_body
from fastlearn.vision.xresnet import XRESNET_ARCHS

IMAGENET_STATS = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def params_of(*modules: nn.Module) -> list[nn.Parameter]:
    """All parameters of ``modules``, in order (frozen ones included: freezing is the Learner's job).

    >>> len(params_of(nn.Linear(2, 3), nn.Linear(3, 1)))
    4
    """
    return [p for module in modules for p in module.parameters()]


def body_head_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """Two param groups for ``nn.Sequential(body, head)``: the body, then the head.

    >>> len(body_head_split(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))))
    2
    """
    return [params_of(model[0]), params_of(model[1])]


def _halves_split(stages: list[nn.Module], head: nn.Module) -> list[list[nn.Parameter]]:
    """Cut ``stages`` where the running count of parameter tensors is closest to half (layer depth)."""
    counts = [len(params_of(stage)) for stage in stages]
    total, running, middle, best = sum(counts), 0, 1, None
    for i, count in enumerate(counts[:-1], start=1):
        running += count
        if best is None or abs(2 * running - total) < best:
            middle, best = i, abs(2 * running - total)
    return [params_of(*stages[:middle]), params_of(*stages[middle:]), params_of(head)]


def resnet_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """Three groups for a cut ResNet: stem + layers 1-2, layers 3-4, head.

    >>> from torchvision.models import resnet18
    >>> from fastlearn.vision.learner import create_body, create_head
    >>> [len(g) > 0 for g in resnet_split(nn.Sequential(create_body(resnet18, pretrained=False), create_head(512, 2)))]
    [True, True, True]
    """
    body = model[0]
    return [params_of(*list(body)[:6]), params_of(*list(body)[6:]), params_of(model[1])]


def features_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """Three groups for a body whose first child is a ``features`` Sequential (VGG, MobileNet,
    EfficientNet, ConvNeXt, DenseNet): its first half, its second half (plus the rest), the head.

    >>> from torchvision.models import mobilenet_v3_small
    >>> from fastlearn.vision.learner import create_body, create_head
    >>> len(features_split(nn.Sequential(create_body(mobilenet_v3_small, pretrained=False), create_head(576, 2))))
    3
    """
    body = model[0]
    stages = list(body[0]) + list(body)[1:]
    return _halves_split(stages, model[1])


def sequential_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """Three groups for a flat body (EfficientNet-Lite, RegNet): first half, second half, head.

    >>> len(sequential_split(nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), nn.Linear(2, 1))))
    3
    """
    body = model[0]
    stages = []
    for child in body:
        stages.extend(list(child) if isinstance(child, nn.Sequential) and len(child) > 1 else [child])
    return _halves_split(stages, model[1])


def timm_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """Three groups for ``nn.Sequential(TimmBody, head)``: the first and second half of the timm
    model's stages (by depth), then the head."""
    body = model[0].model
    stages = [child for child in body.children() if next(child.parameters(), None) is not None]
    return _halves_split(stages, model[1])


def lite_body(model: nn.Module) -> nn.Sequential:
    """The convolutional body of an ``EfficientNetLite`` as a flat ``nn.Sequential``.

    >>> len(lite_body(efficientnet_lite0()))
    22
    """
    return nn.Sequential(model._conv_stem, model._bn0, nn.ReLU6(inplace=True), *model._blocks,
                         model._conv_head, model._bn1, nn.ReLU6(inplace=True))


def densenet_body(model: nn.Module) -> nn.Sequential:
    """DenseNet's ``features`` followed by the ReLU its ``forward`` applies.

    >>> from torchvision.models import densenet121
    >>> isinstance(densenet_body(densenet121())[-1], nn.ReLU)
    True
    """
    return nn.Sequential(model.features, nn.ReLU(inplace=True))


def _meta(cut, split, stats=IMAGENET_STATS) -> dict:
    return {"cut": cut, "split": split, "stats": stats}


def _torchvision_archs(prefixes: tuple[str, ...]) -> list[Callable]:
    names = sorted(torchvision.models.list_models(module=torchvision.models))
    return [getattr(torchvision.models, name) for name in names if name.startswith(prefixes)]


model_meta: dict[Callable, dict] = {arch: _meta(lite_body, sequential_split, LITE_STATS) for arch in LITE_ARCHS}
for _arch in _torchvision_archs(("resnet", "resnext", "wide_resnet")):
    model_meta[_arch] = _meta(-2, resnet_split)
for _arch in _torchvision_archs(("densenet",)):
    model_meta[_arch] = _meta(densenet_body, features_split)
for _arch in _torchvision_archs(("vgg",)):
    if _arch.__name__.endswith("_bn"):
        model_meta[_arch] = _meta(-2, features_split)
for _arch in _torchvision_archs(("mobilenet_v3", "efficientnet_b", "efficientnet_v2", "convnext")):
    model_meta[_arch] = _meta(-2, features_split)
for _arch in _torchvision_archs(("regnet",)):
    model_meta[_arch] = _meta(-2, sequential_split)
for _arch in XRESNET_ARCHS:  # untrained: cut before pooling, flatten, dropout and linear
    model_meta[_arch] = _meta(-4, sequential_split)


def arch_by_name(name: str) -> Callable:
    """The registered constructor called ``name`` (``"resnet34"``, ``"efficientnet_lite0"``), or None."""
    for arch in model_meta:
        if arch.__name__ == name:
            return arch
    return None


def resolve_arch(arch: Callable | str) -> Callable:
    """A constructor from a constructor or a name: a registered name first, then a timm model name
    (tagged or not) when ``timm`` is installed, then a dotted import path.

    >>> resolve_arch("efficientnet_lite0") is efficientnet_lite0
    True
    """
    if callable(arch):
        return arch
    if not isinstance(arch, str):
        raise TypeError(f"arch={arch!r}; expected a model constructor such as resnet34, or its name as a string")
    found = arch_by_name(arch)
    if found is not None:
        return found
    timm_arch = resolve_timm(arch)  # before dotted paths: "vit_base_patch16_224.augreg_in21k" is a timm name
    if timm_arch is not None:
        return timm_arch
    if "." in arch:
        return code_from_name(arch, "arch")
    if importlib.util.find_spec("timm") is None:
        known = ", ".join(sorted(a.__name__ for a in model_meta)[:8])
        raise ValueError(f"arch={arch!r} is not a known architecture ({known}, ...) and timm, which would "
                         "provide other names, is not installed; pick a known name or "
                         "pip install 'fastlearn[timm]'")
    raise ValueError(f"arch={arch!r} is neither a fastlearn architecture nor a timm model name "
                     "(timm.list_models() lists those)")


def arch_meta(arch: Callable | str) -> dict:
    """``model_meta[arch]`` or, for an unregistered architecture, cut at the pooling layer with
    ImageNet stats and a body / head split.

    >>> arch_meta("resnet18")["stats"][0]
    [0.485, 0.456, 0.406]
    """
    arch = resolve_arch(arch)
    if isinstance(arch, TimmArch):
        return _meta(timm_body, timm_split, arch.stats)
    return model_meta.get(arch, _meta(None, body_head_split))


def arch_name(arch: Callable | str) -> str:
    """The name an export records for ``arch``.

    >>> from torchvision.models import resnet18
    >>> arch_name(resnet18)
    'resnet18'
    """
    return arch if isinstance(arch, str) else getattr(arch, "__name__", type(arch).__name__)


def torchvision_checkpoint_path(arch: Callable) -> Path | None:
    """Where the torch hub cache keeps ``arch``'s default pretrained weights (None if it has none).

    >>> from torchvision.models import resnet18
    >>> torchvision_checkpoint_path(resnet18).name
    'resnet18-f37072fd.pth'
    """
    try:
        weights = torchvision.models.get_model_weights(arch).DEFAULT
    except (ValueError, KeyError, AttributeError):
        return None
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def pretrained_model(arch: Callable | str) -> nn.Module:
    """``arch`` with its ImageNet weights: from the installed package for the EfficientNet-Lite
    variants, from torchvision's weights API (torch hub cache, downloaded when there is a network)
    otherwise.

    Raises ``FileNotFoundError`` naming the file to place when the weights cannot be found.
    """
    arch = resolve_arch(arch)
    if arch in LITE_ARCHS or isinstance(arch, TimmArch):
        return arch(pretrained=True)
    checkpoint = torchvision_checkpoint_path(arch)
    if checkpoint is None:
        try:
            return arch(pretrained=True)
        except TypeError as error:
            raise ValueError(f"{arch_name(arch)} has no pretrained weights fastlearn knows how to load; "
                             "pass pretrained=False") from error
    try:
        return arch(weights="DEFAULT")
    except Exception as error:  # a failed download (no network) or a damaged cached file
        if checkpoint.exists():
            raise ValueError(f"the cached checkpoint {checkpoint} could not be loaded into {arch_name(arch)} "
                             f"({type(error).__name__}: {str(error)[:200]}); delete it so that it is downloaded "
                             "again, or pass pretrained=False") from error
        raise FileNotFoundError(
            f"pretrained weights for {arch_name(arch)} are not in the torch hub cache and could not be "
            f"downloaded ({type(error).__name__}: {str(error)[:200]}); place the checkpoint at {checkpoint} "
            "(set TORCH_HOME to use another cache), or pass pretrained=False") from error
