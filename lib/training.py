"""Training knobs, one callback or one function each: gradient accumulation, gradient clipping,
channels-last memory format, ``torch.compile``, and frozen BatchNorm layers kept in eval mode.

>>> learn.fit_one_cycle(3, 1e-3, cbs=[GradientAccumulation(n_acc=64), GradientClip(1.0)])   # doctest: +SKIP
>>> learn.to_channels_last().compile()                                                       # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch
from torch import nn

from fastlearn.callback import Callback, CancelBatchException
from fastlearn.foundation import listify
from fastlearn.optimizer import check_hyper
from fastlearn.precision import MixedPrecision
from fastlearn.schedule import check_schedule_args

_BN_TYPES = (nn.modules.batchnorm._BatchNorm,)


def _batch_size(yb: tuple, xb: tuple) -> int:
    for part in (*yb, *xb):
        if isinstance(part, torch.Tensor) and part.ndim > 0:
            return part.shape[0]
    return 1


class GradientAccumulation(Callback):
    """Accumulate gradients over batches until ``n_acc`` samples were seen, then step once.

    The loss of each batch is scaled by ``batch_size / n_acc``, so with a mean-reduced loss and no
    BatchNorm, ``bs=16, n_acc=64`` gives the same updates as ``bs=64``. Samples are counted per
    process. Under DistributedDataParallel, the gradients are only all-reduced on the batches that
    step (the others run under ``model.no_sync()``). The recorded loss is not scaled.

    >>> learn.fit(1, cbs=GradientAccumulation(n_acc=64))   # doctest: +SKIP
    """

    order = 5
    run_valid = False

    def __init__(self, n_acc: int = 32):
        if not isinstance(n_acc, int) or n_acc < 1:
            raise ValueError(f"GradientAccumulation(n_acc={n_acc!r}); expected a positive number of samples")
        self.n_acc = n_acc
        self.count = 0
        self._no_sync: contextlib.AbstractContextManager | None = None

    def before_fit(self):
        self.count = 0

    def before_batch(self):
        batch_size = _batch_size(self.yb, self.xb)
        steps_now = self.count + batch_size >= self.n_acc
        no_sync = getattr(self.model, "no_sync", None)
        if not steps_now and callable(no_sync):
            self._no_sync = no_sync()
            self._no_sync.__enter__()

    def after_loss(self):
        if self.loss_grad is not None:
            self.learn.loss_grad = self.loss_grad * (_batch_size(self.yb, self.xb) / self.n_acc)

    def before_step(self):
        self.count += _batch_size(self.yb, self.xb)
        if self.count < self.n_acc:
            # keep the gradients: no step and no zero_grad for this batch
            raise CancelBatchException()
        self.count = 0

    def after_batch(self):
        if self._no_sync is not None:
            context, self._no_sync = self._no_sync, None
            context.__exit__(None, None, None)

    def cleanup(self):
        self.after_batch()  # a batch that raised leaves no model.no_sync() context open


class GradientClip(Callback):
    """Clip the gradients' norm to ``max_norm`` before each optimizer step (``norm_type``: the p of
    the p-norm). Under float16 mixed precision the gradients are unscaled first.

    >>> learn.fit(1, cbs=GradientClip(max_norm=1.0))   # doctest: +SKIP
    """

    order = 8
    run_valid = False
    run_after = GradientAccumulation
    run_before = MixedPrecision

    def __init__(self, max_norm: float = 1.0, norm_type: float = 2.0):
        if max_norm <= 0:
            raise ValueError(f"GradientClip(max_norm={max_norm!r}); expected a positive norm")
        self.max_norm, self.norm_type = max_norm, norm_type
        self.last_norm: float | None = None

    def before_step(self):
        mixed = getattr(self.learn, "mixed_precision", None)
        if isinstance(mixed, MixedPrecision):
            mixed.unscale()
        params = [p for group in self.opt.param_groups for p in group["params"] if p.grad is not None]
        norm = nn.utils.clip_grad_norm_(params, self.max_norm, norm_type=self.norm_type)
        self.last_norm = float(norm)


BN_SCOPES = ("frozen", "body")


class BnFreeze(Callback):
    """Keep BatchNorm running statistics fixed while training: the chosen BatchNorm layers
    normalise with their stored mean and variance (inference mode) and do not update them. Their
    scale and shift still train wherever their parameter group trains (``train_bn``).

    ``scope="frozen"``: the layers of the parameter groups that are frozen now (after
    ``freeze()``, the whole body; after ``unfreeze()``, none). ``scope="body"``: the layers of every
    group but the last, frozen or not, so a pretrained body keeps its statistics for the whole of
    ``fine_tune``. ``vision_learner`` and ``unet_learner`` add ``BnFreeze("body")`` for pretrained
    models (their ``keep_bn_stats`` argument): on small or unlike data, statistics of a few
    batches are noisy, and training with them then validating with the running averages was the
    largest loss of accuracy in fine-tuning (see docs/transfer.md).

    >>> learn = Learner(dls, model, cbs=BnFreeze())   # doctest: +SKIP
    """

    order = 1  # after TrainEvalCallback has put the model in training mode

    def __init__(self, scope: str = "frozen"):
        if scope not in BN_SCOPES:
            raise ValueError(f"BnFreeze(scope={scope!r}); expected one of {BN_SCOPES}: 'frozen' for the "
                             "groups frozen now, 'body' for every group but the last")
        self.scope = scope

    def before_train(self):
        kept = {id(p) for group in self._kept_groups() for p in group}
        for module in self.model.modules():
            if isinstance(module, _BN_TYPES):
                params = list(module.parameters(recurse=False))
                if params and all(id(p) in kept for p in params):
                    module.eval()

    def _kept_groups(self) -> list[list[nn.Parameter]]:
        groups = self.learn.param_groups()
        if self.scope == "body":
            return groups[:-1]
        return [group for group in groups if not _group_trains(group)]


FEW_IMAGES, MANY_IMAGES = 2000, 3500
"""Images seen by ``fine_tune``'s unfrozen phase (epochs times the training set) up to which
:func:`body_lr_mult` keeps fastai's ``lr_mult`` of 100, and from which it gives 3."""


