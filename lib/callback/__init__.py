"""Callbacks: the closed list of training-loop events, the cancel exceptions, and ``Callback``.

This package's modules hold the callbacks of the course's ``fastai.callback.*`` paths:
``fastlearn.callback.hook`` (hooks, ``ActivationStats``), ``.fp16`` (mixed precision), ``.mixup``,
``.progress`` (``ShowGraphCallback``, ``CSVLogger``), ``.tensorboard``, ``.wandb``, ``.mlflow``,
``.profiler``, and ``.all`` for a star import of every callback.

A callback is a class with methods named after events. Inside one, reading ``self.model``,
``self.pred``, ``self.loss``, ``self.x`` / ``self.y`` (the batch's first input / target),
``self.epoch``, ``self.training``... reads the learner's; writing goes through ``self.learn``
(``self.learn.loss = self.loss * 2``).

``cleanup`` is the one event that always runs: last, after ``after_fit`` when a fit ends
normally, and after any exception (a failing batch, a ``KeyboardInterrupt``) before that exception
reaches the caller unchanged; also at the end of the validation passes of ``get_preds``,
``validate`` and ``predict``. A callback that changes something outside itself (autocast, a wrapped
model, progress bars, a ``no_sync`` context) puts it back there.

>>> class PrintEpoch(Callback):
...     def after_epoch(self):
...         print("epoch", self.epoch, "done")
"""
from __future__ import annotations

import contextlib
import difflib
import functools
import re
import warnings
from collections.abc import Iterator

from fastlearn.foundation import listify

__all__ = [
    "EVENTS", "INNER_LOOP", "LOOP_TREE", "FORWARDED_STATE", "Callback", "CancelBackwardException",
    "CancelBatchException", "CancelEpochException", "CancelFitException", "CancelStepException",
    "CancelTrainException", "CancelValidException", "TrainEvalCallback", "as_callback", "camel_to_snake",
    "callbacks_added", "callbacks_muted", "callbacks_removed", "check_event_names", "cleanup_after",
    "events_table", "sort_callbacks", "training_loop_text",
]

EVENTS: tuple[str, ...] = (
    "before_fit", "before_epoch", "before_train", "before_batch", "after_pred", "after_loss",
    "before_backward", "after_backward", "before_step", "after_step", "after_cancel_batch",
    "after_batch", "after_cancel_train", "after_train", "before_validate", "after_cancel_validate",
    "after_validate", "after_cancel_epoch", "after_epoch", "after_cancel_fit", "after_fit",
    "after_cancel_step", "after_cancel_backward", "cleanup",
)

# Events that ``run_train`` / ``run_valid`` apply to: the ones inside a phase.
INNER_LOOP = frozenset({"before_batch", "after_pred", "after_loss", "before_backward", "after_backward",
                        "before_step", "after_step", "after_cancel_batch", "after_batch"})

# How the events nest, for ``Learner.show_training_loop``.
LOOP_TREE: tuple[tuple[int, str], ...] = (
    (0, "Start Fit"), (1, "before_fit"), (1, "Start Epoch Loop"), (2, "before_epoch"),
    (2, "Start Train"), (3, "before_train"), (3, "Start Batch Loop"), (4, "before_batch"),
    (4, "after_pred"), (4, "after_loss"), (4, "before_backward"), (4, "after_backward"),
    (4, "before_step"), (4, "after_step"), (4, "after_cancel_batch"), (4, "after_batch"),
    (3, "End Batch Loop"), (3, "after_cancel_train"), (3, "after_train"), (2, "End Train"),
    (2, "Start Valid"), (3, "before_validate"), (3, "Start Batch Loop"), (4, "**CBs same as train batch**"),
    (3, "End Batch Loop"), (3, "after_cancel_validate"), (3, "after_validate"), (2, "End Valid"),
    (2, "after_cancel_epoch"), (2, "after_epoch"), (1, "End Epoch Loop"), (1, "after_cancel_fit"),
    (1, "after_fit"), (1, "cleanup"), (0, "End Fit"),
)


