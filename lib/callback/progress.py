"""Watching a run, under the course's path ``fastai.callback.progress``: the progress bars
(``ProgressCallback``), a live loss plot (``ShowGraphCallback``) and the metrics table written to
a CSV file (``CSVLogger``).

>>> learn.fit_one_cycle(3, cbs=[ShowGraphCallback(), CSVLogger()])   # doctest: +SKIP
>>> learn.csv_logger.read_log()                                      # doctest: +SKIP
"""
from __future__ import annotations

import csv
from pathlib import Path

from fastlearn.callback import Callback
from fastlearn.progress import ProgressCallback
from fastlearn.recorder import Recorder

__all__ = ["CSVLogger", "ProgressCallback", "ShowGraphCallback"]


class ShowGraphCallback(Callback):
    """Plots the training loss (every batch) and the validation loss (every epoch) as training
    goes: live under the progress bar in a notebook; ``plot()`` draws it anywhere. The series are
    in ``graphs``: ``[[train_x, train_losses], [valid_x, valid_losses]]``.

    >>> ShowGraphCallback().graphs
    [[[], []], [[], []]]
    """

    order = Recorder.order + 5
    run_valid = False

    def __init__(self):
        self.graphs: list[list[list]] = [[[], []], [[], []]]
        self.x_bounds: tuple[int, int] = (0, 1)

    def before_fit(self):
        self.graphs = [[[], []], [[], []]]
        self.n_batches = (self.n_epoch - self.learn.start_epoch) * len(self.dls.train)
        self.x_bounds = (0, max(1, self.n_batches))

    def after_epoch(self):
        recorder = self.learn.recorder
        losses = recorder.losses
        self.graphs[0] = [list(range(len(losses))), list(losses)]
        valid_column = 1 + (len(self.learn.metrics) if recorder.train_metrics else 0)
        if recorder.valid_metrics:
            points = [(x, row[valid_column]) for x, row in zip(recorder.iters, recorder.values)
                      if row[valid_column] is not None]
            self.graphs[1] = [[x for x, _ in points], [y for _, y in points]]
        values = [v for series in (self.graphs[0][1], self.graphs[1][1]) for v in series]
        y_bounds = (min(values) * 0.95, max(values) * 1.05) if values else (0, 1)
        master = getattr(getattr(self.learn, "progress", None), "master", None)
        if master is not None:
            master.update_graph(self.graphs, self.x_bounds, y_bounds)

    def plot(self, ax=None) -> None:
        """Draw the two series on ``ax`` or a new figure (``plt.gcf()``)."""
        import matplotlib.pyplot as plt
        if ax is None:
            _, ax = plt.subplots()
        for (xs, ys), label in zip(self.graphs, ("train", "valid")):
            ax.plot(xs, ys, label=label)
        ax.set_xlim(*self.x_bounds)
        ax.set_xlabel("batch")
        ax.set_ylabel("loss")
        ax.legend()


class CSVLogger(Callback):
    """Writes the metrics table to ``learn.path / fname`` as CSV, one row per epoch as it ends
    (the header is the table's: ``epoch, train_loss, valid_loss, <metrics>, time``); ``append``
    adds to an existing file instead of replacing it. The file is closed when the fit ends, after
    an exception too; only the main process writes. ``read_log()`` reads it back as a DataFrame.

    >>> CSVLogger("history.csv", append=True).fname
    'history.csv'
    """

    order = Recorder.order + 1
    writes_files = True

    def __init__(self, fname: str = "history.csv", append: bool = False):
        self.fname, self.append = fname, append
        self.file = None

    @property
    def path(self) -> Path:
        """Where the log is written (relative names are under ``learn.path``)."""
        path = Path(self.fname)
        return path if path.is_absolute() or self.learn is None else Path(self.learn.path) / path

    def before_fit(self):
        if not self.learn.is_main_process:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        had_rows = self.append and self.path.exists() and self.path.stat().st_size > 0
        self.file = open(self.path, "a" if self.append else "w", newline="")
        self.writer = csv.writer(self.file)
        if not had_rows:
            self.writer.writerow(self.learn.recorder.metric_names)
            self.file.flush()

    def after_epoch(self):
        if self.file is not None:
            self.writer.writerow(["" if value is None else value for value in self.learn.recorder.last_row])
            self.file.flush()

    def cleanup(self):
        if self.file is not None:
            self.file.close()
            self.file = None

    def read_log(self) -> "pandas.DataFrame":
        """The log as a ``pandas.DataFrame``."""
        import pandas as pd  # only here: the library imports without it
        return pd.read_csv(self.path)
