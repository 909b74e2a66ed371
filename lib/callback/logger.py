"""``ExperimentLogger``: what the experiment trackers (TensorBoard, Weights & Biases, MLflow) log,
and when; each subclass only writes.

Every ``log_every`` training batches: ``train_loss`` (the smoothed loss the progress bar shows),
``lr_<i>`` and ``mom_<i>`` per parameter group. After every epoch: the other columns of the
metrics table (``valid_loss``, the metrics) and ``epoch``. Steps count training batches
and go on across fits (``fine_tune``'s two fits make one curve). Only the main process logs
under DDP, and the logger is finished (files closed) when the fit ends, after an exception too.

>>> class PrintLogger(ExperimentLogger):
...     def write(self, values, step):
...         print(step, values)
"""
from __future__ import annotations

import math

from fastlearn.callback import Callback
from fastlearn.optimizer import get_hyper
from fastlearn.recorder import Recorder

__all__ = ["ExperimentLogger", "run_config"]


def _number(value) -> float | None:
    """``value`` as a finite-or-not float, or None for what is not a number (None, a tensor of several)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def run_config(learn) -> dict:
    """The fit's settings a tracker records: epochs, batch size, optimizer, loss, model, the learning
    rate of each parameter group as the fit starts (the peak of a one-cycle schedule), metrics."""
    return {"n_epoch": learn.n_epoch, "batch_size": getattr(learn.dls.train, "bs", None),
            "opt_func": getattr(learn.opt_func, "__name__", type(learn.opt_func).__name__),
            "loss_func": type(learn.loss_func).__name__, "model": type(learn.model).__name__,
            "lr": get_hyper(learn.opt, "lr") if learn.opt is not None else learn.lr,
            "metrics": [m.name for m in learn.metrics]}


class ExperimentLogger(Callback):
    """Base of the loggers; subclasses define ``write(values, step)`` and, as needed, ``start()``
    (before the first value of a fit) and ``finish(failed)`` (once the fit ended or failed).

    >>> ExperimentLogger(log_every=10).log_every
    10
    """

    order = Recorder.order + 1  # after the Recorder has the epoch's values
    writes_files = True

    def __init__(self, log_every: int = 1):
        if not isinstance(log_every, int) or log_every < 1:
            raise ValueError(f"log_every={log_every!r}; expected a positive number of training batches")
        self.log_every = log_every
        self.step = 0
        self.active = False

    # --- what subclasses write -----------------------------------------------------------------

    def start(self) -> None:
        """Open the run / file (called in ``before_fit`` on the main process)."""

    def write(self, values: dict[str, float], step: int) -> None:
        """Record ``values`` at ``step``."""
        raise NotImplementedError

    def finish(self, failed: bool) -> None:
        """Close the run / file (``failed``: the fit ended with an exception)."""

    # --- events ------------------------------------------------------------------------------

    def before_fit(self):
        self.active = self.learn.is_main_process
        self._fit_ended = False
        if self.active:
            self.start()

    def after_batch(self):
        if not (self.active and self.training) or self.learn.loss is None:
            return
        self.step += 1
        if self.step % self.log_every:
            return
        values = {"train_loss": float(self.learn.smooth_loss)}
        for name in ("lr", "mom"):
            for i, value in enumerate(get_hyper(self.opt, name)):
                values[f"{name}_{i}"] = float(value)
        self.write(values, self.step)

    def after_epoch(self):
        if not self.active or not self.learn.recorder.values:
            return
        names = [n for n in self.learn.recorder.metric_names[1:] if n != "time"]
        # train_loss is logged per batch (its last value is the table's)
        values = {name: number for name, value in zip(names, self.learn.recorder.values[-1])
                  if name != "train_loss" and (number := _number(value)) is not None and not math.isnan(number)}
        values["epoch"] = float(self.epoch + 1)
        self.write(values, self.step)

    def after_fit(self):
        self._fit_ended = True

    def cleanup(self):
        if self.active:
            self.active = False
            self.finish(failed=not self._fit_ended)