class CancelFitException(Exception):
    """Raise in a callback to end ``fit`` cleanly (``after_cancel_fit``, then ``after_fit``, run)."""


class CancelEpochException(Exception):
    """Raise to skip the rest of this epoch."""


class CancelTrainException(Exception):
    """Raise to skip the rest of this epoch's training phase."""


class CancelValidException(Exception):
    """Raise to skip the rest of this epoch's validation."""


class CancelBatchException(Exception):
    """Raise to skip the rest of this batch (no backward, step or zero_grad after it)."""


class CancelStepException(Exception):
    """Raise in ``before_step`` to skip the optimizer step (the gradients are still zeroed)."""


class CancelBackwardException(Exception):
    """Raise in ``before_backward`` to skip the backward pass."""


# ``begin_*`` is what early fastai v2 (and the printed book) called the ``before_*`` events
_EVENT_LIKE = re.compile(r"^((before|after|begin)_[a-z_]+|clean_?up\w*)$")

# Learner attributes that a callback reads through forwarding and must not shadow by assignment.
FORWARDED_STATE = frozenset({"model", "pred", "loss", "loss_grad", "xb", "yb", "x", "y", "opt", "dls", "dl",
                             "epoch", "n_epoch", "iter", "n_iter", "training", "train_iter", "pct_train",
                             "smooth_loss", "loss_func", "metrics"})


def camel_to_snake(name: str) -> str:
    """``"SaveModelCallback"`` → ``"save_model_callback"``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


class Callback:
    """Base class for callbacks. Subclass it and define methods named after events.

    Class attributes:
      - ``order``: callbacks run sorted by it (lower first);
      - ``run_before`` / ``run_after``: a callback class (or a tuple) this one must precede / follow;
      - ``run_train`` / ``run_valid``: set to False to skip the training / validation phases;
      - ``writes_files``: True for a callback that writes files (checkpoints, logs, traces), which
        a ``fast_dev_run`` leaves out.

    >>> class Halve(Callback):
    ...     def after_loss(self):
    ...         self.learn.loss_grad = self.loss_grad / 2
    """

    order: int = 0
    run_before: type | tuple = ()
    run_after: type | tuple = ()
    run_train: bool = True
    run_valid: bool = True
    writes_files: bool = False
    learn = None

    @property
    def name(self) -> str:
        """The attribute name under which the learner exposes this callback (``learn.recorder``)."""
        return _class_name(type(self).__name__)

    def __getattr__(self, name: str):
        learn = self.__dict__.get("learn") or type(self).learn
        if name.startswith("__") or learn is None:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        return getattr(learn, name)

    def __setattr__(self, name: str, value) -> None:
        if name in FORWARDED_STATE and self.__dict__.get("learn") is not None:
            raise AttributeError(
                f"{type(self).__name__} sets self.{name}, which would hide the learner's {name}; "
                f"write self.learn.{name} = ... to change the learner's value")
        super().__setattr__(name, value)

    def __call__(self, event: str) -> None:
        method = getattr(type(self), event, None)
        if method is None:
            return
        if event in INNER_LOOP:
            training = self.learn.training if self.learn is not None else True
            if (training and not self.run_train) or (not training and not self.run_valid):
                return
        method(self)

    def __repr__(self) -> str:
        return type(self).__name__


@functools.lru_cache(maxsize=None)
def _class_name(class_name: str) -> str:
    """``learn.<name>`` of a callback class (worked out once per class name: the loop asks often)."""
    return camel_to_snake(re.sub(r"Callback$", "", class_name) or "callback")


def check_event_names(callback: Callback) -> None:
    """Fail loudly, with a suggestion, if a callback defines a misspelt event method."""
    for klass in type(callback).__mro__:
        if klass is Callback or klass is object:
            break
        for attr in vars(klass):
            if _EVENT_LIKE.match(attr) and attr not in EVENTS:
                renamed = "before_" + attr[len("begin_"):] if attr.startswith("begin_") else None
                close = [renamed] if renamed in EVENTS else difflib.get_close_matches(attr, EVENTS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; events are {EVENTS}"
                raise AttributeError(
                    f"{type(callback).__name__}.{attr} looks like an event method but {attr!r} "
                    f"is not an event{hint}")


def as_callback(cb, owner=None) -> Callback:
    """A checked callback instance from an instance or a class; ``owner`` (a Learner) must not
    already have a non-callback attribute under the callback's name (``learn.<name>``)."""
    if isinstance(cb, type):
        cb = cb()
    if not isinstance(cb, Callback):
        raise TypeError(f"cbs takes Callback instances or classes, got {cb!r}")
    check_event_names(cb)
    existing = getattr(owner, cb.name, None) if owner is not None else None
    if existing is not None and not isinstance(existing, Callback):
        raise ValueError(
            f"callback {type(cb).__name__} would be reachable as learn.{cb.name}, which would replace "
            f"the Learner's own {cb.name!r}; rename the class or give it a class attribute name = '...'")
    return cb


