"""``TensorBoardCallback``: losses, learning rates and metrics in TensorBoard event files, with
``torch.utils.tensorboard`` (the ``tensorboard`` extra: ``pip install 'fastlearn[tensorboard]'``).

>>> learn.fit_one_cycle(3, cbs=TensorBoardCallback(log_dir="runs/first"))   # doctest: +SKIP

then ``tensorboard --logdir runs``. Tags: ``train_loss``, ``lr_<i>``, ``mom_<i>`` per training
batch; ``valid_loss``, each metric and ``epoch`` per epoch; with ``log_histograms`` a histogram
of every parameter per epoch; with ``trace_model`` the model's graph, traced on the first batch.
"""
from __future__ import annotations

import datetime
import warnings
from pathlib import Path

from fastlearn.callback.logger import ExperimentLogger
from fastlearn.foundation import import_optional

__all__ = ["TensorBoardCallback"]


class TensorBoardCallback(ExperimentLogger):
    """Writes TensorBoard event files to ``log_dir`` (default ``learn.path/runs/<date-time>``;
    relative paths are under ``learn.path``), every ``log_every`` training batches and after every
    epoch; the writer is closed when the fit ends.

    >>> TensorBoardCallback(log_dir="runs/a").log_dir   # doctest: +SKIP
    'runs/a'
    """

    def __init__(self, log_dir: str | Path | None = None, log_every: int = 1, log_histograms: bool = False,
                 trace_model: bool = False):
        super().__init__(log_every=log_every)
        self.summary_writer = import_optional("torch.utils.tensorboard", "tensorboard",
                                              "TensorBoardCallback").SummaryWriter
        self.log_dir, self.log_histograms, self.trace_model = log_dir, log_histograms, trace_model
        self.writer = None
        self.written_to: Path | None = None

    def start(self) -> None:
        if self.log_dir is None:
            folder = Path(self.learn.path) / "runs" / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        else:
            folder = Path(self.log_dir)
            folder = folder if folder.is_absolute() else Path(self.learn.path) / folder
        self.written_to = folder
        self.writer = self.summary_writer(log_dir=str(folder))
        self._graph_due = self.trace_model

    def write(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def before_batch(self):
        if self.active and self.training and self._graph_due:
            self._graph_due = False
            model = getattr(self.learn.model, "module", self.learn.model)
            try:
                self.writer.add_graph(model, tuple(self.xb))
            except Exception as error:  # tracing fails on models with data-dependent control flow
                warnings.warn(f"TensorBoardCallback could not trace {type(model).__name__} for its graph "
                              f"({type(error).__name__}: {str(error)[:200]}); the scalars are still logged",
                              RuntimeWarning, stacklevel=2)

    def after_epoch(self):
        super().after_epoch()
        if self.active and self.log_histograms:
            model = getattr(self.learn.model, "module", self.learn.model)
            for name, param in model.named_parameters():
                self.writer.add_histogram(name, param.detach().float().cpu(), self.step)

    def finish(self, failed: bool) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
