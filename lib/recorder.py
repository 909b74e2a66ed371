"""``Recorder``: losses, metrics, learning rates and momentums, recorded and plotted.

Every Learner has one as ``learn.recorder``. After ``fit``, ``learn.recorder.values`` holds one
row per epoch: ``[train_loss, valid_loss, *metrics]``.

>>> learn.recorder.values[-1]          # doctest: +SKIP
[0.31, 0.28, 0.91]
>>> learn.recorder.plot_loss()         # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import numpy as np
import torch

from fastlearn.callback import Callback
from fastlearn.metric_base import AvgLoss, AvgSmoothLoss
from fastlearn.optimizer import get_hyper


def _format_time(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


class Recorder(Callback):
    """Records the smoothed training loss per batch, the learning rates and momentums per batch,
    and ``[train_loss, valid_loss, *metrics]`` per epoch; logs one row per epoch.

    ``add_time`` adds the epoch time to the logged row; ``train_metrics`` also computes the
    metrics on the training set; ``beta`` is the smoothing of the training loss.
    """

    order = 50
    _epoch_open = False  # between before_epoch and after_epoch of a fit

    def __init__(self, add_time: bool = True, train_metrics: bool = False, valid_metrics: bool = True,
                 beta: float = 0.98):
        self.add_time, self.train_metrics, self.valid_metrics = add_time, train_metrics, valid_metrics
        self.loss_meter, self.smooth_meter = AvgLoss(), AvgSmoothLoss(beta=beta)
        self.silent = False
        self.lrs: list[list[float]] = []
        self.moms: list[list[float]] = []
        self.iters: list[int] = []
        self.losses: list[float] = []
        self.values: list[list] = []
        self.log: list = []
        self._epoch_open = False

    @contextlib.contextmanager
    def silenced(self) -> Iterator["Recorder"]:
        """No per-epoch table inside the block (the values are still recorded)."""
        previous, self.silent = self.silent, True
        try:
            yield self
        finally:
            self.silent = previous

    @property
    def metric_names(self) -> list[str]:
        names = ["epoch", "train_loss"]
        if self.train_metrics:
            names += [f"train_{m.name}" for m in self.learn.metrics]
        if self.valid_metrics:
            names += ["valid_loss"] + [m.name for m in self.learn.metrics]
        return names + (["time"] if self.add_time else [])

    def before_fit(self):
        self.lrs, self.moms, self.iters, self.losses, self.values = [], [], [], [], []
        self.smooth_meter.reset()
        self.learn.smooth_loss = float("nan")
        self._header_logged = False

    def before_epoch(self):
        self.start_time = time.perf_counter()
        self.log = [self.epoch]
        self._epoch_open = True

    def before_train(self):
        for metric in self._metrics_for(training=True):
            metric.reset()

    def before_validate(self):
        self.loss_meter.reset()
        for metric in self._metrics_for(training=False):
            metric.reset()

    def _metrics_for(self, training: bool) -> list:
        if training:
            return list(self.learn.metrics) if self.train_metrics else []
        return list(self.learn.metrics) if self.valid_metrics else []

    def after_batch(self):
        learn = self.learn  # read directly: this runs every batch
        if not learn.yb or learn.loss is None:  # no targets, or cancelled before the loss
            return
        if learn.training:
            meter = self.smooth_meter
            meter.accumulate(learn)
            # kept as a tensor: reading it as a float every batch would wait for the GPU each time
            learn.smooth_loss = meter.smoothed
            self._pending_losses.append(meter.smoothed)
            self.lrs.append(get_hyper(learn.opt, "lr"))
            self.moms.append(get_hyper(learn.opt, "mom"))
        else:
            self.loss_meter.accumulate(learn)
        if learn.metrics:
            for metric in self._metrics_for(learn.training):
                metric.accumulate(learn)

    @property
    def losses(self) -> list[float]:
        """The smoothed training loss after every training batch."""
        if self._pending_losses:
            self._losses += torch.stack(self._pending_losses).float().cpu().tolist()
            self._pending_losses = []
        return self._losses

    @losses.setter
    def losses(self, values) -> None:
        self._losses, self._pending_losses = list(values), []

    def after_train(self):
        self.log.append(float(self.learn.smooth_loss))
        self.log += [m.value for m in self._metrics_for(training=True)]

    def after_validate(self):
        # a row is written only in an epoch of a fit: validate, get_preds and predict outside one
        # add nothing (a server's millionth predict finds the log as the last fit left it)
        if self.valid_metrics and self._epoch_open:
            self.log.append(self.loss_meter.value)
            self.log += [m.value for m in self._metrics_for(training=False)]

    def after_cancel_train(self):
        self.cancel_train = True

    def cleanup(self):
        self._epoch_open = False  # a fit that ended with an exception leaves no epoch open

    def after_epoch(self):
        if not self._epoch_open:  # cancelled in before_epoch by a callback that ran before this one
            self.start_time = time.perf_counter()
            self.log = [self.epoch] + [None] * (len(self.metric_names) - 1 - self.add_time)
        self._epoch_open = False
        row = list(self.log)
        self.values.append(row[1:])
        if self.add_time:
            row.append(_format_time(time.perf_counter() - self.start_time))
        self.last_row = row  # as logged: epoch, values, time (CSVLogger writes it)
        self.iters.append(len(self.losses))
        if not self.silent and self.learn.logger is not None:
            if not self._header_logged:
                self.learn.logger(self.metric_names, header=True)
                self._header_logged = True
            self.learn.logger(row, header=False)

    # --- plots ------------------------------------------------------------------------------

    def plot_loss(self, skip_start: int = 5, with_valid: bool = True, ax=None) -> None:
        """Plot the smoothed training loss per batch and the validation loss per epoch, on ``ax``
        or a new figure (``plt.gcf()`` is the figure, to save it)."""
        import matplotlib.pyplot as plt
        if ax is None:
            _, ax = plt.subplots()
        start = min(skip_start, max(0, len(self.losses) - 1))
        ax.plot(range(start, len(self.losses)), self.losses[start:], label="train")
        if with_valid and self.valid_metrics and self.values:
            valid = [row[1 + (len(self.learn.metrics) if self.train_metrics else 0)] for row in self.values]
            points = [(i, v) for i, v in zip(self.iters, valid) if v is not None]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, label="valid")
        ax.set_xlabel("batch")
        ax.set_ylabel("loss")
        ax.legend()

    def plot_sched(self, keys: tuple[str, ...] = ("lr", "mom"), figsize=None) -> None:
        """Plot the learning rate and momentum used at every training batch (last param group),
        one axes per key in a new figure."""
        import matplotlib.pyplot as plt
        series = {"lr": self.lrs, "mom": self.moms}
        unknown = set(keys) - set(series)
        if unknown:
            raise ValueError(f"plot_sched keys {sorted(unknown)} unknown; choose from {sorted(series)}")
        fig, axes = plt.subplots(1, len(keys), figsize=figsize or (6 * len(keys), 4))
        axes = np.atleast_1d(axes)
        for ax, key in zip(axes, keys):
            ax.plot([values[-1] for values in series[key]])
            ax.set_ylabel(key)
            ax.set_xlabel("batch")

    def plot_lr_find(self, lrs=None, losses=None, suggestions: dict | None = None, skip_end: int = 5,
                     ax=None) -> None:
        """Plot the loss against the learning rate (log scale), marking the suggestions, on ``ax``
        or a new figure."""
        import matplotlib.pyplot as plt
        if lrs is None:
            lrs = [values[-1] for values in self.lrs]
            losses = self.losses
        end = len(lrs) - skip_end if len(lrs) > skip_end + 1 else len(lrs)
        if ax is None:
            _, ax = plt.subplots()
        ax.plot(lrs[:end], losses[:end])
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        for name, (lr, loss) in (suggestions or {}).items():
            ax.plot(lr, loss, "o", label=name)
        if suggestions:
            ax.legend()
