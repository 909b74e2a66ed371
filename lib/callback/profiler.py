"""Where a training step's time goes: ``learn.profile()`` and the ``Profiler`` callback.

The profiler times every training batch between two probes that run first and last on each event,
so a step splits into parts that add up to it:

- ``data``: waiting for the loader and moving the batch to the device;
- ``forward``, ``loss``, ``backward``: the model, the loss function, ``loss.backward()``;
- ``optimizer``: the optimizer step with the callbacks of ``before_step`` (clipping, the gradient
  scaler), and zeroing the gradients;
- ``callbacks``: every other callback's event methods (the recorder, bars, schedules...);
- ``loop``: the training loop's own code between events.

On a GPU each probe waits for the device, so each part holds the kernels it launched. With
``trace_path`` the same batches are recorded by ``torch.profiler`` with a named range per part and
written as a Chrome trace (open it in ``chrome://tracing`` or Perfetto).

>>> table = learn.profile(n_batches=20)   # doctest: +SKIP
>>> table.loc["forward", "ms per step"]   # doctest: +SKIP
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from fastlearn.callback import Callback, CancelFitException
from fastlearn.lr_finder import training_state_kept

__all__ = ["PHASES", "Profiler", "profile_learner"]

PHASES = ("data", "forward", "loss", "backward", "optimizer", "callbacks", "loop")

# which part of the step runs between the end of one event and the start of the next
_AFTER_EVENT = {"before_train": "data", "after_batch": "data", "before_batch": "forward", "after_pred": "loss",
                "after_loss": "loop", "before_backward": "backward", "after_backward": "loop",
                "before_step": "optimizer", "after_step": "optimizer", "after_cancel_step": "loop",
                "after_cancel_backward": "loop", "after_cancel_batch": "loop"}
_TIMED_EVENTS = tuple(_AFTER_EVENT)


def _timed_events() -> dict:
    """Event methods for a probe class: each calls ``self.mark(event)``."""
    def method(event):
        return lambda self: self.mark(event)
    return {event: method(event) for event in _TIMED_EVENTS}


class _Probe(Callback):
    """Stamps the time when an event starts (``first``) or ends (the other probe)."""

    def __init__(self, profiler: "Profiler", first: bool):
        self.profiler, self.first = profiler, first

    def mark(self, event: str) -> None:
        if self.training:
            self.profiler.stamp(event, self.first)


_StartProbe = type("_StartProbe", (_Probe,), {"order": -10_000, **_timed_events()})
_EndProbe = type("_EndProbe", (_Probe,), {"order": 10_000, **_timed_events()})


class Profiler(Callback):
    """Times ``n_batches`` training batches after skipping the first ``skip`` (warm-up) and keeps
    the table in ``table`` (a ``pandas.DataFrame``: milliseconds per step and share of the step per
    part, the step itself last). ``trace_path`` also records them with ``torch.profiler`` and
    writes a Chrome trace there (relative paths are under ``learn.path``). ``stop=True`` ends the
    fit once they are timed (what ``learn.profile`` does).

    >>> Profiler(n_batches=5, skip=2).n_batches
    5
    """

    def __init__(self, n_batches: int = 10, skip: int = 1, trace_path: str | Path | None = None,
                 stop: bool = False):
        if not isinstance(n_batches, int) or n_batches < 1:
            raise ValueError(f"n_batches={n_batches!r}; expected a positive number of batches to time")
        if not isinstance(skip, int) or skip < 0:
            raise ValueError(f"skip={skip!r}; expected a number of warm-up batches (0 or more)")
        self.n_batches, self.skip, self.trace_path, self.stop = n_batches, skip, trace_path, stop
        self.writes_files = trace_path is not None
        self.table = None  # a pandas.DataFrame once a fit has run
        self.steps: list[dict[str, float]] = []
        self.written: Path | None = None
        self._probes: list[_Probe] = []
        self._torch_profiler = None
        self._range = None

    # --- set-up and tear-down -------------------------------------------------------------------

    def before_fit(self):
        self.steps, self.table, self.written = [], None, None
        self._seen, self._current, self._last_end, self._part = 0, None, None, "data"
        self._sync = self.learn.device.type == "cuda"
        self._probes = [_StartProbe(self, True), _EndProbe(self, False)]
        self.learn.add_cbs(self._probes)

    def cleanup(self):
        self._stop_torch_profiler(write=False)
        if self._probes:
            self.learn.remove_cbs(self._probes)
            self._probes = []

    def after_fit(self):
        self._finish()

    # --- timing ------------------------------------------------------------------------------

    def _now(self) -> float:
        if self._sync:
            torch.cuda.synchronize(self.learn.device)
        return time.perf_counter()

    @property
    def _active(self) -> bool:
        return self.skip <= self._seen < self.skip + self.n_batches

    def stamp(self, event: str, at_start: bool) -> None:
        """Called by the probes at the start and the end of each training event: the part that ran
        since the last stamp gets the time, and the next part begins."""
        now = self._now()
        if at_start and event == "before_batch" and self._active:
            self._start_step()
        if self._current is not None and self._last_end is not None:
            self._current[self._part] += now - self._last_end
        self._last_end = now
        if at_start:  # the event's callbacks run now; those of before_step are the optimizer's
            self._set_part("optimizer" if event == "before_step" else "callbacks")
        else:
            self._set_part(_AFTER_EVENT[event])
            if event == "after_batch" and self._current is not None:
                self._end_step(now)
            elif event == "after_batch":
                self._seen += 1

    def _start_step(self) -> None:
        if self._seen == self.skip and self.trace_path is not None and self.learn.is_main_process:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if self.learn.device.type == "cuda":
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            self._torch_profiler = torch.profiler.profile(activities=activities)
            self._torch_profiler.__enter__()
        # this step's data part began when the previous batch (or before_train) ended
        self._current = {phase: 0.0 for phase in PHASES}
        self._step_start = self._last_end

    def _end_step(self, now: float) -> None:
        self._current["step"] = now - self._step_start
        self.steps.append(self._current)
        self._current = None
        self._seen += 1
        if self._seen == self.skip + self.n_batches:
            self._stop_torch_profiler(write=True)
            if self.stop:
                raise CancelFitException()

    # --- torch.profiler ranges ---------------------------------------------------------------

    def _set_part(self, name: str) -> None:
        self._part = name
        if self._torch_profiler is not None and self._current is not None:
            self._close_range()
            self._range = torch.profiler.record_function(name)
            self._range.__enter__()

    def _close_range(self) -> None:
        if self._range is not None:
            current, self._range = self._range, None
            current.__exit__(None, None, None)

    def _stop_torch_profiler(self, write: bool) -> None:
        self._close_range()
        if self._torch_profiler is None:
            return
        prof, self._torch_profiler = self._torch_profiler, None
        prof.__exit__(None, None, None)
        if write:
            path = Path(self.trace_path)
            path = path if path.is_absolute() else Path(self.learn.path) / path
            path.parent.mkdir(parents=True, exist_ok=True)
            prof.export_chrome_trace(str(path))
            self.written = path

    # --- the table -----------------------------------------------------------------------------

    def _finish(self) -> None:
        if not self.steps:
            return
        import pandas as pd  # only once a profile is read: the library imports without it
        frame = pd.DataFrame(self.steps)
        means = frame.mean() * 1000
        rows = list(PHASES) + ["step"]
        self.table = pd.DataFrame({"ms per step": [means[r] for r in rows],
                                   "% of step": [100 * means[r] / means["step"] for r in rows]}, index=rows)
        self.table.index.name = f"part (mean of {len(self.steps)} steps)"

    def __repr__(self) -> str:
        return f"Profiler(n_batches={self.n_batches}, skip={self.skip})"


def profile_learner(learn, n_batches: int = 10, skip: int = 1, trace_path: str | Path | None = "profile_trace.json",
                    show: bool = True) -> "pandas.DataFrame":
    """``learn.profile``: train ``skip + n_batches`` batches with a :class:`Profiler`, put the
    weights, optimizer and random state back as they were, print and return the table."""
    needed = skip + n_batches
    n_epoch = -(-needed // max(1, len(learn.dls.train)))
    profiler = Profiler(n_batches=n_batches, skip=skip, trace_path=trace_path, stop=True)
    with training_state_kept(learn), learn.no_bar(), learn.no_logging():
        sanity, learn.sanity_val_steps = learn.sanity_val_steps, 0
        try:
            learn.fit(n_epoch, cbs=[profiler])
        finally:
            learn.sanity_val_steps = sanity
    if profiler.table is None:
        raise ValueError(f"the profile timed no batch: the training loader gave fewer than {needed} batches "
                         f"in {n_epoch} epoch(s); pass a smaller skip or n_batches")
    if show and learn.is_main_process:
        print(profiler.table.round(2).to_string())
        if profiler.written is not None:
            print(f"Chrome trace: {profiler.written}")
    return profiler.table
