"""``SanityCheckCallback``: the checks that run before and at the start of training, so a mistake
in the data or the model is an error that says what to change instead of a run that trains
nothing, trains silently wrong, or fails deep inside torch. Every Learner has one.

- Before training: an empty training set is an error, and so is a classifier's data of one class
  (its loss is 0 whatever the weights); a batch size larger than the training set
  (whose last partial batch the loader would drop, leaving no batch at all) keeps that partial
  batch instead, with a warning.
- On the first batch of each phase (training, validation, ``get_preds`` and ``predict``): the
  model's output must fit the targets: every target class within the class scores, at least as
  many class scores as the data has classes (exactly as many for one label per item), as many
  values per item as a regression, multi-label or key-point target has.
- After each epoch's training phase: an epoch whose loader gave no batch is an error, not a row of
  the results table; one whose batches callbacks all cancelled is a warning.

Turn it off with ``learn.remove_cb(SanityCheckCallback)``.

Before the first training batch of a Learner's first fit, :func:`sanity_validate` runs
``Learner(sanity_val_steps=2)`` validation batches through the model, the loss and the metrics,
so a mistake in the validation path (a model output the targets or a metric cannot take) shows
within seconds instead of after a whole training epoch. A later fit runs it again only when
something it went through was replaced (the model, the validation loader, the loss function, a
metric) or a kind of callback it has not run with takes part (``fine_tune``'s second phase and
gradual unfreezing do not pay for it twice). It changes no weight and no random state; ``sanity_val_steps=0`` turns it off.
Callbacks see its validation events, with ``learn.sanity_checking`` True meanwhile.

>>> learn = Learner(dls, nn.Linear(4, 1))   # a model with 1 output for 3 classes   # doctest: +SKIP
>>> learn.fit(1)                                                                      # doctest: +SKIP
ValueError: the model gives 1 class score per item ... but the data has 3 classes ...; build the model with 3 outputs (n_out=3 ...)
"""
from __future__ import annotations

import math
import types
import warnings
import weakref

import torch
from torch import nn

from fastlearn.callback import Callback
from fastlearn.debugging import BatchLimit, dev_run_active
from fastlearn.losses import BaseLoss
from fastlearn.torch_core import get_rng_states, set_rng_states

CLASS_LOSSES = (nn.CrossEntropyLoss, nn.NLLLoss)
VALUE_KINDS = ("regression", "points", "multicategory")


def _short_list(items, limit: int = 6) -> str:
    items = list(items)
    return f"{items[:limit]}{'...' if len(items) > limit else ''}"


def target_kind(learn) -> str | None:
    """The kind of the data's first target ("category", "regression"...), when the loaders say."""
    n_inp = getattr(learn.dls, "n_inp", 1) or 1
    for dl in (learn.dls.train, getattr(learn.dls, "valid", None)):
        kinds = getattr(dl, "kinds", None)
        if kinds and len(kinds) > n_inp:
            return kinds[n_inp]
    return None


def _fix(n: int) -> str:
    return (f"build the model with {n} outputs (n_out={n} in vision_learner, unet_learner, tabular_learner "
            "or text_classifier_learner; leaving n_out unset takes it from the data, dls.c), or give a "
            "model of your own that many outputs")


def _class_axis(loss) -> tuple[int, int | None] | None:
    """``(class axis, ignore_index)`` when ``loss`` reads predictions as class scores; else None."""
    if isinstance(loss, BaseLoss) and loss.is_2d and not loss.floatify:
        return loss.axis, getattr(loss.func, "ignore_index", None)
    if isinstance(loss, CLASS_LOSSES):
        return 1, loss.ignore_index
    return None


