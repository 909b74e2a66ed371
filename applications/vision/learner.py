"""Transfer learning for images: a pretrained body, a new head, a Learner that fine-tunes them.

>>> from torchvision.models import resnet18
>>> model = vision_model(resnet18, n_out=3, pretrained=False)
>>> model(torch.zeros(2, 3, 64, 64)).shape
torch.Size([2, 3])
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

from fastlearn.data.batch_transforms import Normalize
from fastlearn.foundation import listify
from fastlearn.learner import Learner, learner_kwargs
from fastlearn.registry import code_from_name, dotted_path, register_code
from fastlearn.training import BnFreeze
from fastlearn.vision.layers import AdaptiveConcatPool2d, Flatten, SigmoidRange
from fastlearn.vision.models import arch_meta, arch_name, pretrained_model, resolve_arch
from fastlearn.vision.probe_init import ProbeInit, linear_head_parts


def _first_conv(model: nn.Module) -> tuple[nn.Module, str, nn.Conv2d]:
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                return parent, name, child
    raise ValueError(f"{type(model).__name__} has no nn.Conv2d to adapt to n_in channels; pass n_in=3")


def adapt_input_channels(model: nn.Module, n_in: int) -> nn.Module:
    """Make the first convolution take ``n_in`` channels, in place.

    The new kernel is the mean of the old one over its input channels, repeated ``n_in`` times and
    scaled by ``in_channels / n_in``: an image whose channels are all equal gives the same output as
    before, so pretrained features still apply to greyscale or multispectral input.

    >>> conv = nn.Sequential(nn.Conv2d(3, 4, 3))
    >>> adapt_input_channels(conv, 1)[0].weight.shape
    torch.Size([4, 1, 3, 3])
    """
    if not isinstance(n_in, int) or n_in < 1:
        raise ValueError(f"n_in={n_in!r}; expected a positive number of input channels")
    parent, name, conv = _first_conv(model)
    if conv.in_channels == n_in:
        return model
    if conv.groups != 1:
        raise ValueError(f"the first convolution of {type(model).__name__} is grouped (groups={conv.groups}); "
                         f"n_in={n_in} cannot be adapted; pass n_in={conv.in_channels}")
    new_conv = copy.deepcopy(conv)
    with torch.no_grad():
        weight = conv.weight.mean(dim=1, keepdim=True).repeat(1, n_in, 1, 1) * (conv.in_channels / n_in)
    new_conv.weight = nn.Parameter(weight)
    new_conv.in_channels = n_in
    setattr(parent, name, new_conv)
    return model


def _instantiate(arch: Callable | str, pretrained: bool) -> tuple[nn.Module, dict]:
    arch = resolve_arch(arch)
    model = pretrained_model(arch) if pretrained else arch()
    return model, arch_meta(arch)


def _cut_model(model: nn.Module, cut: int | Callable | None) -> nn.Sequential:
    if callable(cut):
        return cut(model)
    children = list(model.children())
    if cut is None:
        pools = [i for i, child in enumerate(children)
                 if isinstance(child, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, AdaptiveConcatPool2d))]
        if not pools:
            raise ValueError(f"could not find where to cut {type(model).__name__} (no adaptive pooling child); "
                             "pass cut= as a child index such as -2, or a function model -> nn.Sequential")
        cut = pools[-1]
    if not isinstance(cut, int):
        raise TypeError(f"cut={cut!r}; expected an int child index, a function model -> body, or None")
    return nn.Sequential(*children[:cut])


def create_body(model_or_arch: nn.Module | Callable | str, n_in: int = 3, pretrained: bool = True,
                cut: int | Callable | None = None) -> nn.Sequential:
    """The convolutional body of an architecture (a constructor like ``resnet34``, its name, or a model).

    ``cut`` defaults to the architecture's entry in ``model_meta``, else the last adaptive pooling
    child. ``n_in != 3`` adapts the first convolution (see :func:`adapt_input_channels`).

    >>> from torchvision.models import resnet18
    >>> body = create_body(resnet18, pretrained=False, cut=-2)
    >>> body(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 512, 2, 2])
    """
    if isinstance(model_or_arch, nn.Module):
        model, meta_cut = model_or_arch, None
    else:
        model, meta = _instantiate(model_or_arch, pretrained)
        meta_cut = meta["cut"]
    if isinstance(cut, str):
        cut = code_from_name(cut, "cut")
    body = _cut_model(model, cut if cut is not None else meta_cut)
    if n_in != 3:
        adapt_input_channels(body, n_in)
    return body


def num_features(body: nn.Module, n_in: int = 3) -> int:
    """Channels of the feature map ``body`` outputs: its own ``num_features`` when it has one (a
    timm body), else found by running a small dummy batch.

    >>> num_features(nn.Sequential(nn.Conv2d(3, 7, 3)))
    7
    """
    given = getattr(body, "num_features", None)  # a body that knows (a timm model's)
    if isinstance(given, int):
        return given
    was_training = body.training
    body.eval()
    try:
        param = next(body.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        with torch.no_grad():
            out = body(torch.zeros(1, n_in, 64, 64, device=device))
    finally:
        body.train(was_training)
    return out.shape[1]


def create_head(nf: int, n_out: int, lin_ftrs: Sequence[int] | None = None, ps: float | Sequence[float] = 0.5,
                pool: bool = True, concat_pool: bool = True, first_bn: bool = True, bn_final: bool = False,
                lin_first: bool = False, y_range: tuple[float, float] | None = None) -> nn.Sequential:
    """A classifier head for a feature map of ``nf`` channels: pool, flatten, then BatchNorm-Dropout-Linear
    blocks with ReLU between them (``lin_ftrs`` hidden sizes, default ``[512]``).

    ``concat_pool`` concatenates max and average pooling (doubling the features). ``ps`` is the
    dropout of the last block; the earlier blocks get half of it unless a list is given.
    ``y_range=(low, high)`` ends with a ``SigmoidRange`` for regression.

    >>> head = create_head(512, 10)
    >>> head(torch.zeros(4, 512, 2, 2)).shape, type(head[-1]).__name__
    (torch.Size([4, 10]), 'Linear')
    """
    if pool and concat_pool:
        nf = nf * 2
    sizes = [nf] + (list(lin_ftrs) if lin_ftrs is not None else [512]) + [n_out]
    n_blocks = len(sizes) - 1
    if isinstance(ps, (int, float)):
        dropouts = [ps / 2] * (n_blocks - 1) + [ps]
    else:
        dropouts = list(ps)
        if len(dropouts) != n_blocks + (1 if lin_first else 0) and len(dropouts) != n_blocks:
            raise ValueError(f"ps={ps!r} has {len(dropouts)} values for {n_blocks} linear layers; "
                             "pass one dropout per layer, or a single float")
    layers: list[nn.Module] = []
    if pool:
        layers += [AdaptiveConcatPool2d() if concat_pool else nn.AdaptiveAvgPool2d(1), Flatten()]
    for i, (n_from, n_to, dropout) in enumerate(zip(sizes[:-1], sizes[1:], dropouts)):
        is_last = i == n_blocks - 1
        use_bn = first_bn if i == 0 else True
        block: list[nn.Module] = []
        if use_bn:
            block.append(nn.BatchNorm1d(n_from))
        if dropout:
            block.append(nn.Dropout(dropout))
        linear = nn.Linear(n_from, n_to, bias=not (use_bn and lin_first))
        block = [linear] + block if lin_first else block + [linear]
        if not is_last:
            block.append(nn.ReLU(inplace=True))
        layers += block
    if bn_final:
        layers.append(nn.BatchNorm1d(n_out, momentum=0.01))
    if y_range is not None:
        layers.append(SigmoidRange(*y_range))
    return nn.Sequential(*layers)


def _init_head(head: nn.Module, init: Callable | None) -> None:
    if init is None:
        return
    for module in head.modules():
        if isinstance(module, nn.Linear):
            init(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def vision_model(arch: Callable | str, n_out: int, pretrained: bool = True, cut: int | Callable | None = None,
                 n_in: int = 3, init: Callable | None = nn.init.kaiming_normal_, concat_pool: bool = True,
                 pool: bool = True, lin_ftrs: Sequence[int] | None = None, ps: float | Sequence[float] = 0.5,
                 first_bn: bool = True, bn_final: bool = False, lin_first: bool = False,
                 y_range: tuple[float, float] | None = None) -> nn.Sequential:
    """``nn.Sequential(create_body(arch), create_head(...))``: what ``vision_learner`` trains.

    >>> model = vision_model("efficientnet_lite0", n_out=2, pretrained=False)
    >>> isinstance(model[1][-1], nn.Linear), model[1][-1].out_features
    (True, 2)
    """
    body = create_body(arch, n_in=n_in, pretrained=pretrained, cut=cut)
    nf = num_features(body, n_in=n_in)
    head = create_head(nf, n_out, lin_ftrs=lin_ftrs, ps=ps, pool=pool, concat_pool=concat_pool,
                       first_bn=first_bn, bn_final=bn_final, lin_first=lin_first, y_range=y_range)
    _init_head(head, init)
    return nn.Sequential(body, head)


def describe_arch(arch: Callable | str) -> str:
    """The name an export records for ``arch``: a registered name, else its importable dotted path.

    >>> from torchvision.models import resnet18
    >>> describe_arch(resnet18), describe_arch("efficientnet_lite0")
    ('resnet18', 'efficientnet_lite0')
    """
    if isinstance(arch, str):
        return arch
    name = arch_name(arch)
    if _is_known_name(name) and resolve_arch(name) == arch:
        return name
    path = dotted_path(arch)
    if path is None:
        raise ValueError(f"arch {arch!r} has no importable name, so an export could not rebuild it; define "
                         "it at the top level of an importable module (not __main__ or a lambda)")
    return path


def _is_known_name(name: str) -> bool:
    try:
        resolve_arch(name)
    except ValueError:
        return False
    return True


def describe_cut(cut) -> int | str | None:
    """``cut`` as an export records it: None, an int, or the dotted path of a cut function.

    >>> describe_cut(-2)
    -2
    """
    if cut is None or isinstance(cut, int):
        return cut
    path = dotted_path(cut)
    if path is None:
        raise ValueError(f"cut={cut!r} is a function without an importable name; an export could not rebuild "
                         "the body. Define it at the top level of a module, or pass an int child index")
    return path


def vision_model_spec(arch: Callable | str, n_out: int, cut, n_in: int, concat_pool: bool, pool: bool,
                      lin_ftrs, ps, first_bn: bool, bn_final: bool, lin_first: bool, y_range) -> dict:
    """The declarative description of a :func:`vision_model` that ``fastlearn.export`` records:
    a dotted builder path and JSON-able arguments (weights are stored separately).

    >>> vision_model_spec("resnet18", 2, None, 3, True, True, None, 0.5, True, False, False, None)["builder"]
    'fastlearn.vision.learner.vision_model'
    """
    return {"builder": "fastlearn.vision.learner.vision_model",
            "args": {"arch": describe_arch(arch), "n_out": n_out, "pretrained": False, "cut": describe_cut(cut),
                     "n_in": n_in, "init": None, "concat_pool": concat_pool, "pool": pool,
                     "lin_ftrs": list(lin_ftrs) if lin_ftrs is not None else None,
                     "ps": ps if isinstance(ps, (int, float)) else list(ps), "first_bn": first_bn,
                     "bn_final": bn_final, "lin_first": lin_first,
                     "y_range": list(y_range) if y_range is not None else None}}


def stats_for_channels(stats: tuple[Sequence[float], Sequence[float]], n_in: int) -> tuple[list, list]:
    """``stats`` for ``n_in`` channels: as given when the counts match, else their means repeated
    (greyscale input to an RGB-pretrained model, matching :func:`adapt_input_channels`).

    >>> stats_for_channels(([0.25, 0.5, 0.75], [0.5, 0.25, 0.75]), 1)
    ([0.5], [0.5])
    """
    mean, std = list(stats[0]), list(stats[1])
    if len(mean) == n_in:
        return mean, std
    return [sum(mean) / len(mean)] * n_in, [sum(std) / len(std)] * n_in


def add_normalization(dls, stats: tuple[Sequence[float], Sequence[float]], n_in: int = 3) -> bool:
    """Append ``Normalize.from_stats(*stats)`` to every loader's batch transforms unless one is there.

    Returns whether it was added. ``vision_learner`` calls it for pretrained models.
    """
    stats = stats_for_channels(stats, n_in)
    loaders = [dls[i] for i in range(len(dls))] if hasattr(dls, "__len__") else []
    pipelines = [getattr(dl, "after_batch", None) for dl in loaders]
    if any(t for pipe in pipelines if pipe is not None for t in pipe if isinstance(t, Normalize)):
        return False
    norm = Normalize.from_stats(*stats)
    add = getattr(dls, "add_batch_tfms", None)
    if add is not None:
        add([norm])
        return True
    for dl in loaders:
        if dl.after_batch is None or not hasattr(dl.after_batch, "add"):
            raise TypeError(f"cannot add normalization to a loader whose after_batch is {dl.after_batch!r}; "
                            "pass normalize=False and normalize the images yourself")
        dl.after_batch = dl.after_batch.add([norm])
    return True


def vision_learner(dls, arch: Callable | str, normalize: bool = True, n_out: int | None = None,
                   pretrained: bool = True, splitter: Callable | None = None, cbs=None,
                   cut: int | Callable | None = None, init: Callable | None = None, concat_pool: bool = False,
                   pool: bool = True, lin_ftrs: Sequence[int] | None = (),
                   ps: float | Sequence[float] | None = None, first_bn: bool | None = None, bn_final: bool = False,
                   lin_first: bool = False, y_range: tuple[float, float] | None = None, n_in: int = 3,
                   keep_bn_stats: bool = True, probe_init: bool = True, **learner_args):
    """A Learner fine-tuning ``arch`` (``resnet34``, ``"efficientnet_lite0"``, ...) on images.

    The model is ``nn.Sequential(body, head)``; the splitter gives body groups then the head, and a
    pretrained model starts frozen (only the head trains) until ``unfreeze`` or ``fine_tune``. With ``pretrained`` and ``normalize`` the arch's normalization stats are added to
    the batch transforms. ``learn.model_spec`` describes the model for ``export``.

    The defaults for a pretrained body are the ones that measured best on small data
    (``docs/transfer.md``, ``bench/TRANSFER.md``):

    - the head is linear: average pooling, dropout ``ps``, one ``nn.Linear`` (``lin_ftrs=None``
      gives fastai's two-layer head with BatchNorm, ``concat_pool=True`` its max+average pooling;
      ``first_bn=None`` puts a BatchNorm first only when there are hidden layers);
    - ``probe_init``: before the first training step the linear layer is fitted to the frozen
      body's features of the training images (``ProbeInit``), so fine-tuning starts from a linear
      probe rather than from random weights;
    - ``ps=None``: the head's dropout is fastai's 0.5, except that a probed single-label classifier
      gets it from the probe's L2 strength (``dropout_for_l2``: 0.5 for the strongest, 0.03 for one
      thirty times weaker), chosen on held-out training images; a number fixes it;
    - ``keep_bn_stats``: the body's BatchNorm layers keep their pretrained statistics while
      training (``BnFreeze("body")``); their scale and shift train once the body is unfrozen;
    - ``train_bn=False`` (``Learner``'s default is True): a frozen body is frozen whole, its
      BatchNorm scales and shifts included, as Keras freezes a layer. The frozen phase then trains
      the head on fixed features and no gradient flows through the body, which measured as well as
      training the scales and costs a forward pass instead of a forward and a backward one.
      ``train_bn=True`` is fastai's.

    Every other argument (``loss_func``, ``metrics``, ``lr``, ``wd``, ``opt_func``, ``train_bn``,
    ``moms``, ``wd_bn_bias``, ``device``, ``precision``, ``path``, ``model_dir``... : any of
    ``Learner``'s) goes to ``Learner`` unchanged.

    >>> learn = vision_learner(dls, "efficientnet_lite0", metrics=error_rate)   # doctest: +SKIP
    >>> learn.fine_tune(1)                                                       # doctest: +SKIP
    """
    learner_args = {"train_bn": not pretrained, **learner_kwargs("vision_learner", learner_args)}
    if n_out is None:
        n_out = getattr(dls, "c", None)
        if not n_out:
            raise ValueError("vision_learner could not infer n_out from dls.c; pass n_out= (the number of "
                             "classes or outputs)")
    if first_bn is None:
        first_bn = lin_ftrs is None or len(lin_ftrs) > 0
    meta = arch_meta(arch)
    dropout_from_probe, ps = ps is None, 0.5 if ps is None else ps
    model = vision_model(arch, n_out, pretrained=pretrained, cut=cut, n_in=n_in, init=init,
                         concat_pool=concat_pool, pool=pool, lin_ftrs=lin_ftrs, ps=ps, first_bn=first_bn,
                         bn_final=bn_final, lin_first=lin_first, y_range=y_range)
    if pretrained and normalize:
        add_normalization(dls, meta["stats"], n_in)
    learn = Learner(dls, model, splitter=splitter or meta["split"],
                    cbs=_transfer_callbacks(model[0], model[1], pretrained, keep_bn_stats, probe_init,
                                            dropout_from_probe) + listify(cbs),
                    **learner_args)
    try:
        learn.model_spec = vision_model_spec(arch, n_out, cut, n_in, concat_pool, pool, lin_ftrs, ps, first_bn,
                                             bn_final, lin_first, y_range)
    except ValueError:
        learn.model_spec = None  # not rebuildable from a description (a lambda or a model instance): no export

    if pretrained:
        learn.freeze()
    return learn


def _transfer_callbacks(body: nn.Module, head: nn.Module, pretrained: bool, keep_bn_stats: bool,
                        probe_init: bool, dropout_from_probe: bool = False) -> list:
    """What fine-tuning a pretrained body adds to the loop: ``BnFreeze("body")`` and, for a linear
    head, ``ProbeInit``."""
    if not pretrained:
        return []
    cbs = [BnFreeze("body")] if keep_bn_stats else []
    if probe_init and linear_head_parts(head) is not None:
        cbs.append(ProbeInit(body, head, dropout_from_probe=dropout_from_probe))
    return cbs


cnn_learner = vision_learner


register_code("model", vision_model)  # export files may name it (fastlearn.registry)
