"""Small names the book's code uses without importing them: ``noop``, ``Inf``, ``range_of``,
``defaults``, ``subplots``, ``ProcessPoolExecutor`` and ``parallel``.

>>> noop(3), range_of("abc")
(3, [0, 1, 2])
>>> defaults.cpus >= 1
True
"""
from __future__ import annotations

import concurrent.futures
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from fastlearn.foundation import L


def noop(x: Any = None, *args, **kwargs) -> Any:
    """Do nothing and return ``x``: chapter 14's identity shortcut (``self.idconv = noop``) and
    chapter 19's default event handler (``getattr(cb, name, noop)()``).

    >>> noop(), noop(1, 2, key=3)
    (None, 1)
    """
    return x


class _Infinite:
    """Endless iterators: ``Inf.count`` (0, 1, 2, ...), ``Inf.zeros``, ``Inf.ones``, ``Inf.nones``.

    Each read gives a fresh iterator, so ``zip(items, Inf.count)`` numbers items as
    ``enumerate`` does.

    >>> list(zip("ab", Inf.count)), next(Inf.ones)
    ([('a', 0), ('b', 1)], 1)
    """

    @property
    def count(self) -> Iterator[int]:
        return itertools.count()

    @property
    def zeros(self) -> Iterator[int]:
        return itertools.repeat(0)

    @property
    def ones(self) -> Iterator[int]:
        return itertools.repeat(1)

    @property
    def nones(self) -> Iterator[None]:
        return itertools.repeat(None)

    def __repr__(self) -> str:
        return "Inf"


Inf = _Infinite()


def range_of(items) -> list[int]:
    """``list(range(len(items)))``: chapter 12 counts targets with ``for i in range_of(vocab)``.

    >>> range_of([7, 8])
    [0, 1]
    """
    return list(range(len(items)))


def subplots(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] | None = None, imsize: float = 3,
             suptitle: str | None = None, **kwargs):
    """``plt.subplots`` sized ``imsize`` inches per axes, whose axes are always an array
    (chapter 13: ``_, axs = subplots(1, 3)``, then ``zip(im, axs, colors)``).

    >>> fig, axs = subplots(1, 2); axs.shape, fig.get_size_inches().tolist()   # doctest: +SKIP
    ((2,), [6.0, 3.0])
    """
    import matplotlib.pyplot as plt
    import numpy as np
    figsize = figsize if figsize is not None else (ncols * imsize, nrows * imsize)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, **kwargs)
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig, (axes if isinstance(axes, np.ndarray) else np.array([axes]))


def num_cpus() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Defaults:
    """Course-wide settings read by course code: ``defaults.cpus`` (chapter 19 sizes its worker
    pool with ``min(16, defaults.cpus)``) and ``defaults.callbacks``, the callback classes every
    ``Learner`` starts with. Other attributes may be set and read freely.

    ``defaults.callbacks`` is read-only: a Learner's callbacks are changed per Learner, with
    ``cbs=`` and ``learn.remove_cb(...)``. ``from fastlearn.text.all import *`` adds
    ``defaults.text_proc_rules``, the tokenizer's rules.

    >>> [cb.__name__ for cb in defaults.callbacks][:2]
    ['TrainEvalCallback', 'Recorder']
    """

    def __init__(self, **settings):
        self.cpus = min(16, num_cpus())
        for name, value in settings.items():
            setattr(self, name, value)

    @property
    def callbacks(self) -> tuple[type, ...]:
        from fastlearn.learner import DEFAULT_CALLBACKS
        return tuple(DEFAULT_CALLBACKS)

    @callbacks.setter
    def callbacks(self, value) -> None:
        raise AttributeError("defaults.callbacks cannot be changed: pass cbs=[...] to Learner to add callbacks, "
                             "and learn.remove_cb(TheCallback) to turn a default one off")

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"defaults({shown}, callbacks={[cb.__name__ for cb in self.callbacks]})"


defaults = Defaults()


class ProcessPoolExecutor(concurrent.futures.ProcessPoolExecutor):
    """``concurrent.futures.ProcessPoolExecutor`` as chapter 19's ``DataLoader`` uses it.

    ``max_workers=0`` runs in this process (no pool: for debugging, or where forking is
    unwelcome); ``None`` means ``defaults.cpus``. ``map(f, items, *args, **kwargs)`` calls
    ``f(*args, item, **kwargs)`` for each item (``ex.map(collate, chunks, ds=self.ds)``).

    >>> with ProcessPoolExecutor(0) as ex:
    ...     list(ex.map(pow, [1, 2, 3], exp=2))
    [1, 4, 9]
    """

    def __init__(self, max_workers: int | None = None, **kwargs):
        max_workers = defaults.cpus if max_workers is None else max_workers
        if not isinstance(max_workers, int) or max_workers < 0:
            raise ValueError(f"max_workers={max_workers!r}; expected a number of processes >= 0 (0 runs here)")
        self.in_process = max_workers == 0
        super().__init__(max_workers=max(1, max_workers), **kwargs)

    def map(self, fn: Callable, *iterables, timeout: float | None = None, chunksize: int = 1, **kwargs):
        items, *args = iterables
        call = partial(fn, *args, **kwargs) if args or kwargs else fn
        if self.in_process:
            return map(call, items)
        return super().map(call, items, timeout=timeout, chunksize=chunksize)


def parallel(f: Callable, items: Iterable, *args, n_workers: int | None = None, **kwargs) -> L:
    """``f(*args, item, **kwargs)`` for every item, on ``n_workers`` processes (default
    ``defaults.cpus``; 0 runs here), in the items' order.

    >>> parallel(pow, [1, 2, 3], exp=2, n_workers=0)
    (#3) [1, 4, 9]
    """
    with ProcessPoolExecutor(n_workers) as pool:
        return L(list(pool.map(f, items, *args, **kwargs)))
