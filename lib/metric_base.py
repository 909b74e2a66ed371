"""The metric machinery: ``Metric``, ``AvgMetric``, ``AccumMetric``, ``wrap_metric``, and the
loss meters the Recorder uses (``AvgLoss``, ``AvgSmoothLoss``, ``Perplexity``).

A metric is a small object the Learner resets before validation, feeds every batch through
``accumulate(learn)`` (which reads ``learn.pred``, ``learn.yb`` and ``learn.loss``) and reads once
through ``value``. The concrete metrics (``accuracy``, ``F1Score``...) are in :mod:`fastlearn.metrics`.

>>> from types import SimpleNamespace
>>> m = AvgLoss(); m.reset()
>>> m.accumulate(SimpleNamespace(loss=torch.tensor(2.), yb=(torch.zeros(4),)))
>>> m.value
2.0
"""
from __future__ import annotations

import functools
import math
import re
from typing import Any, Callable

import torch
import torch.nn.functional as F


def _snake_case(name: str) -> str:
    """``'JaccardCoeff'`` -> ``'jaccard_coeff'``, ``'R2Score'`` -> ``'r2_score'``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _func_name(func: Callable) -> str:
    """The name of a function, of the function under a ``functools.partial``, or of a callable's class."""
    while isinstance(func, functools.partial):
        func = func.func
    name = getattr(func, "__name__", None)
    return name if name is not None else _snake_case(type(func).__name__)


def _as_value(x: Any) -> Any:
    """A one-element tensor (or NumPy value) as a Python float; anything else as is."""
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        return x.item()
    if hasattr(x, "item") and getattr(x, "size", None) == 1:
        return x.item()
    return x


def _batch_size(learn) -> int:
    """The number of items in the batch: the first dimension of the first target."""
    if len(learn.yb) == 0:
        raise ValueError("learn.yb is empty; metrics need the targets of the batch (a tuple with at least one tensor)")
    return learn.yb[0].shape[0] if learn.yb[0].ndim > 0 else 1


