"""Hyper-parameter schedules as callbacks: one-cycle, flat-cos, SGDR, and the learning-rate finder.

A schedule is a function of the training progress ``pos`` in [0, 1]. ``ParamScheduler`` sets the
optimizer's ``lr`` / ``mom`` per batch from such functions.

>>> f = combine_scheds([0.25, 0.75], [SchedCos(0.1, 1.0), SchedCos(1.0, 0.0)])
>>> round(float(f(0.0)), 3), round(float(f(0.25)), 3), round(float(f(1.0)), 3)
(0.1, 1.0, 0.0)
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from fastlearn.callback import Callback, CancelFitException, CancelValidException
from fastlearn.optimizer import get_hyper, set_hyper


class Scheduler:
    """A schedule from ``start`` to ``end`` (scalars or one value per param group).

    With one value each it computes on Python floats (the loop asks once per batch, and numpy's
    per-call cost on scalars is most of it); with one value per group, on arrays.
    """

    def __init__(self, start, end=None):
        self.start = np.asarray(start, dtype=float)
        self.end = np.asarray(start if end is None else end, dtype=float)
        scalar = self.start.size == 1 and self.end.size == 1
        self._start, self._end = (self.start.item(), self.end.item()) if scalar else (self.start, self.end)

    def __call__(self, pos: float) -> float | np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.start.tolist()}, {self.end.tolist()})"


class SchedLin(Scheduler):
    """Linear from start to end."""

    def __call__(self, pos: float) -> float | np.ndarray:
        return self._start + pos * (self._end - self._start)


class SchedCos(Scheduler):
    """Cosine from start to end (flat at both ends)."""

    def __call__(self, pos: float) -> float | np.ndarray:
        return self._start + (1 + math.cos(math.pi * (1 - pos))) * (self._end - self._start) / 2


class SchedExp(Scheduler):
    """Exponential from start to end."""

    def __call__(self, pos: float) -> float | np.ndarray:
        return self._start * (self._end / self._start) ** pos


class SchedNo(Scheduler):
    """Constant at start."""

    def __call__(self, pos: float) -> float | np.ndarray:
        return self._start


def combine_scheds(pcts: Sequence[float], scheds: Sequence[Callable]) -> Callable[[float], float | np.ndarray]:
    """Run ``scheds`` one after the other, each over its fraction ``pcts`` of training."""
    if len(pcts) != len(scheds):
        raise ValueError(f"{len(pcts)} fractions for {len(scheds)} schedules; give one fraction each")
    if not math.isclose(sum(pcts), 1.0, abs_tol=1e-6):
        raise ValueError(f"schedule fractions {list(pcts)} sum to {sum(pcts)}, expected 1")
    bounds = [float(b) for b in np.cumsum([0.0, *pcts])]

    def combined(pos: float) -> float | np.ndarray:
        if pos >= 1.0:
            return scheds[-1](1.0)
        index = min(max(bisect.bisect_right(bounds, pos) - 1, 0), len(scheds) - 1)
        width = bounds[index + 1] - bounds[index]
        inner = (pos - bounds[index]) / width if width > 0 else 1.0
        return scheds[index](inner)

    return combined


def check_schedule_args(pct_start: float, **divisors: float) -> None:
    """Refuse, before any step, a schedule whose learning rate would be infinite, NaN or
    negative (a divisor that is not a finite number > 0) or whose phases do not fit in training
    (``pct_start`` outside 0..1): the first step would make every weight NaN."""
    for name, value in divisors.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
                math.isfinite(value) and value > 0):
            raise ValueError(f"{name}={value!r}; expected a finite number > 0 (the learning rate is divided by it: "
                             "0 would make it infinite), e.g. the default; nothing was changed")
    if isinstance(pct_start, bool) or not isinstance(pct_start, (int, float, np.number)) or not 0 <= pct_start <= 1:
        raise ValueError(f"pct_start={pct_start!r}; expected the fraction of training spent in the first phase, from 0 "
                         "to 1 (e.g. 0.25); nothing was changed")


def one_cycle_scheds(lr_max, div: float = 25.0, div_final: float = 1e5, pct_start: float = 0.25,
                     moms: Sequence[float] | None = (0.95, 0.85, 0.95)) -> dict[str, Callable]:
    """The one-cycle policy: cosine warm-up from ``lr_max/div`` to ``lr_max``, cosine down to
    ``lr_max/div_final``; momentum the other way round."""
    check_schedule_args(pct_start, div=div, div_final=div_final)
    if moms is not None and len(moms) != 3:
        raise ValueError(f"moms={moms!r}; expected three momentums (start, middle, end), e.g. (0.95, 0.85, 0.95)")
    lr_max = np.asarray(lr_max, dtype=float)
    scheds: dict[str, Callable] = {"lr": combine_scheds(
        [pct_start, 1 - pct_start], [SchedCos(lr_max / div, lr_max), SchedCos(lr_max, lr_max / div_final)])}
    if moms is not None:
        scheds["mom"] = combine_scheds([pct_start, 1 - pct_start],
                                       [SchedCos(moms[0], moms[1]), SchedCos(moms[1], moms[2])])
    return scheds


def flat_cos_scheds(lr, div_final: float = 1e5, pct_start: float = 0.75) -> dict[str, Callable]:
    """A flat learning rate for ``pct_start`` of training, then cosine annealing to ``lr/div_final``."""
    check_schedule_args(pct_start, div_final=div_final)
    lr = np.asarray(lr, dtype=float)
    return {"lr": combine_scheds([pct_start, 1 - pct_start], [SchedNo(lr, lr), SchedCos(lr, lr / div_final)])}


def sgdr_scheds(lr_max, n_cycles: int, cycle_len: int, cycle_mult: int = 2) -> tuple[dict[str, Callable], int]:
    """Cosine cycles from ``lr_max`` to 0, each ``cycle_mult`` times longer; returns the schedules
    and the total number of epochs.

    >>> sgdr_scheds(0.1, n_cycles=3, cycle_len=1)[1]
    7
    """
    for name, value in (("n_cycles", n_cycles), ("cycle_len", cycle_len), ("cycle_mult", cycle_mult)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}; expected a whole number >= 1 (fit_sgdr(n_cycles, cycle_len, "
                             "cycle_mult=2) trains cycles of cycle_len, cycle_len * cycle_mult, ... epochs)")
    lengths = [cycle_len * cycle_mult ** i for i in range(n_cycles)]
    n_epoch = sum(lengths)
    lr_max = np.asarray(lr_max, dtype=float)
    return {"lr": combine_scheds([n / n_epoch for n in lengths], [SchedCos(lr_max, 0) for _ in lengths])}, n_epoch


class ParamScheduler(Callback):
    """Sets the optimizer's hyper-parameters before each training batch from ``scheds``.

    ``scheds`` maps ``"lr"`` / ``"mom"`` / ``"wd"`` to a function of the training progress.
    """

    order = 60
    run_valid = False

    def __init__(self, scheds: dict[str, Callable]):
        unknown = set(scheds) - {"lr", "mom", "wd"}
        if unknown:
            raise ValueError(f"ParamScheduler got schedules for {sorted(unknown)}; only lr, mom, wd exist")
        self.scheds = scheds

    def before_fit(self):
        self.hps: dict[str, list] = {name: [] for name in self.scheds}

    def before_batch(self):
        learn = self.learn
        pos = learn.train_iter / (learn.n_iter * learn.n_epoch)
        opts = learn.opts  # with a custom training step, its other optimizers too
        for name, sched in self.scheds.items():
            value = sched(pos)
            for opt in opts:
                set_hyper(opt, name, value)

    def after_batch(self):
        for name in self.scheds:
            self.hps[name].append(get_hyper(self.learn.opt, name))


class LRFinder(Callback):
    """Raises the learning rate exponentially from ``start_lr`` to ``end_lr`` over ``num_it``
    batches, recording the smoothed loss; stops early if the loss diverges (``stop_div``)."""

    order = 50
    run_valid = False

    def __init__(self, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100, stop_div: bool = True):
        if not 0 < start_lr < end_lr:
            raise ValueError(f"lr_find needs 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}")
        self.start_lr, self.end_lr, self.num_it, self.stop_div = start_lr, end_lr, num_it, stop_div

    def before_fit(self):
        self.best_loss = float("inf")
        self.lrs: list[float] = []
        self.losses: list[float] = []

    def before_batch(self):
        pos = self.train_iter / max(1, self.num_it - 1)
        set_hyper(self.opt, "lr", self.start_lr * (self.end_lr / self.start_lr) ** pos)

    def after_batch(self):
        smooth = float(self.smooth_loss)
        self.lrs.append(get_hyper(self.opt, "lr")[-1])
        self.losses.append(smooth)
        if smooth < self.best_loss:
            self.best_loss = smooth
        diverged = self.stop_div and (smooth > 4 * self.best_loss or not math.isfinite(smooth))
        if diverged or self.train_iter >= self.num_it:
            raise CancelFitException()

    def before_validate(self):
        raise CancelValidException()


# --- suggestion functions: (lrs, losses, num_it) -> (lr, (lr, loss)) -------------------------

def valley(lrs: Sequence[float], losses: Sequence[float], num_it: int) -> tuple[float, tuple]:
    """A learning rate part-way down the longest stretch over which the loss keeps falling."""
    losses = np.asarray(losses, dtype=float)
    n = len(losses)
    run_length = np.ones(n, dtype=int)
    best_end = 0
    for i in range(1, n):
        lower_before = losses[:i] > losses[i]
        if lower_before.any():
            run_length[i] = run_length[:i][lower_before].max() + 1
        if run_length[i] > run_length[best_end]:
            best_end = i
    start = best_end - run_length[best_end] + 1
    span = (best_end - start) / 3
    index = min(n - 1, start + int(span) + int(span / 2))
    return float(lrs[index]), (float(lrs[index]), float(losses[index]))


def slide(lrs: Sequence[float], losses: Sequence[float], num_it: int, lr_diff: int = 15,
          thresh: float = 0.005, adjust_value: float = 1.0) -> tuple[float, tuple]:
    """The largest learning rate, walking back from the loss minimum, where the loss is still
    falling by at least ``thresh`` per step over a window of ``lr_diff`` steps."""
    losses = np.asarray(losses, dtype=float)
    gradient = np.gradient(losses)
    index = int(np.argmin(losses))
    window = min(lr_diff, index)
    while index - window > 0 and -gradient[index - window:index].mean() < thresh:
        index -= 1
    index = max(0, min(len(lrs) - 1, index))
    lr = float(lrs[index]) * adjust_value
    return lr, (float(lrs[index]), float(losses[index]))


def minimum(lrs: Sequence[float], losses: Sequence[float], num_it: int) -> tuple[float, tuple]:
    """A tenth of the learning rate at the minimum loss."""
    index = int(np.argmin(losses))
    return float(lrs[index]) / 10, (float(lrs[index]), float(losses[index]))


def steep(lrs: Sequence[float], losses: Sequence[float], num_it: int) -> tuple[float, tuple]:
    """The learning rate where the loss falls fastest (per unit of log learning rate)."""
    slopes = np.gradient(np.asarray(losses, dtype=float), np.log(np.asarray(lrs, dtype=float)))
    index = int(np.argmin(slopes))
    return float(lrs[index]), (float(lrs[index]), float(losses[index]))


def suggestion_tuple(names: Sequence[str]) -> type:
    """A named-tuple class holding one float per suggestion function, ``SuggestedLRs(valley=...)``."""
    return NamedTuple("SuggestedLRs", [(name, float) for name in names])
