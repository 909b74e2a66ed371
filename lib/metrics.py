"""Metrics computed exactly over the whole validation set.

A metric is a small object the Learner resets before validation, feeds every batch through
``accumulate(learn)`` (which reads ``learn.pred``, ``learn.yb`` and ``learn.loss``) and reads once
through ``value``. Plain functions such as ``accuracy`` become an ``AvgMetric`` (a batch-size
weighted average); metrics that do not average over batches (``rmse``, ``F1Score``, ``R2Score``)
keep every prediction and target and compute once.

>>> from types import SimpleNamespace
>>> m = wrap_metric(accuracy); m.reset()
>>> m.accumulate(SimpleNamespace(pred=torch.tensor([[0.1, 0.9], [0.8, 0.2]]), yb=(torch.tensor([1, 1]),)))
>>> m.name, m.value
('accuracy', 0.5)

The machinery (``Metric``, ``AvgMetric``, ``AccumMetric``, ``wrap_metric``) lives in
:mod:`fastlearn.metric_base`, the segmentation metrics (``Dice``, ``DiceMulti``...) in
:mod:`fastlearn.segmentation_metrics` and the ROC AUC metrics in :mod:`fastlearn.roc_auc`; all are
importable from here too. A ``torchmetrics``
metric passed in ``metrics=`` is accumulated over the whole set with its ``update`` / ``compute``.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from fastlearn.metric_base import (AccumMetric, ActivationType, AvgLoss, AvgMetric, AvgSmoothLoss,  # noqa: F401
                                   Metric, Perplexity, TorchMetric, _as_value, flatten_check, wrap_metric)
from fastlearn.roc_auc import RocAuc, RocAucBinary, RocAucMulti  # noqa: F401
from fastlearn.segmentation_metrics import (Dice, DiceMulti, JaccardCoeff, JaccardCoeffMulti,  # noqa: F401
                                            foreground_acc)

# --- classification functions (averaged over batches) -------------------------------------------

def accuracy(inp: torch.Tensor, targ: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """The fraction of items whose argmax along ``axis`` equals the target.

    >>> accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]))
    tensor(0.5000)
    """
    pred, targ = flatten_check(inp.argmax(dim=axis), targ)
    return (pred == targ).float().mean()


def error_rate(inp: torch.Tensor, targ: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """``1 - accuracy``.

    >>> error_rate(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]))
    tensor(0.5000)
    """
    return 1 - accuracy(inp, targ, axis=axis)


def top_k_accuracy(inp: torch.Tensor, targ: torch.Tensor, k: int = 5, axis: int = -1) -> torch.Tensor:
    """The fraction of items whose target is among the ``k`` highest scores along ``axis``.

    >>> top_k_accuracy(torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]), torch.tensor([1, 2]), k=2)
    tensor(0.5000)
    """
    if k > inp.shape[axis]:
        raise ValueError(f"k={k} is more than the {inp.shape[axis]} classes along axis {axis}; pass a smaller k")
    top = inp.topk(k, dim=axis).indices
    return (top == targ.unsqueeze(axis)).any(dim=axis).float().mean()


def accuracy_multi(inp: torch.Tensor, targ: torch.Tensor, thresh: float = 0.5, sigmoid: bool = True) -> torch.Tensor:
    """Multi-label accuracy: the fraction of (item, label) pairs where ``score > thresh`` matches the target.

    >>> accuracy_multi(torch.tensor([[3., -3.], [3., 3.]]), torch.tensor([[1, 0], [0, 1]]))
    tensor(0.7500)
    """
    if sigmoid:
        inp = inp.sigmoid()
    pred, targ = flatten_check(inp > thresh, targ)
    return (pred == targ.bool()).float().mean()


# --- regression -----------------------------------------------------------------------------------

def mse(inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    """Mean squared error.

    >>> mse(torch.tensor([1., 3.]), torch.tensor([1., 1.]))
    tensor(2.)
    """
    inp, targ = flatten_check(inp, targ)
    return F.mse_loss(inp.float(), targ.float())


def mae(inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    """Mean absolute error.

    >>> mae(torch.tensor([1., 3.]), torch.tensor([1., 1.]))
    tensor(1.)
    """
    inp, targ = flatten_check(inp, targ)
    return (inp.float() - targ.float()).abs().mean()


def msle(inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    """Mean squared logarithmic error: the MSE of ``log(1 + x)``.

    >>> import math
    >>> msle(torch.tensor([math.e - 1]), torch.tensor([0.]))
    tensor(1.)
    """
    inp, targ = flatten_check(inp, targ)
    return F.mse_loss(torch.log1p(inp.float()), torch.log1p(targ.float()))


def _rmse(preds: torch.Tensor, targs: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(F.mse_loss(preds.double(), targs.double()))


def _exp_rmspe(preds: torch.Tensor, targs: torch.Tensor) -> torch.Tensor:
    preds, targs = torch.exp(preds.double()), torch.exp(targs.double())
    return torch.sqrt((((targs - preds) / targs) ** 2).mean())


rmse = AccumMetric(_rmse, name="rmse")
rmse.__doc__ = """Root mean squared error over the whole set (not an average of per-batch values)."""

exp_rmspe = AccumMetric(_exp_rmspe, name="exp_rmspe")
exp_rmspe.__doc__ = """Root mean squared percentage error of ``exp(pred)`` against ``exp(targ)`` (log targets)."""


def _r2(preds: torch.Tensor, targs: torch.Tensor) -> float:
    preds, targs = preds.double(), targs.double()
    residual = ((targs - preds) ** 2).sum()
    total = ((targs - targs.mean()) ** 2).sum()
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return (1 - residual / total).item()


class R2Score(AccumMetric):
    """The coefficient of determination ``1 - SS_res / SS_tot`` over the whole set.

    >>> from types import SimpleNamespace
    >>> m = R2Score(); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.tensor([1., 2., 3.]), yb=(torch.tensor([1., 2., 4.]),)))
    >>> round(m.value, 4)
    0.7857
    """

    def __init__(self):
        super().__init__(_r2, name="r2_score")


# --- precision, recall, F-scores, Matthews: computed from counts over the whole set ----------------

_AVERAGES = ("binary", "micro", "macro", "weighted", None)


def _class_counts(preds: torch.Tensor, targs: torch.Tensor, labels: torch.Tensor):
    """Per label: true positives, predicted count and true count."""
    sorted_labels, order = labels.sort()
    counts = []
    for values in (preds[preds == targs], preds, targs):
        index = torch.searchsorted(sorted_labels, values).clamp(max=len(labels) - 1)
        index = index[sorted_labels[index] == values]
        counts.append(torch.bincount(index, minlength=len(labels))[order.argsort()].double())
    return counts


def _fbeta(preds: torch.Tensor, targs: torch.Tensor, beta: float, kind: str, labels: list | None,
           pos_label: int, average: str | None):
    present = torch.unique(torch.cat([preds, targs]))
    if average == "binary":
        if len(present) > 2:
            raise ValueError(
                f"average='binary' needs two classes but the data holds {len(present)} "
                f"({present[:5].tolist()}...); pass average='macro', 'micro' or 'weighted'")
        labels = [pos_label]
    label_tensor = present if labels is None else torch.as_tensor(labels, dtype=present.dtype)
    return _scores_from_counts(*_class_counts(preds, targs, label_tensor), kind=kind, beta=beta, average=average)


def _scores_from_counts(tp: torch.Tensor, predicted: torch.Tensor, actual: torch.Tensor, kind: str, beta: float,
                        average: str | None):
    """Precision, recall or F-beta per label from its true positives, predicted and true counts,
    averaged as in scikit-learn (a label with a zero denominator scores 0)."""
    if average == "micro":
        tp, predicted, actual = tp.sum(0, keepdim=True), predicted.sum(0, keepdim=True), actual.sum(0, keepdim=True)
    if kind == "precision":
        numerator, denominator = tp, predicted
    elif kind == "recall":
        numerator, denominator = tp, actual
    else:  # F-beta from counts: (1 + b2) tp / ((1 + b2) tp + b2 fn + fp) = (1 + b2) tp / (b2 actual + predicted)
        b2 = beta ** 2
        numerator, denominator = (1 + b2) * tp, b2 * actual + predicted
    scores = torch.where(denominator > 0, numerator / denominator.clamp(min=1e-12), torch.zeros_like(numerator))
    if average is None:
        return scores
    if average == "weighted":
        return (scores * actual).sum().item() / actual.sum().item() if actual.sum() > 0 else 0.0
    return scores.mean().item()


class _FScoreMetric(AccumMetric):
    """Shared by the counting metrics: argmax the predictions along ``axis``, keep labels only."""

    def __init__(self, kind: str, beta: float, axis: int, labels: list | None, pos_label: int,
                 average: str | None, name: str):
        if average not in _AVERAGES:
            raise ValueError(f"average={average!r} is not one of {_AVERAGES}; pass one of them")
        func = functools.partial(_fbeta, beta=beta, kind=kind, labels=labels, pos_label=pos_label, average=average)
        super().__init__(func, dim_argmax=axis, name=name)


class Precision(_FScoreMetric):
    """Precision ``tp / (tp + fp)`` of the argmax predictions; ``average`` as in scikit-learn.

    >>> from types import SimpleNamespace
    >>> m = Precision(); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.eye(2)[[1, 1, 0]], yb=(torch.tensor([1, 0, 0]),)))
    >>> m.value
    0.5
    """

    def __init__(self, axis: int = -1, labels: list | None = None, pos_label: int = 1, average: str | None = "binary"):
        super().__init__("precision", 1.0, axis, labels, pos_label, average, "precision_score")


class Recall(_FScoreMetric):
    """Recall ``tp / (tp + fn)`` of the argmax predictions; ``average`` as in scikit-learn.

    >>> from types import SimpleNamespace
    >>> m = Recall(); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.eye(2)[[1, 0, 0]], yb=(torch.tensor([1, 1, 0]),)))
    >>> m.value
    0.5
    """

    def __init__(self, axis: int = -1, labels: list | None = None, pos_label: int = 1, average: str | None = "binary"):
        super().__init__("recall", 1.0, axis, labels, pos_label, average, "recall_score")


class FBeta(_FScoreMetric):
    """The F-beta score of the argmax predictions (``beta > 1`` favours recall).

    >>> from types import SimpleNamespace
    >>> m = FBeta(beta=2); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.eye(2)[[1, 0, 0]], yb=(torch.tensor([1, 1, 0]),)))
    >>> round(m.value, 4)  # 5 * 1 / (5 * 1 + 4 * 1 + 0)
    0.5556
    """

    def __init__(self, beta: float, axis: int = -1, labels: list | None = None, pos_label: int = 1,
                 average: str | None = "binary"):
        if beta <= 0:
            raise ValueError(f"beta={beta!r} should be positive; 1 gives the F1 score")
        super().__init__("fbeta", beta, axis, labels, pos_label, average, "fbeta_score")


class F1Score(_FScoreMetric):
    """The F1 score (harmonic mean of precision and recall) of the argmax predictions.

    >>> from types import SimpleNamespace
    >>> m = F1Score(); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.eye(2)[[1, 0, 0]], yb=(torch.tensor([1, 1, 0]),)))
    >>> round(m.value, 4)
    0.6667
    """

    def __init__(self, axis: int = -1, labels: list | None = None, pos_label: int = 1, average: str | None = "binary"):
        super().__init__("f1", 1.0, axis, labels, pos_label, average, "f1_score")


def _matthews(preds: torch.Tensor, targs: torch.Tensor) -> float:
    labels = torch.unique(torch.cat([preds, targs]))
    correct, predicted, actual = (c.sum() if i == 0 else c for i, c in enumerate(_class_counts(preds, targs, labels)))
    total = actual.sum()
    covariance = correct * total - (predicted * actual).sum()
    denominator = torch.sqrt((total ** 2 - (predicted ** 2).sum()) * (total ** 2 - (actual ** 2).sum()))
    return (covariance / denominator).item() if denominator > 0 else 0.0


class MatthewsCorrCoef(AccumMetric):
    """The Matthews correlation coefficient (multi-class form) of the argmax predictions.

    >>> from types import SimpleNamespace
    >>> m = MatthewsCorrCoef(); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.eye(2)[[1, 0]], yb=(torch.tensor([1, 0]),)))
    >>> m.value
    1.0
    """

    def __init__(self, axis: int = -1):
        super().__init__(_matthews, dim_argmax=axis, name="matthews_corrcoef")


# --- multi-label: counts per label over the whole set ------------------------------------------------

_MULTI_AVERAGES = ("micro", "macro", "weighted", "samples", None)


def _multilabel_fbeta(scores: torch.Tensor, targs: torch.Tensor, kind: str, beta: float, average: str | None,
                      thresh: float, sigmoid: bool):
    """Precision, recall or F-beta of the labels ``score > thresh`` (after a sigmoid when asked)
    against 0/1 targets (items x labels), averaged as in scikit-learn."""
    preds = (torch.sigmoid(scores.float()) if sigmoid else scores) > thresh
    targs = targs.bool()
    axis = 1 if average == "samples" else 0  # "samples": the score of each item, averaged
    counts = ((preds & targs).sum(axis).double(), preds.sum(axis).double(), targs.sum(axis).double())
    return _scores_from_counts(*counts, kind=kind, beta=beta, average="macro" if average == "samples" else average)


class _MultiLabelMetric(AccumMetric):
    """Shared by the multi-label counting metrics: sigmoid (when asked), then ``score > thresh``."""

    def __init__(self, kind: str, beta: float, thresh: float, sigmoid: bool, average: str | None, name: str):
        if average not in _MULTI_AVERAGES:
            raise ValueError(f"average={average!r} is not one of {_MULTI_AVERAGES}; pass one of them")
        func = functools.partial(_multilabel_fbeta, kind=kind, beta=beta, average=average, thresh=thresh,
                                 sigmoid=sigmoid)
        super().__init__(func, flatten=False, name=name)


class PrecisionMulti(_MultiLabelMetric):
    """Multi-label precision of ``sigmoid(score) > thresh``; ``average`` as in scikit-learn.

    >>> from types import SimpleNamespace
    >>> m = PrecisionMulti(); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.tensor([[3., 3.], [-3., 3.]]), yb=(torch.tensor([[1, 0], [0, 1]]),)))
    >>> m.value  # label 0: 1/1, label 1: 1/2
    0.75
    """

    def __init__(self, thresh: float = 0.5, sigmoid: bool = True, average: str | None = "macro"):
        super().__init__("precision", 1.0, thresh, sigmoid, average, "precision_multi")


class RecallMulti(_MultiLabelMetric):
    """Multi-label recall of ``sigmoid(score) > thresh``; ``average`` as in scikit-learn.

    >>> from types import SimpleNamespace
    >>> m = RecallMulti(); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.tensor([[3., -3.], [-3., 3.]]), yb=(torch.tensor([[1, 1], [0, 1]]),)))
    >>> m.value  # label 0: 1/1, label 1: 1/2
    0.75
    """

    def __init__(self, thresh: float = 0.5, sigmoid: bool = True, average: str | None = "macro"):
        super().__init__("recall", 1.0, thresh, sigmoid, average, "recall_multi")


class FBetaMulti(_MultiLabelMetric):
    """Multi-label F-beta of ``sigmoid(score) > thresh``; ``average`` as in scikit-learn.

    >>> FBetaMulti(beta=2).name
    'fbeta_multi'
    """

    def __init__(self, beta: float, thresh: float = 0.5, sigmoid: bool = True, average: str | None = "macro"):
        if beta <= 0:
            raise ValueError(f"beta={beta!r} should be positive; 1 gives the F1 score")
        super().__init__("fbeta", beta, thresh, sigmoid, average, "fbeta_multi")


class F1ScoreMulti(_MultiLabelMetric):
    """Multi-label F1 of ``sigmoid(score) > thresh`` (the course's metric for ``MultiCategoryBlock``).

    >>> from types import SimpleNamespace
    >>> m = F1ScoreMulti(); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.tensor([[3., 3.], [-3., 3.]]), yb=(torch.tensor([[1, 0], [0, 1]]),)))
    >>> round(m.value, 4)  # label 0: 1, label 1: 2/3
    0.8333
    """

    def __init__(self, thresh: float = 0.5, sigmoid: bool = True, average: str | None = "macro"):
        super().__init__("f1", 1.0, thresh, sigmoid, average, "f1_multi")