def flatten_check(inp: torch.Tensor, targ: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten ``inp`` and ``targ`` and check they hold as many elements.

    >>> [t.shape for t in flatten_check(torch.zeros(2, 3), torch.zeros(6))]
    [torch.Size([6]), torch.Size([6])]
    """
    inp, targ = inp.reshape(-1), targ.reshape(-1)
    if inp.numel() != targ.numel():
        raise ValueError(
            f"predictions hold {inp.numel()} values and targets {targ.numel()}; they should match "
            "one to one. For class scores use a metric that takes the argmax (accuracy), or check "
            "the model's output size")
    return inp, targ


class Metric:
    """Base class: ``reset()``, ``accumulate(learn)``, then ``value``; ``name`` names the column.

    >>> class CountItems(Metric):
    ...     def reset(self): self.n = 0
    ...     def accumulate(self, learn): self.n += len(learn.yb[0])
    ...     @property
    ...     def value(self): return self.n
    >>> CountItems().name
    'count_items'
    """

    _name: str | None = None

    def reset(self) -> None:
        """Forget everything accumulated (called before each validation)."""

    def accumulate(self, learn) -> None:
        """Take one batch into account, reading ``learn.pred``, ``learn.yb`` and ``learn.loss``."""

    @property
    def value(self) -> Any:
        """The metric over every batch accumulated since ``reset``."""
        return None

    @property
    def name(self) -> str:
        """The column name: the snake-case class name unless set."""
        return self._name if self._name is not None else _snake_case(type(self).__name__)

    @name.setter
    def name(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class AvgMetric(Metric):
    """The average of ``func(pred, *yb)`` over batches, weighted by batch size.

    >>> from types import SimpleNamespace
    >>> m = AvgMetric(lambda p, t: (p - t).abs().mean()); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.tensor([1., 2.]), yb=(torch.tensor([1., 1.]),)))
    >>> m.accumulate(SimpleNamespace(pred=torch.tensor([4.]), yb=(torch.tensor([1.]),)))
    >>> m.value
    1.3333333730697632
    """

    def __init__(self, func: Callable[..., torch.Tensor], name: str | None = None):
        if not callable(func):
            raise TypeError(f"AvgMetric needs a function f(pred, targ), got {func!r}")
        self.func = func
        self._name = name if name is not None else _func_name(func)
        self.reset()

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def accumulate(self, learn) -> None:
        batch_size = _batch_size(learn)
        result = self.func(learn.pred, *learn.yb)
        if isinstance(result, torch.Tensor):
            result = result.detach().float()
        self.total = self.total + result * batch_size
        self.count += batch_size

    @property
    def value(self) -> float | None:
        return _as_value(self.total / self.count) if self.count else None


class ActivationType:
    """The activations ``AccumMetric`` can apply to predictions before storing them."""

    No = "no"
    Sigmoid = "sigmoid"
    Softmax = "softmax"
    BinarySoftmax = "binary_softmax"


_ACTIVATIONS = (ActivationType.No, ActivationType.Sigmoid, ActivationType.Softmax, ActivationType.BinarySoftmax)


class AccumMetric(Metric):
    """Keep every prediction and target (on the CPU), then compute ``func(preds, targs, **kwargs)`` once.

    ``dim_argmax`` takes the argmax of predictions along that axis; ``activation`` is one of
    ``'no'``, ``'sigmoid'``, ``'softmax'``, ``'binary_softmax'`` (softmax, then the last class);
    ``thresh`` turns predictions into ``pred >= thresh``; ``flatten`` flattens predictions and
    targets; ``to_np`` passes NumPy arrays; ``invert_arg`` calls ``func(targs, preds)`` (the
    scikit-learn order). ``kwargs`` are passed to ``func``.

    >>> from types import SimpleNamespace
    >>> m = AccumMetric(lambda p, t: (p == t).float().mean(), dim_argmax=-1, name="acc"); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.tensor([[0.2, 0.8]]), yb=(torch.tensor([1]),)))
    >>> m.name, m.value
    ('acc', 1.0)
    """

    def __init__(self, func: Callable[..., Any], dim_argmax: int | None = None, activation: str | None = None,
                 thresh: float | None = None, flatten: bool = True, to_np: bool = False, invert_arg: bool = False,
                 name: str | None = None, **kwargs: Any):
        if not callable(func):
            raise TypeError(f"AccumMetric needs a function f(preds, targs), got {func!r}")
        activation = ActivationType.No if activation is None else activation
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is not one of {_ACTIVATIONS}; pass one of them or None")
        self.func, self.dim_argmax, self.activation, self.thresh = func, dim_argmax, activation, thresh
        self.flatten, self.to_np, self.invert_arg, self.kwargs = flatten, to_np, invert_arg, kwargs
        self._name = name if name is not None else _func_name(func)
        self.reset()

    def reset(self) -> None:
        self.preds: list[torch.Tensor] = []
        self.targs: list[tuple[torch.Tensor, ...]] = []

    def _prepare(self, pred: torch.Tensor) -> torch.Tensor:
        axis = -1 if self.dim_argmax is None else self.dim_argmax
        if self.activation in (ActivationType.Softmax, ActivationType.BinarySoftmax):
            pred = F.softmax(pred.float(), dim=axis)
            if self.activation == ActivationType.BinarySoftmax:
                pred = pred.select(axis, -1)
        elif self.activation == ActivationType.Sigmoid:
            pred = torch.sigmoid(pred.float())
        elif self.dim_argmax is not None:
            pred = pred.argmax(dim=self.dim_argmax)
        if self.thresh is not None:
            pred = pred >= self.thresh
        return pred

    def accumulate(self, learn) -> None:
        pred = self._prepare(learn.pred.detach())
        if pred.dtype in (torch.float16, torch.bfloat16):
            pred = pred.float()
        targs = tuple(t.detach() if isinstance(t, torch.Tensor) else torch.as_tensor(t) for t in learn.yb)
        if self.flatten:
            pred, first = flatten_check(pred, targs[0])
            targs = (first, *(t.reshape(-1) for t in targs[1:]))
        self.preds.append(pred.cpu())
        self.targs.append(tuple(t.cpu() for t in targs))

    @property
    def value(self) -> Any:
        if not self.preds:
            return None
        preds = torch.cat(self.preds)
        targs = [torch.cat(parts) for parts in zip(*self.targs)]
        if self.to_np:
            preds, targs = preds.numpy(), [t.numpy() for t in targs]
        args = (*targs, preds) if self.invert_arg else (preds, *targs)
        return _as_value(self.func(*args, **self.kwargs))


def _this_process_only(tensor: torch.Tensor, group=None) -> list[torch.Tensor]:
    """A gather that keeps this process's state: every process already holds the whole validation
    set's predictions (the distributed loop gathers them), so gathering again would count them twice."""
    return [tensor]


def is_torchmetric(obj: Any) -> bool:
    """True for a ``torchmetrics`` metric (anything with ``update``, ``compute`` and ``reset``)."""
    return not isinstance(obj, (Metric, type)) and all(callable(getattr(obj, name, None))
                                                       for name in ("update", "compute", "reset"))