def check_output_fits_targets(learn) -> None:
    """Compare ``learn.pred`` with ``learn.yb`` (and with the data's number of classes); raise a
    ValueError that says what to change when the model's output cannot fit the targets."""
    pred, kind, class_axis = learn.pred, target_kind(learn), _class_axis(learn.loss_func)
    if not isinstance(pred, torch.Tensor) or pred.ndim == 0:
        return
    target = learn.yb[0] if len(learn.yb) == 1 and isinstance(learn.yb[0], torch.Tensor) else None
    if class_axis is not None and target is not None and pred.ndim == target.ndim + 1 and \
            not target.is_floating_point() and target.dtype != torch.bool:
        _check_classes(learn, pred, target, *class_axis)
    elif target is not None and kind in VALUE_KINDS and pred.shape[:1] == target.shape[:1] and len(target):
        per_item, per_target = pred[0].numel(), target[0].numel()
        if per_item != per_target:
            raise ValueError(
                f"the model gives {per_item} value(s) per item (output shape {tuple(pred.shape)}) but each "
                f"{kind} target has {per_target} (target shape {tuple(target.shape)}); {_fix(per_target)}")
    c = getattr(learn.dls, "c", None)
    if class_axis is not None and isinstance(c, int) and c and pred.ndim == 2 and pred.shape[1] != c:
        extra = "the extra outputs have no label" if pred.shape[1] > c else "some classes have no output"
        raise ValueError(f"the model gives {pred.shape[1]} class scores per item but the data has {c} classes "
                         f"{_short_list(getattr(learn.dls, 'vocab', None) or [])} ({extra}); {_fix(c)}")


def _check_classes(learn, pred: torch.Tensor, target: torch.Tensor, axis: int, ignore: int | None) -> None:
    axis = axis % pred.ndim
    n_scores = pred.shape[axis]
    used = target[target != ignore] if ignore is not None else target
    highest, lowest = (int(used.max()), int(used.min())) if used.numel() else (-1, 0)
    c = getattr(learn.dls, "c", None)
    c = c if isinstance(c, int) and c > 0 else None
    if highest < n_scores and lowest >= 0 and (c is None or n_scores >= c):
        return
    seen = (f"this batch's targets include class {highest if highest >= n_scores else lowest}"
            if highest >= n_scores or lowest < 0 else "")
    known = f"the data has {c} classes" if c else ""
    raise ValueError(
        f"the model gives {n_scores} class score(s) per item (output shape {tuple(pred.shape)}, class axis "
        f"{axis}) but {' and '.join(x for x in (seen, known) if x)}; {_fix(max(c or 0, highest + 1))}")


def check_training_loader(learn) -> None:
    """An empty training set is an error; a loader that would drop its only, partial batch keeps it."""
    dl = learn.dls.train
    n = getattr(dl, "n", None)
    if n == 0:
        raise ValueError("the training set is empty, so there is nothing to train on; check the splitter "
                         "(valid_pct, train/valid folder names) and that the data has items")
    if len(dl) > 0:
        return
    if n is None or not getattr(dl, "drop_last", False):
        raise ValueError(f"the training loader {type(dl).__name__} yields no batch; check its dataset and "
                         "batch size")
    warnings.warn(
        f"the batch size bs={dl.bs} is larger than the {n} training items, and dropping the last partial "
        f"batch would leave no batch to train on: keeping it, so each epoch trains on one batch of {n}. "
        f"Pass a smaller bs (e.g. bs={max(1, n // 4)}) for several steps per epoch", RuntimeWarning, stacklevel=2)
    dl.drop_last = False


def check_several_classes(learn) -> None:
    """A class-score loss on data of one class is 0 for every item whatever the weights: an error."""
    c = getattr(learn.dls, "c", None)
    if c != 1 or _class_axis(learn.loss_func) is None:
        return
    vocab = list(getattr(learn.dls, "vocab", None) or [])
    raise ValueError(
        f"the data has one class {vocab}, so the loss ({type(learn.loss_func).__name__}) is 0 for every item and "
        "nothing can be learnt; a classifier needs at least two classes in its training data. Check the labels "
        "(a folder holding one class folder, a label function giving one value, a target column with one value), "
        "or use a regression target (RegressionBlock, y_block=RegressionBlock()) if the values are numbers")