def body_lr_mult(n_images: int | None) -> float:
    """``fine_tune``'s default ``lr_mult`` (the head's rate over the first body group's) when the
    unfrozen phase sees ``n_images`` training images in all: 100 up to ``FEW_IMAGES``, 3 from
    ``MANY_IMAGES``, geometric in between; 100 when the number is unknown.

    A few hundred images seen a few times move a pretrained body by noise more than by signal, so
    its rates stay low; with more images the body has the evidence to adapt to data unlike its
    pretraining (``docs/transfer.md``: on Fashion-MNIST × 1,000, 20,000 images seen, error 0.108 at
    100 and 0.096 at 3; on the multi-label canvases, 4,480 seen, accuracy 0.857 and 0.895; on
    ``make demo``'s Fashion-MNIST, 2,976 seen, 0.137 at 43 and 0.125 at 10, medians of 5 seeds;
    MNIST × 50, 1,344 seen, is best at 100).

    >>> body_lr_mult(800), body_lr_mult(20000)
    (100.0, 3.0)
    """
    if n_images is None or n_images <= FEW_IMAGES:
        return 100.0
    if n_images >= MANY_IMAGES:
        return 3.0
    position = math.log(n_images / FEW_IMAGES) / math.log(MANY_IMAGES / FEW_IMAGES)
    return 100.0 * (3.0 / 100.0) ** position


def images_per_epoch(dl) -> int | None:
    """The images one epoch of ``dl`` gives (batches times batch size), or None for a loader
    without a length or batch size."""
    try:
        return len(dl) * int(dl.bs)
    except (TypeError, AttributeError):
        return None


def default_lr_mult(learn, epochs: int) -> float:
    """:func:`body_lr_mult` of the images ``learn.fine_tune(epochs)``'s unfrozen phase sees
    (``epochs`` times an epoch of the training loader)."""
    per_epoch = images_per_epoch(learn.dls.train)
    return body_lr_mult(None if per_epoch is None else epochs * per_epoch)


def default_clean_epochs(epochs: int) -> int:
    """``fine_tune``'s default ``clean_epochs``: the later half of the unfrozen phase, rounded up,
    trains on clean images; a single unfrozen epoch stays augmented (the model would otherwise
    never see the augmentation). The earlier augmented epochs still regularise; the clean ones fit
    the images as they are scored (``docs/transfer.md``: MNIST × 50, 3 epochs, 0.148 → 0.130 with
    two clean instead of one; no measured row lost).

    >>> [default_clean_epochs(n) for n in (1, 2, 3, 4, 10)]
    [0, 1, 2, 2, 5]
    """
    return (epochs + 1) // 2 if epochs >= 2 else 0


def fine_tune(learn, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1, lr_mult: float | None = None,
              pct_start: float = 0.3, div: float = 5.0, wd: float | None = None, cbs=None,
              clean_epochs: int | None = None) -> None:
    """``learn.fine_tune``: ``freeze_epochs`` of one-cycle on the head with the body frozen, then
    unfreeze and train ``epochs`` with discriminative rates ``slice(base_lr/2/lr_mult, base_lr/2)``.

    ``lr_mult`` None: ``learn.default_lr_mult(epochs)``, from the number of images the unfrozen
    phase sees (:func:`body_lr_mult`): 100 (fastai's) up to 2,000, so a body shown a few hundred
    images stays near its pretrained features, falling to 3 from 3,500, where there is the
    evidence to adapt it to the data.

    The last ``clean_epochs`` of the unfrozen phase train without the training-only transforms
    (:class:`CleanEpochs`); None: :func:`default_clean_epochs` (the later half, rounded up, when
    ``epochs >= 2``; none for a single epoch); 0 keeps augmenting to the end (fastai's ``fine_tune``).
    """
    # both phases' arguments are checked before the first: a bad one would stop fine_tune after
    # the frozen phase had changed the weights
    for name, value in (("epochs", epochs), ("freeze_epochs", freeze_epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}={value!r}; expected a non-negative int; nothing was changed")
    check_hyper("lr", base_lr, positive=True)
    if wd is not None:
        check_hyper("wd", wd)
    if lr_mult is not None and not (isinstance(lr_mult, (int, float)) and math.isfinite(lr_mult) and lr_mult > 0):
        raise ValueError(f"lr_mult={lr_mult!r}; expected a finite number > 0 (the body's learning rate is the head's "
                         "divided by it), or None for the default; nothing was changed")
    check_schedule_args(pct_start, div=div)
    if clean_epochs is None:
        clean_epochs = default_clean_epochs(epochs)
    if lr_mult is None:
        lr_mult = learn.default_lr_mult(epochs)
    learn.freeze()
    if freeze_epochs:
        learn.fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99, wd=wd, cbs=cbs)
    base_lr /= 2
    learn.unfreeze()
    extra = [CleanEpochs(clean_epochs)] if clean_epochs else []
    learn.fit_one_cycle(epochs, slice(base_lr / lr_mult, base_lr), pct_start=pct_start, div=div, wd=wd,
                        cbs=extra + listify(cbs))