class TorchMetric(Metric):
    """A ``torchmetrics`` metric (``MulticlassAUROC(num_classes=3)``...) fed every validation batch
    with ``update(pred, *targets)`` and read once with ``compute()``, so it covers the whole set.
    It is moved to the predictions' device; under DDP it computes on the predictions the loop
    gathered from every process (its own synchronisation would count them twice, and is off).
    ``wrap_metric`` makes one for any object with ``update`` / ``compute`` / ``reset``.

    >>> from types import SimpleNamespace
    >>> class Count:  # the torchmetrics interface
    ...     def reset(self): self.n = 0
    ...     def update(self, pred, targ): self.n += len(targ)
    ...     def compute(self): return torch.tensor(self.n)
    >>> m = TorchMetric(Count()); m.reset()
    >>> m.accumulate(SimpleNamespace(pred=torch.zeros(3), yb=(torch.zeros(3),)))
    >>> m.name, m.value
    ('count', 3)
    """

    def __init__(self, metric: Any, name: str | None = None):
        if not is_torchmetric(metric):
            raise TypeError(f"TorchMetric needs an object with update, compute and reset (a torchmetrics metric), "
                            f"got {metric!r}")
        self.metric = metric
        if hasattr(metric, "dist_sync_fn"):
            metric.dist_sync_fn = _this_process_only
        self._name = name if name is not None else _snake_case(type(metric).__name__)
        self.updated = False

    def reset(self) -> None:
        self.metric.reset()
        self.updated = False

    def accumulate(self, learn) -> None:
        pred = learn.pred.detach()
        if pred.dtype in (torch.float16, torch.bfloat16):
            pred = pred.float()
        if isinstance(self.metric, torch.nn.Module) and getattr(self.metric, "device", pred.device) != pred.device:
            self.metric.to(pred.device)
        self.metric.update(pred, *(t.detach() if isinstance(t, torch.Tensor) else t for t in learn.yb))
        self.updated = True

    @property
    def value(self) -> Any:
        return _as_value(self.metric.compute()) if self.updated else None


def wrap_metric(metric: Metric | type | Callable) -> Metric:
    """A ``Metric`` from what users put in ``metrics=``: an instance as is, a class instantiated,
    a ``torchmetrics`` metric in a ``TorchMetric``, a function (or ``functools.partial``) wrapped
    in ``AvgMetric``.

    >>> from functools import partial
    >>> def hits(inp, targ, thresh=0.5): return ((inp > thresh) == targ.bool()).float().mean()
    >>> wrap_metric(partial(hits, thresh=0.1)).name
    'hits'
    """
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, type) and issubclass(metric, Metric):
        return metric()
    if is_torchmetric(metric):
        return TorchMetric(metric)
    if callable(metric) and not isinstance(metric, type):
        return AvgMetric(metric)
    raise TypeError(
        f"metric {metric!r} is not a Metric, a Metric class or a function f(pred, targ); "
        "pass e.g. accuracy, F1Score() or AccumMetric(func)")


# --- losses as metrics (used by the Recorder) ---------------------------------------------------

class AvgLoss(Metric):
    """The batch-size weighted mean of ``learn.loss`` (the validation loss).

    >>> from types import SimpleNamespace
    >>> m = AvgLoss(); m.reset()
    >>> m.accumulate(SimpleNamespace(loss=torch.tensor(1.), yb=(torch.zeros(3),)))
    >>> m.accumulate(SimpleNamespace(loss=torch.tensor(3.), yb=(torch.zeros(1),)))
    >>> m.value
    1.5
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def accumulate(self, learn) -> None:
        batch_size = _batch_size(learn)
        self.total = self.total + learn.loss.detach().float().mean() * batch_size
        self.count += batch_size

    @property
    def value(self) -> float | None:
        return _as_value(self.total / self.count) if self.count else None


class AvgSmoothLoss(Metric):
    """The exponential moving average of the loss, debiased: ``avg / (1 - beta**n)`` after ``n`` batches.

    ``smoothed`` holds that value as a tensor on the loss's device, updated with one kernel a batch:
    the debiased average moves towards each loss by ``(1 - beta) / (1 - beta**n)``.

    >>> from types import SimpleNamespace
    >>> m = AvgSmoothLoss(beta=0.5); m.reset()
    >>> for loss in (4., 2.): m.accumulate(SimpleNamespace(loss=torch.tensor(loss), yb=(torch.zeros(1),)))
    >>> round(m.value, 5)  # (0.25 * 4 + 0.5 * 2) / 0.75
    2.66667
    """

    def __init__(self, beta: float = 0.98):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta={beta!r} should be in [0, 1); 0.98 averages over about 50 batches")
        self.beta = beta
        self.reset()

    def reset(self) -> None:
        self.count, self.smoothed = 0, None

    def accumulate(self, learn) -> None:
        self.count += 1
        loss = learn.loss.detach().float()
        loss = loss if loss.ndim == 0 else loss.mean()
        if self.count == 1:
            self.smoothed = loss
        else:
            self.smoothed = torch.lerp(self.smoothed, loss, (1 - self.beta) / (1 - self.beta ** self.count))

    @property
    def value(self) -> float | None:
        return _as_value(self.smoothed) if self.count else None


class Perplexity(AvgLoss):
    """``exp`` of the average validation loss (for language models).

    >>> from types import SimpleNamespace
    >>> m = Perplexity(); m.reset()
    >>> m.accumulate(SimpleNamespace(loss=torch.tensor(0.), yb=(torch.zeros(2),)))
    >>> m.name, m.value
    ('perplexity', 1.0)
    """

    @property
    def value(self) -> float | None:
        return math.exp(self.total / self.count) if self.count else None
