"""Loss functions that flatten their inputs, and know how to turn outputs into predictions.

A ``*Flat`` loss moves the class axis last and flattens, so the same loss serves a classifier
(``(N, C)`` logits, ``(N,)`` targets) and a segmentation model (``(N, C, H, W)`` logits with
``axis=1``, ``(N, H, W)`` targets). ``activation`` turns raw outputs into probabilities and
``decodes`` turns those into labels; the Learner uses them in ``get_preds`` and ``predict``.

>>> loss = CrossEntropyLossFlat(axis=1)
>>> round(loss(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long)).item(), 4)
1.0986
"""
from __future__ import annotations

import copy
import functools
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from fastlearn.registry import register_code

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not one of {_REDUCTIONS}; pass one of them")
    return reduction


class BaseLoss(nn.Module):
    """Wrap ``loss_cls(*args, **kwargs)`` (a torch loss class) so it flattens predictions and targets.

    ``axis`` is the class axis of the predictions (moved last before flattening); ``flatten``
    flattens to ``(-1, C)`` when ``is_2d`` (class scores) or to ``(-1,)`` otherwise; ``floatify``
    turns integer or double targets into float32. ``args`` and ``kwargs`` go to ``loss_cls``.

    >>> loss = BaseLoss(nn.MSELoss, floatify=True, is_2d=False)
    >>> loss(torch.tensor([[1.], [3.]]), torch.tensor([1, 1])).item()
    2.0
    """

    def __init__(self, loss_cls: type, *args, axis: int = -1, flatten: bool = True, floatify: bool = False,
                 is_2d: bool = True, **kwargs):
        super().__init__()
        self.func = loss_cls(*args, **kwargs)
        self.axis, self.flatten, self.floatify, self.is_2d = axis, flatten, floatify, is_2d

    @property
    def reduction(self) -> str:
        """The reduction of the wrapped loss: ``'mean'``, ``'sum'`` or ``'none'`` (one value per item)."""
        return self.func.reduction

    @reduction.setter
    def reduction(self, reduction: str) -> None:
        self.func.reduction = _check_reduction(reduction)

    def with_reduction(self, reduction: str) -> BaseLoss:
        """A copy of this loss with another reduction; this one is unchanged.

        >>> CrossEntropyLossFlat().with_reduction("none")(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long)).shape
        torch.Size([3])
        """
        _check_reduction(reduction)
        new = copy.deepcopy(self)
        new.reduction = reduction
        return new

    def _flat(self, inp: torch.Tensor, targ: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.is_2d and inp.ndim == 2 and targ.ndim == 1 and self.axis in (-1, 1):
            return inp, targ  # already (items, classes) and (items,): nothing to reshape
        same_rank = targ.ndim == inp.ndim
        if inp.ndim > 1 and self.axis not in (-1, inp.ndim - 1):
            inp = inp.movedim(self.axis, -1)
            if same_rank:
                targ = targ.movedim(self.axis, -1)
        if not self.flatten:
            return inp, targ
        if self.is_2d and inp.ndim > 1:
            return inp.reshape(-1, inp.shape[-1]), targ.reshape(-1, targ.shape[-1]) if same_rank else targ.reshape(-1)
        return inp.reshape(-1), targ.reshape(-1)

    def forward(self, inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
        if self.floatify and (not targ.is_floating_point() or targ.dtype == torch.float64):
            targ = targ.float()
        elif targ.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32):
            targ = targ.long()
        for buffer in self.func._buffers.values():  # the loss's own, e.g. class weights
            if buffer is not None and buffer.device != inp.device:
                self.func.to(inp.device)  # class weights follow the model's device
                break
        return self.func(*self._flat(inp, targ))

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """Raw model outputs to the scale predictions are read in (identity here)."""
        return x

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        """Activated outputs to decoded predictions (identity here)."""
        return x

    def extra_repr(self) -> str:
        return f"axis={self.axis}, flatten={self.flatten}, floatify={self.floatify}, is_2d={self.is_2d}"


class CrossEntropyLossFlat(BaseLoss):
    """``nn.CrossEntropyLoss`` with the class scores along ``axis``; activation softmax, decodes argmax.

    >>> loss = CrossEntropyLossFlat()
    >>> loss.decodes(loss.activation(torch.tensor([[1., 3., 2.]])))
    tensor([1])
    """

    def __init__(self, axis: int = -1, weight: torch.Tensor | None = None, ignore_index: int = -100,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(nn.CrossEntropyLoss, axis=axis, weight=weight, ignore_index=ignore_index,
                         reduction=_check_reduction(reduction), label_smoothing=label_smoothing)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(x, dim=self.axis)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        return x.argmax(dim=self.axis)


class BCEWithLogitsLossFlat(BaseLoss):
    """``nn.BCEWithLogitsLoss`` on flattened outputs (multi-label); activation sigmoid, decodes ``> thresh``.

    With ``pos_weight`` (one weight per label) predictions keep their label axis, so targets must
    have the predictions' shape.

    >>> loss = BCEWithLogitsLossFlat()
    >>> loss.decodes(loss.activation(torch.tensor([[2., -2.]])))
    tensor([[ True, False]])
    """

    def __init__(self, axis: int = -1, floatify: bool = True, thresh: float = 0.5, weight: torch.Tensor | None = None,
                 reduction: str = "mean", pos_weight: torch.Tensor | None = None):
        super().__init__(nn.BCEWithLogitsLoss, axis=axis, floatify=floatify, is_2d=pos_weight is not None,
                         weight=weight, reduction=_check_reduction(reduction), pos_weight=pos_weight)
        self.thresh = thresh

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        return x > self.thresh


class BCELossFlat(BaseLoss):
    """``nn.BCELoss`` on flattened outputs: for models that end in a sigmoid themselves (outputs
    are probabilities already); decodes ``> thresh``. A model that outputs raw scores trains more
    stably with :class:`BCEWithLogitsLossFlat`.

    >>> round(BCELossFlat()(torch.tensor([[0.5, 0.5]]), torch.tensor([[1, 0]])).item(), 4)
    0.6931
    """

    def __init__(self, axis: int = -1, floatify: bool = True, thresh: float = 0.5, weight: torch.Tensor | None = None,
                 reduction: str = "mean"):
        super().__init__(nn.BCELoss, axis=axis, floatify=floatify, is_2d=False, weight=weight,
                         reduction=_check_reduction(reduction))
        self.thresh = thresh

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        return x > self.thresh


class MSELossFlat(BaseLoss):
    """``nn.MSELoss`` on flattened outputs, with float targets (regression).

    >>> MSELossFlat()(torch.tensor([[1.], [3.]]), torch.tensor([1, 1])).item()
    2.0
    """

    def __init__(self, axis: int = -1, floatify: bool = True, reduction: str = "mean"):
        super().__init__(nn.MSELoss, axis=axis, floatify=floatify, is_2d=False, reduction=_check_reduction(reduction))


class L1LossFlat(BaseLoss):
    """``nn.L1Loss`` on flattened outputs, with float targets.

    >>> L1LossFlat()(torch.tensor([[1.], [3.]]), torch.tensor([1, 1])).item()
    1.0
    """

    def __init__(self, axis: int = -1, floatify: bool = True, reduction: str = "mean"):
        super().__init__(nn.L1Loss, axis=axis, floatify=floatify, is_2d=False, reduction=_check_reduction(reduction))


class LabelSmoothingCrossEntropy(nn.Module):
    """Cross-entropy against targets smoothed by ``eps``: ``(1 - eps) * nll + eps * mean_c(-log p_c)``.

    Classes are along dim 1 (``(N, C)`` or ``(N, C, ...)``), as in ``nn.CrossEntropyLoss``.

    >>> round(LabelSmoothingCrossEntropy()(torch.zeros(2, 4), torch.tensor([0, 1])).item(), 4)  # log(4)
    1.3863
    """

    def __init__(self, eps: float = 0.1, weight: torch.Tensor | None = None, reduction: str = "mean"):
        super().__init__()
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"eps={eps!r} should be in [0, 1]; 0.1 is the usual smoothing")
        self.eps, self.reduction = eps, _check_reduction(reduction)
        self.register_buffer("weight", weight)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n_classes = output.shape[1]
        log_probs = F.log_softmax(output, dim=1)
        smooth = -log_probs.sum(dim=1) / n_classes
        nll = F.nll_loss(log_probs, target.long(), weight=self.weight, reduction=self.reduction)
        if self.reduction == "mean":
            smooth = smooth.mean()
        elif self.reduction == "sum":
            smooth = smooth.sum()
        return self.eps * smooth + (1 - self.eps) * nll

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax over the class axis."""
        return F.softmax(x, dim=1)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        """The most likely class."""
        return x.argmax(dim=1)


class LabelSmoothingCrossEntropyFlat(BaseLoss):
    """``LabelSmoothingCrossEntropy`` with the class scores along ``axis``, flattened.

    >>> loss = LabelSmoothingCrossEntropyFlat(axis=1)
    >>> loss(torch.zeros(1, 4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long)).shape
    torch.Size([])
    """

    def __init__(self, axis: int = -1, eps: float = 0.1, weight: torch.Tensor | None = None, reduction: str = "mean"):
        super().__init__(LabelSmoothingCrossEntropy, axis=axis, eps=eps, weight=weight, reduction=reduction)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(x, dim=self.axis)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        return x.argmax(dim=self.axis)


class FocalLoss(nn.Module):
    """Focal loss ``-(1 - p_t)**gamma * log(p_t)`` (times the class weight), classes along dim 1.

    >>> round(FocalLoss(gamma=0.)(torch.zeros(1, 2), torch.tensor([0])).item(), 4)  # cross-entropy
    0.6931
    """

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None, reduction: str = "mean"):
        super().__init__()
        self.gamma, self.reduction = gamma, _check_reduction(reduction)
        self.register_buffer("weight", weight)

    def forward(self, inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
        targ = targ.long()
        log_p = F.log_softmax(inp, dim=1).gather(1, targ.unsqueeze(1)).squeeze(1)
        loss = -((1 - log_p.exp()) ** self.gamma) * log_p
        if self.weight is not None:
            loss = loss * self.weight[targ]
        if self.reduction == "mean":
            return loss.mean()
        return loss.sum() if self.reduction == "sum" else loss


class FocalLossFlat(BaseLoss):
    """``FocalLoss`` with the class scores along ``axis``, flattened; activation softmax, decodes argmax.

    >>> FocalLossFlat(gamma=0.)(torch.zeros(2, 2), torch.tensor([0, 1])).item() == F.cross_entropy(torch.zeros(2, 2), torch.tensor([0, 1])).item()
    True
    """

    def __init__(self, gamma: float = 2.0, axis: int = -1, weight: torch.Tensor | None = None, reduction: str = "mean"):
        super().__init__(FocalLoss, axis=axis, gamma=gamma, weight=weight, reduction=reduction)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(x, dim=self.axis)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        return x.argmax(dim=self.axis)


# --- plain torch losses in the Learner --------------------------------------------------------------

def _plain_loss_kind(loss_func: Callable) -> str:
    """What a plain torch loss (module or function) computes: ``'cross_entropy'``, ``'nll'``,
    ``'bce_logits'`` or ``'other'``. The one place that looks at the type of a loss."""
    while isinstance(loss_func, functools.partial):
        loss_func = loss_func.func
    if isinstance(loss_func, nn.CrossEntropyLoss) or loss_func is F.cross_entropy:
        return "cross_entropy"
    if isinstance(loss_func, nn.NLLLoss) or loss_func is F.nll_loss:
        return "nll"
    if isinstance(loss_func, nn.BCEWithLogitsLoss) or loss_func is F.binary_cross_entropy_with_logits:
        return "bce_logits"
    return "other"


def is_cross_entropy(loss_func: Callable) -> bool:
    """Plain cross-entropy over classes: ``CrossEntropyLossFlat``, ``nn.CrossEntropyLoss`` or
    ``F.cross_entropy`` (label smoothing and focal losses are not).

    >>> is_cross_entropy(CrossEntropyLossFlat()), is_cross_entropy(BCEWithLogitsLossFlat())
    (True, False)
    """
    return _plain_loss_kind(loss_func.func if isinstance(loss_func, BaseLoss) else loss_func) == "cross_entropy"


def loss_activation(loss_func: Callable, x: torch.Tensor) -> torch.Tensor:
    """``loss_func.activation(x)`` if the loss has one; softmax over dim 1 for plain cross-entropy,
    ``exp`` for NLL, sigmoid for BCE with logits; otherwise ``x`` unchanged.

    >>> loss_activation(nn.CrossEntropyLoss(), torch.zeros(1, 2))
    tensor([[0.5000, 0.5000]])
    """
    if callable(getattr(loss_func, "activation", None)):
        return loss_func.activation(x)
    kind = _plain_loss_kind(loss_func)
    if kind == "cross_entropy":
        return F.softmax(x, dim=1 if x.ndim > 1 else 0)
    if kind == "nll":
        return x.exp()
    if kind == "bce_logits":
        return torch.sigmoid(x)
    return x


def loss_decodes(loss_func: Callable, x: torch.Tensor) -> torch.Tensor:
    """``loss_func.decodes(x)`` on activated outputs if the loss has one; argmax over dim 1 for plain
    cross-entropy and NLL, ``x > 0.5`` for BCE with logits; otherwise ``x`` unchanged.

    >>> loss_decodes(F.cross_entropy, torch.tensor([[0.2, 0.8]]))
    tensor([1])
    """
    if callable(getattr(loss_func, "decodes", None)):
        return loss_func.decodes(x)
    kind = _plain_loss_kind(loss_func)
    if kind in ("cross_entropy", "nll"):
        return x.argmax(dim=1 if x.ndim > 1 else 0)
    if kind == "bce_logits":
        return x > 0.5
    return x


def data_loss(dls) -> Callable:
    """The loss the data inferred from its target block (``dls.loss_func``); an error without one."""
    loss_func = getattr(dls, "loss_func", None)
    if loss_func is None:
        raise ValueError("no loss_func given and the data does not infer one (dls.loss_func is None); "
                         "pass loss_func=, e.g. CrossEntropyLossFlat() for classification")
    return loss_func


def loss_with_reduction(loss_func: Callable, reduction: str) -> Callable:
    """A copy of ``loss_func`` that reduces with ``reduction`` (``'none'`` gives one loss per item).

    Works for ``BaseLoss``, for torch loss modules with a ``reduction`` attribute and for functions
    that take a ``reduction`` argument (``F.cross_entropy``).

    >>> loss_with_reduction(F.cross_entropy, "none")(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long)).shape
    torch.Size([3])
    """
    _check_reduction(reduction)
    if callable(getattr(loss_func, "with_reduction", None)):
        return loss_func.with_reduction(reduction)
    if hasattr(loss_func, "reduction"):
        new = copy.deepcopy(loss_func)
        new.reduction = reduction
        return new
    if _plain_loss_kind(loss_func) != "other":
        return functools.partial(loss_func, reduction=reduction)
    raise TypeError(
        f"cannot change the reduction of {loss_func!r}: it has no 'reduction' attribute; use a "
        "fastlearn loss (CrossEntropyLossFlat, MSELossFlat, ...) or a torch loss module, or give it a "
        "'reduction' attribute that it honours")


# what export files may name (fastlearn.registry)
for _loss in (CrossEntropyLossFlat, BCEWithLogitsLossFlat, BCELossFlat, MSELossFlat, L1LossFlat, LabelSmoothingCrossEntropy,
              LabelSmoothingCrossEntropyFlat, FocalLoss, FocalLossFlat):
    register_code("loss", _loss)
