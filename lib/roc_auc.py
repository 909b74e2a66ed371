"""Area under the ROC curve, computed once over the whole validation set from the ranks of the
scores (ties count half): ``RocAuc`` (single-label, one class against the rest), ``RocAucBinary``
(two classes) and ``RocAucMulti`` (multi-label). They need no scikit-learn and agree with its
``roc_auc_score``; a class whose targets are all positive or all negative has no AUC and is left
out of the average (a value of None when none is left), so a few validation batches of one class
do not stop a run.

>>> round(_binary_auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])), 4)
0.75
"""
from __future__ import annotations

import functools

import torch

from fastlearn.metric_base import AccumMetric, ActivationType


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks of ``x``, ties sharing the average of their ranks."""
    order = x.argsort()
    _, inverse, counts = torch.unique_consecutive(x[order], return_inverse=True, return_counts=True)
    last = counts.cumsum(0).double()
    ranks = torch.empty(len(x), dtype=torch.float64)
    ranks[order] = (last - (counts - 1) / 2)[inverse]
    return ranks


def _binary_auc(scores: torch.Tensor, positive: torch.Tensor) -> float | None:
    """The probability that a positive scores above a negative (ties count half); None with one class."""
    positive = positive.bool()
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(scores.double())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _auc_over_labels(scores: torch.Tensor, positives: torch.Tensor, average: str | None):
    """AUC per label column (labels with one class only are left out), averaged."""
    if average == "micro":
        return _binary_auc(scores.reshape(-1), positives.reshape(-1))
    per_label = [_binary_auc(scores[:, i], positives[:, i]) for i in range(scores.shape[1])]
    support = positives.sum(0).double()
    kept = [(auc, float(support[i])) for i, auc in enumerate(per_label) if auc is not None]
    if average is None:
        return per_label
    if not kept:
        return None
    if average == "weighted":
        total = sum(weight for _, weight in kept)
        return sum(auc * weight for auc, weight in kept) / total
    return sum(auc for auc, _ in kept) / len(kept)


def _auc_multiclass(scores: torch.Tensor, targs: torch.Tensor, average: str | None):
    one_hot = torch.nn.functional.one_hot(targs.long(), scores.shape[-1])
    return _auc_over_labels(scores, one_hot, average)


def _auc_binary(scores: torch.Tensor, targs: torch.Tensor):
    if scores.ndim == 2 and scores.shape[1] == 2:
        scores = scores[:, 1] - scores[:, 0]  # ranks the items as the softmax of class 1 does
    return _binary_auc(scores.reshape(len(targs), -1)[:, -1], targs.reshape(-1))


_AUC_AVERAGES = ("macro", "weighted", "micro", None)


def _check_auc_average(average):
    if average not in _AUC_AVERAGES:
        raise ValueError(f"average={average!r} is not one of {_AUC_AVERAGES}; pass one of them")


class RocAuc(AccumMetric):
    """Area under the ROC curve of a single-label classifier, one class against the rest, averaged
    over the classes (``average``: "macro", "weighted" by support, "micro", or None for one value
    per class). Classes that the targets hold only as positives or only as negatives are left
    out; with none left the value is None. Computed once over the whole set.

    >>> from types import SimpleNamespace
    >>> m = RocAuc(); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.tensor([[3., 1, 0], [0, 2., 1], [1, 0, 2.], [2., 1, 0]]),
    ...                              yb=(torch.tensor([1, 1, 2, 0]),)))
    >>> round(m.value, 4)  # class 0: 2/3, class 1: 3/4, class 2: 1
    0.8056
    """

    def __init__(self, axis: int = -1, average: str | None = "macro"):
        _check_auc_average(average)
        super().__init__(functools.partial(_auc_multiclass, average=average), activation=ActivationType.Softmax,
                         dim_argmax=axis, flatten=False, name="roc_auc_score")


class RocAucBinary(AccumMetric):
    """Area under the ROC curve of a two-class model: two class scores per item (class 1 is the
    positive one) or one logit; None when the targets hold one class only.

    >>> from types import SimpleNamespace
    >>> m = RocAucBinary(); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.tensor([[0., 1.], [1., 0.], [0., 2.]]), yb=(torch.tensor([1, 0, 0]),)))
    >>> m.value
    0.5
    """

    def __init__(self, axis: int = -1):
        if axis not in (-1, 1):
            raise ValueError(f"axis={axis!r}; RocAucBinary reads the class scores on the last axis (-1)")
        super().__init__(_auc_binary, flatten=False, name="roc_auc_score")


class RocAucMulti(AccumMetric):
    """Area under the ROC curve of a multi-label classifier (one logit per label), averaged over
    the labels that hold both classes; ``average`` as in :class:`RocAuc`.

    >>> from types import SimpleNamespace
    >>> m = RocAucMulti(); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.tensor([[2., 0.], [0., 2.], [1., 1.]]),
    ...                              yb=(torch.tensor([[1, 0], [0, 1], [0, 1]]),)))
    >>> m.value  # label 0: 1, label 1: 1
    1.0
    """

    def __init__(self, average: str | None = "macro"):
        _check_auc_average(average)
        super().__init__(functools.partial(_auc_over_labels, average=average), flatten=False, name="roc_auc_score")