@contextlib.contextmanager
def cleanup_after(learn) -> Iterator[None]:
    """Run the block (a fit, or a validation pass), then fire ``cleanup`` on ``learn``'s callbacks
    whatever happened, once the outermost such block ends. Every callback's ``cleanup`` runs even
    if another's fails; an exception from the block reaches the caller unchanged (a cleanup that
    fails after it is reported as a warning).

    >>> with cleanup_after(learn):          # doctest: +SKIP
    ...     learn._do_epoch_validate()
    """
    learn.running += 1
    error = None
    try:
        yield
    except BaseException as raised:
        error = raised
        raise
    finally:
        learn.running -= 1
        if learn.running == 0:
            _fire_cleanup(learn.callbacks_for("cleanup"), error)


@contextlib.contextmanager
def callbacks_added(learn, cbs) -> Iterator:
    """``learn`` with ``cbs`` (instances or classes) added inside the block; a callback they
    replace (one of the same name, such as a default) comes back after it.

    >>> with callbacks_added(learn, [SaveModelCallback()]):   # doctest: +SKIP
    ...     learn.fit(1)
    """
    cbs = [cb() if isinstance(cb, type) else cb for cb in listify(cbs)]
    if not cbs:  # nothing to add (get_preds and predict without cbs=): nothing to undo
        yield learn
        return
    names = {cb.name for cb in cbs if isinstance(cb, Callback)}
    replaced = [cb for cb in learn.cbs if cb.name in names]
    learn.add_cbs(cbs)
    try:
        yield learn
    finally:
        learn.remove_cbs(cbs)
        learn.add_cbs([cb for cb in replaced if getattr(learn, cb.name, None) is None])


@contextlib.contextmanager
def callbacks_removed(learn, cbs) -> Iterator:
    """``learn`` without ``cbs`` (those of its callbacks) inside the block."""
    cbs = [cb for cb in listify(cbs) if cb in learn.cbs]
    learn.remove_cbs(cbs)
    try:
        yield learn
    finally:
        learn.add_cbs(cbs)


@contextlib.contextmanager
def callbacks_muted(learn, cbs) -> Iterator:
    """``learn`` with ``cbs`` (some of its callbacks) kept in ``learn.cbs`` but sent no event inside
    the block: no callback is added or removed, so nothing is re-sorted or rebuilt.

    >>> with callbacks_muted(learn, [learn.progress]):   # doctest: +SKIP
    ...     learn.validate()
    """
    previous = learn.muted
    # (no all() here: once imported, the submodule fastlearn.callback.all shadows it in this namespace)
    already = {id(cb) for cb in previous}
    learn.muted = previous + tuple(cb for cb in listify(cbs) if id(cb) not in already)
    try:
        yield learn
    finally:
        learn.muted = previous