class CleanEpochs(Callback):
    """Train the last ``n`` epochs of each fit without the training-only transforms: the training
    loader runs as the validation loader does (``split_idx=1``: no random flips, warps, lighting or
    random crops; the validation-time resize or crop instead), still shuffled. A model trained on
    augmented images only is scored on clean ones; finishing on clean images closes that gap (He et
    al., 2019, "Data Augmentation Revisited"). ``fine_tune`` adds it to its unfrozen phase
    (``clean_epochs``; measured in docs/transfer.md). The loader is put back after the fit, whatever
    ends it.

    >>> learn.fit_one_cycle(4, 1e-3, cbs=CleanEpochs(1))   # doctest: +SKIP
    """

    order = 0  # before the epoch's first batch is drawn

    def __init__(self, n: int = 1):
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"CleanEpochs(n={n!r}); expected a non-negative int (epochs at the end of the fit)")
        self.n, self._saved = n, None

    def before_epoch(self):
        loader = self.learn.dls.train
        if not hasattr(loader, "split_idx"):  # a loader without training-only transforms
            return
        if self._saved is None:
            self._saved = (loader, loader.split_idx)
        clean = self.n > 0 and self.learn.epoch >= self.learn.n_epoch - self.n
        loader.split_idx = 1 if clean else self._saved[1]

    def cleanup(self):
        if self._saved is not None:
            loader, split_idx = self._saved
            if loader.split_idx != split_idx:
                loader.split_idx = split_idx
            self._saved = None


def _group_trains(group: list[nn.Parameter]) -> bool:
    """Whether a parameter group trains: any of its weights (more than one dimension, so not a
    norm layer's scale kept trainable by ``train_bn``, nor a bias) requires a gradient."""
    weights = [p for p in group if p.ndim > 1]
    return any(p.requires_grad for p in (weights or group))


class ChannelsLast(Callback):
    """Turn 4-d input batches to the channels-last memory format (added by ``to_channels_last``)."""

    def before_batch(self):
        self.learn.xb = tuple(x.contiguous(memory_format=torch.channels_last)
                              if isinstance(x, torch.Tensor) and x.ndim == 4 else x for x in self.xb)


def to_channels_last(learn) -> None:
    """Put the model's weights and every 4-d input batch in the channels-last memory format
    (faster convolutions with mixed precision on recent GPUs).

    >>> to_channels_last(learn)       # doctest: +SKIP
    >>> learn.channels_last           # doctest: +SKIP
    ChannelsLast
    """
    learn.model.to(memory_format=torch.channels_last)
    if not any(isinstance(cb, ChannelsLast) for cb in learn.cbs):
        learn.add_cb(ChannelsLast())


def compile_model(learn, mode: str | None = None, fullgraph: bool = False, dynamic: bool | None = None,
                  backend: str | Callable = "inductor") -> None:
    """Compile ``learn.model`` with ``torch.compile``, in place (``nn.Module.compile``): the model
    object, its parameters and its ``state_dict`` keys stay the same, so the optimizer, freezing,
    discriminative learning rates and checkpoints keep working.

    ``mode``: None, "default", "reduce-overhead", "max-autotune"...; ``backend``: "inductor"
    (needs a C++ compiler on a CPU), "aot_eager", "eager" (no code generation) or a callable.

    >>> compile_model(learn, mode="max-autotune")   # doctest: +SKIP
    """
    if not isinstance(learn.model, nn.Module):
        raise TypeError(f"learn.model is a {type(learn.model).__name__}; compile_model needs an nn.Module")
    if backend != "inductor" and mode is not None:
        raise ValueError(f"mode={mode!r} only applies to the 'inductor' backend, got backend={backend!r}; "
                         "pass mode=None or backend='inductor'")
    learn.model.compile(mode=mode, fullgraph=fullgraph, dynamic=dynamic, backend=backend)
