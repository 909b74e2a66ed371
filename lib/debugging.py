"""Runs for a model that does not train yet: ``fast_dev_run`` and ``overfit_batches``.

- ``Learner(..., fast_dev_run=True)`` (or ``learn.fit(1, fast_dev_run=n)``): each fit runs one (or
  ``n``) training and validation batches, one epoch, and prints one line that says what ran.
  Nothing is written: callbacks that write files (``writes_files``: checkpoints, logs, traces)
  are left out for the run, and ``learn.save``, ``learn.export``, ``export_onnx`` and
  ``export_torchscript`` say what they would have written instead of writing it.
- ``Learner(..., overfit_batches=n)``: every epoch trains on the same first ``n`` training
  batches and validates on them too. A model that cannot drive their loss towards zero has a bug
  (in the model, the loss or the data) that more data will not fix.

>>> learn = Learner(dls, model, fast_dev_run=True)   # doctest: +SKIP
>>> learn.fit_one_cycle(5)                            # doctest: +SKIP
fast_dev_run: 1 training and 1 validation batch ran without error in 0.2 s (train_loss 2.31, valid_loss 2.30); nothing was written
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from itertools import islice

from fastlearn.callback import Callback, CancelFitException, CancelTrainException, CancelValidException
from fastlearn.distributed import is_distributed
from fastlearn.progress import ProgressCallback


def batch_count(value, name: str, allow_bool: bool = False) -> int:
    """``value`` as a number of batches (``True`` counts as 1 where ``allow_bool``), else a ValueError.

    >>> batch_count(True, "fast_dev_run", allow_bool=True), batch_count(3, "overfit_batches")
    (1, 3)
    """
    if isinstance(value, bool) and allow_bool:
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        expected = "True / False or a number of batches" if allow_bool else "a number of batches (0 turns it off)"
        raise ValueError(f"{name}={value!r}; expected {expected}")
    return value


def debug_settings(sanity_val_steps, fast_dev_run, overfit_batches) -> tuple[int, int, int]:
    """The Learner's debugging arguments, checked, as numbers of batches.

    >>> debug_settings(2, True, 0)
    (2, 1, 0)
    """
    return (batch_count(sanity_val_steps, "sanity_val_steps"), batch_count(fast_dev_run, "fast_dev_run", True),
            batch_count(overfit_batches, "overfit_batches"))


class BatchLimit(Callback):
    """Ends each training phase after ``n_train`` batches and each validation after ``n_valid``
    (None: no limit), after every other callback has seen the batch.

    >>> BatchLimit(n_train=2, n_valid=1).n_valid
    1
    """

    order = 100

    def __init__(self, n_train: int | None = None, n_valid: int | None = None):
        self.n_train, self.n_valid = n_train, n_valid
        self.trained = self.validated = 0

    def before_fit(self):
        self.trained = self.validated = 0

    def after_batch(self):
        if self.training:
            self.trained += 1
            if self.n_train is not None and self.iter + 1 >= self.n_train:
                raise CancelTrainException()
        else:
            self.validated += 1
            if self.n_valid is not None and self.iter + 1 >= self.n_valid:
                raise CancelValidException()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 'es'}"


class FastDevRun(BatchLimit):
    """One epoch of ``n`` training and ``n`` validation batches, then a one-line report (added by
    ``fast_dev_run``; reachable as ``learn.dev_run``).

    >>> FastDevRun(2).n_train
    2
    """

    name = "dev_run"

    def __init__(self, n: int = 1, left_out: list[str] | None = None):
        super().__init__(n_train=n, n_valid=n)
        self.left_out = list(left_out or [])
        self.report: str | None = None

    def before_fit(self):
        super().before_fit()
        self.start = time.perf_counter()

    def after_epoch(self):
        raise CancelFitException()  # one epoch is enough to run every piece once

    def after_fit(self):
        names = self.learn.recorder.metric_names[1:]
        values = self.learn.recorder.values[-1] if self.learn.recorder.values else []
        shown = ", ".join(f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}"
                          for name, value in zip(names, values))
        left_out = f" (left out: {', '.join(self.left_out)})" if self.left_out else ""
        self.report = (f"fast_dev_run: {_plural(self.trained, 'training batch')} and "
                       f"{_plural(self.validated, 'validation batch')} ran without error in "
                       f"{time.perf_counter() - self.start:.1f} s" + (f" ({shown})" if shown else "")
                       + f"; nothing was written{left_out}")
        if self.learn.is_main_process:
            print(self.report)


class CachedBatches:
    """The first ``n`` batches of a loader, kept and replayed in the same order every time."""

    def __init__(self, dl, n: int):
        self.batches = list(islice(iter(dl), n))
        self.device = getattr(dl, "device", None)
        self.n_inp = getattr(dl, "n_inp", None)

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class OverfitBatches(Callback):
    """Train and validate every epoch on the same first ``n`` training batches (added by
    ``overfit_batches=n``; reachable as ``learn.overfit``).

    >>> OverfitBatches(4).n
    4
    """

    order = -15  # before the progress bars and anything else that reads the loader
    name = "overfit"  # learn.overfit_batches is the learner's setting

    def __init__(self, n: int):
        self.n = n
        self.batches: CachedBatches | None = None

    def before_fit(self):
        if is_distributed():
            raise ValueError("overfit_batches runs in a single process; launch the script without torchrun "
                             "(or without python -m fastlearn.launch) to check that the model can overfit")
        self.batches = CachedBatches(self.dls.train, self.n)
        if not len(self.batches):
            raise ValueError("overfit_batches: the training loader gave no batch")

    def before_train(self):
        self.learn.dl = self.batches

    def before_validate(self):
        self.learn.dl = self.batches


def dev_run_active(learn) -> bool:
    """True while ``learn`` makes fast development runs (its ``fast_dev_run``, or inside one)."""
    return bool(getattr(learn, "fast_dev_run", False)) or any(isinstance(cb, FastDevRun) for cb in learn.cbs)


def skip_write(learn, what: str, path) -> bool:
    """True (after saying so) when ``learn`` is in a fast development run, so ``what`` at ``path``
    must not be written; False otherwise."""
    if learn is None or not dev_run_active(learn):
        return False
    if learn.is_main_process:
        print(f"fast_dev_run: {what} {path} not written")
    return True


@contextlib.contextmanager
def debug_run(learn, fast_dev_run: bool | int | None = None) -> Iterator[None]:
    """The callbacks of a fit's debugging options, for the duration of the fit: a
    :class:`FastDevRun` (``fast_dev_run``, or the learner's), with the writing callbacks and the
    progress bars taken out and the metrics table silent; an :class:`OverfitBatches`
    (``learn.overfit_batches``)."""
    n = batch_count(learn.fast_dev_run if fast_dev_run is None else fast_dev_run, "fast_dev_run", allow_bool=True)
    added: list[Callback] = []
    removed: list[Callback] = []
    if learn.overfit_batches:
        added.append(OverfitBatches(learn.overfit_batches))
    if n:
        removed = [cb for cb in learn.cbs if cb.writes_files or isinstance(cb, ProgressCallback)]
        added.append(FastDevRun(n, left_out=[type(cb).__name__ for cb in removed if cb.writes_files]))
    if not added:
        yield
        return
    silent = learn.recorder.silent
    learn.recorder.silent = silent or bool(n)
    try:
        with learn.removed_cbs(removed), learn.added_cbs(added):
            yield
    finally:
        learn.recorder.silent = silent