def events_table(callbacks, muted: tuple = ()) -> dict[str, tuple]:
    """For each event, the callbacks that act on it, in order: those with a method of that name
    (or their own ``__call__``), less the ``muted`` ones. The loop sends an event to these only,
    so a callback pays nothing for the events it does not handle.

    >>> class A(Callback):
    ...     def after_batch(self): pass
    >>> a = A(); events_table([a, TrainEvalCallback()])["after_batch"][0] is a
    True
    >>> events_table([a], muted=(a,))["after_batch"]
    ()
    """
    silent = {id(cb) for cb in muted}

    def acts(cb, event: str) -> bool:
        own_call = type(cb).__call__ is not Callback.__call__
        return (own_call or getattr(type(cb), event, None) is not None) and id(cb) not in silent
    return {event: tuple(cb for cb in callbacks if acts(cb, event)) for event in EVENTS}


def _fire_cleanup(callbacks, error: BaseException | None) -> None:
    failures = []
    for cb in list(callbacks):
        try:
            cb("cleanup")
        except Exception as failure:  # the others still clean up
            failures.append((cb, failure))
    if failures and error is None:
        raise failures[0][1]
    for cb, failure in failures:
        warnings.warn(f"{type(cb).__name__}.cleanup failed after {type(error).__name__}: {failure!r}",
                      RuntimeWarning, stacklevel=4)


def training_loop_text(callbacks) -> str:
    """The loop's events as an indented tree, each with the callbacks that act on it."""
    lines = []
    for depth, step in LOOP_TREE:
        names = [type(cb).__name__ for cb in callbacks if hasattr(type(cb), step)]
        lines.append("   " * depth + step + (f": {names}" if names else ""))
    return "\n".join(lines)


def _as_tuple(x) -> tuple:
    if x is None:
        return ()
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


def sort_callbacks(callbacks: list[Callback]) -> list[Callback]:
    """Order by ``order``, then move callbacks so every ``run_before``/``run_after`` holds.

    >>> class A(Callback): order = 1
    >>> class B(Callback): run_before = A
    >>> [type(c).__name__ for c in sort_callbacks([A(), B()])]
    ['B', 'A']
    """
    ordered = sorted(callbacks, key=lambda cb: cb.order)
    for _ in range(len(ordered) ** 2 + 1):
        moved = False
        for i, cb in enumerate(ordered):
            for j, other in enumerate(ordered):
                must_precede = (isinstance(other, _as_tuple(cb.run_before))
                                or isinstance(cb, _as_tuple(other.run_after)))
                if must_precede and j < i:
                    ordered.insert(j, ordered.pop(i))
                    moved = True
                    break
            if moved:
                break
        if not moved:
            return ordered
    raise ValueError(f"callbacks {ordered} have run_before/run_after constraints that form a cycle")


class TrainEvalCallback(Callback):
    """Switches the model between train and eval mode and keeps the iteration counters. A fit
    that ends with an exception leaves the model in the mode it had before the fit. Validation
    puts the model in eval mode unless it is already there (its top module is not training), so
    repeated ``predict`` calls do not walk every module each time."""

    order = -10
    _mode_before: bool | None = None

    def before_fit(self):
        self.learn.train_iter = self.learn.start_epoch * len(self.dls.train) if self.dls.train else 0
        self.learn.pct_train = 0.0
        self._mode_before = self.model.training

    def after_fit(self):
        self._mode_before = None  # finished: the model stays in the mode of its last phase

    def cleanup(self):
        self.learn.training = False
        if self._mode_before is not None:
            self.model.train(self._mode_before)
            self._mode_before = None

    def before_train(self):
        self.learn.pct_train = self.epoch / self.n_epoch
        self.model.train()
        self.learn.training = True

    def after_batch(self):
        learn = self.learn
        if not learn.training:
            return
        learn.pct_train += 1.0 / (learn.n_iter * learn.n_epoch)
        learn.train_iter += 1

    def before_validate(self):
        if self.model.training:  # a model already in eval mode is not walked again (predict, get_preds)
            self.model.eval()
        self.learn.training = False