class SanityCheckCallback(Callback):
    """The checks of :mod:`fastlearn.sanity`, on by default in every Learner (``learn.sanity_check``).

    >>> learn.remove_cb(SanityCheckCallback)   # turn them off   # doctest: +SKIP
    """

    order = -9  # right after TrainEvalCallback, before anything that reads predictions

    def __init__(self):
        self.checked, self.cancelled = False, False
        self.batches_run = self.batches_trained = 0
        self._passed_without_targets: tuple | None = None

    def before_fit(self):
        check_training_loader(self.learn)
        check_several_classes(self.learn)

    def before_train(self):
        self.checked, self.cancelled = False, False
        self.batches_run = self.batches_trained = 0

    def before_validate(self):
        self.checked = False

    def after_pred(self):
        if not self.checked:
            self.checked = True
            self.check_prediction()

    def check_prediction(self) -> None:
        """Check the learner's ``pred`` against its ``yb`` and the data (what ``after_pred`` does
        on a pass's first batch); ``learn.predict`` calls it when it runs no pass."""
        learn, pred = self.learn, self.learn.pred
        # without targets only the output's width is checked: once per model, data object and
        # width, so one predict after another pays nothing (reading ``dls.c`` may encode an item);
        # a ``dls.c`` set on the same data afterwards is checked by the next fit's first batch
        passed = self._passed_without_targets
        if (passed is not None and not len(learn.yb) and isinstance(pred, torch.Tensor)
                and passed[2] == pred.shape[1:] and passed[0].holds(learn.model) and passed[1].holds(learn.dls)):
            return
        check_output_fits_targets(learn)
        self._passed_without_targets = None if len(learn.yb) or not isinstance(pred, torch.Tensor) else (
            _Same(learn.model), _Same(learn.dls), pred.shape[1:])

    def after_batch(self):
        if self.learn.training:
            self.batches_run += 1

    def after_step(self):
        self.batches_trained += 1

    def after_cancel_train(self):
        self.cancelled = True

    def after_train(self):
        if self.cancelled or self.batches_trained:
            return
        if self.batches_run == 0:
            raise ValueError(
                f"epoch {self.epoch} ran no training batch (the training loader said {self.n_iter} and gave "
                "none), so nothing was trained and there is no result to report; check the training loader")
        warnings.warn(f"epoch {self.epoch}: none of its {self.batches_run} training batches reached the optimizer "
                      "step (a callback cancelled them); the weights did not change this epoch",
                      RuntimeWarning, stacklevel=2)


class _Same:
    """Whether an object is still the one seen when this was made, held weakly so that a replaced
    model or loader is not kept alive by the check."""

    def __init__(self, obj):
        try:
            self.ref = weakref.WeakMethod(obj) if isinstance(obj, types.MethodType) else weakref.ref(obj)
        except TypeError:  # a builtin function...: compared by equality, held
            self.ref = lambda obj=obj: obj

    def holds(self, obj) -> bool:
        seen = self.ref()
        return seen is obj or (seen is not None and type(seen) is type(obj) and seen == obj)


def validation_path(learn) -> tuple[tuple, frozenset]:
    """What the sanity validation goes through: the model, the validation loader, the loss
    function and each metric; and the kinds of callbacks (a fit's new scheduler is the same kind)."""
    return (learn.model, learn.dls.valid, learn.loss_func, *learn.metrics), frozenset(type(cb) for cb in learn.cbs)


def _checked_kinds(learn, parts) -> frozenset:
    """The kinds of callbacks that a sanity validation through these same parts ran with."""
    checked = getattr(learn, "_sanity_checked", None)
    if checked is None:
        return frozenset()
    seen, kinds = checked
    same = len(seen) == len(parts) and all(was.holds(part) for was, part in zip(seen, parts))
    return kinds if same else frozenset()


def sanity_validate(learn) -> None:
    """Run ``learn.sanity_val_steps`` validation batches (model, loss, metrics) before training,
    unless a fit of this learner already did through the same validation path with callbacks of
    the same kinds (see :func:`validation_path`); the random state is put back afterwards, so the run trains as it
    would without it. An error says it came from this check; a validation loss that is not finite
    is a warning."""
    n = learn.sanity_val_steps
    valid = learn.dls.valid if len(learn.dls) > 1 else None
    if not n or valid is None or not len(valid) or learn.start_epoch >= learn.n_epoch or dev_run_active(learn):
        return
    parts, kinds = validation_path(learn)
    checked = _checked_kinds(learn, parts)
    if checked and kinds <= checked:
        return
    states = get_rng_states()
    learn.sanity_checking = True
    try:
        with learn.no_logging():
            loss, *_ = learn.validate(cbs=[BatchLimit(n_valid=n)])
    except Exception as error:
        error.add_note(f"(raised by the sanity validation: {n} validation batches run through the model, the loss "
                       "and the metrics before the first training batch; Learner(..., sanity_val_steps=0) turns it "
                       "off)")
        raise
    finally:
        learn.sanity_checking = False
        set_rng_states(states)
    learn._sanity_checked = (tuple(_Same(part) for part in parts), kinds | checked)
    if loss is not None and not math.isfinite(loss):
        warnings.warn(f"the validation loss on the first {n} validation batches is {loss} before training; check the "
                      "validation data for NaN or infinite inputs and targets, and the loss function",
                      RuntimeWarning, stacklevel=3)
