"""Collecting predictions over a loader (``Learner.get_preds``).

``GatherPreds`` keeps every batch's predictions, targets and (optionally) inputs and per-item
losses, on the CPU, and concatenates them at the end. ``get_preds`` hands it to the learner for the
pass (``learn.gather_preds``), which feeds it after each batch's callbacks: nothing is added to or
removed from ``learn.cbs``. ``predict`` and ``predict_batch`` run through the same pass, or, where
no callback but the defaults acts during validation and the items fit in one batch, put the items'
batch straight through the model (:func:`predict_directly`): the same result without a loader.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import torch
from torch import nn

from fastlearn.callback import Callback, TrainEvalCallback
from fastlearn.losses import loss_activation, loss_decodes, loss_with_reduction
from fastlearn.precision import flushing_denormals
from fastlearn.progress import ProgressCallback
from fastlearn.recorder import Recorder
from fastlearn.sanity import SanityCheckCallback
from fastlearn.tracker import TerminateOnNaN
from fastlearn.torch_core import split_batch, to_cpu



def loss_without_reduction(loss_func: Callable) -> Callable:
    """The same loss giving one value per item."""
    return loss_with_reduction(loss_func, "none")


def _concat(batches: list, pad_value: int | float = 0, pad_first: bool = False):
    if not batches:
        return None
    first = batches[0]
    if isinstance(first, (tuple, list)):
        parts = [_concat([b[i] for b in batches], pad_value, pad_first) for i in range(len(first))]
        return parts[0] if len(parts) == 1 else tuple(parts)
    if isinstance(first, torch.Tensor):
        if first.ndim == 0:
            return torch.stack(batches)
        return torch.cat(_padded_alike(batches, pad_value, pad_first)) if len(batches) > 1 else first
    return batches


def _padded_alike(tensors: list[torch.Tensor], value: int | float, first: bool) -> list[torch.Tensor]:
    """``tensors`` padded with ``value`` to the largest size in every dimension after the first (at
    the start where ``first``): the batches of texts a loader pads each to its own longest text.

    >>> [t.tolist() for t in _padded_alike([torch.tensor([[5, 6, 7]]), torch.tensor([[8]])], 1, False)]
    [[[5, 6, 7]], [[8, 1, 1]]]
    """
    if len({t.ndim for t in tensors}) > 1:
        return tensors  # torch.cat says what does not fit
    shape = [max(sizes) for sizes in zip(*(t.shape[1:] for t in tensors))]
    if all(list(t.shape[1:]) == shape for t in tensors):
        return tensors
    padded = []
    for t in tensors:
        out = t.new_full((len(t), *shape), value)
        where = tuple(slice(n - size, n) if first else slice(0, size) for size, n in zip(t.shape[1:], shape))
        out[(slice(None), *where)] = t
        padded.append(out)
    return padded


class GatherPreds(Callback):
    """Keeps predictions, targets, and optionally inputs and per-item losses, batch by batch."""

    order = 70
    run_train = False

    def __init__(self, with_input: bool = False, with_loss: bool = False, per_item_loss: Callable | None = None):
        self.with_input, self.with_loss, self.per_item_loss = with_input, with_loss, per_item_loss
        self._preds, self._targets, self._inputs, self._losses = [], [], [], []
        self._back: torch.Tensor | None = None  # puts a loader's own order (item_order) back in item order
        self._pad_value, self._pad_first = 0, False  # how the loader pads inputs of different lengths
        self._source = None  # the loader followed, named when it gave no batch

    def before_validate(self):
        self._preds, self._targets, self._inputs, self._losses = [], [], [], []

    def follow(self, dl) -> None:
        """Gather from ``dl``: a loader that yields its items in an order of its own (a text
        loader's longest first: ``item_order``) gets its results put back in item order, and inputs
        padded per batch (texts) are padded as the loader pads them to one length."""
        self._source = dl
        order = getattr(dl, "item_order", None)
        self._back = torch.argsort(torch.as_tensor(order)) if order is not None else None
        padder = getattr(dl, "before_batch", None)
        self._pad_value, self._pad_first = getattr(padder, "pad_idx", 0), getattr(padder, "pad_first", False)

    def after_batch(self):
        pred = self.learn.pred
        self._preds.append(to_cpu(pred))
        if self.learn.yb:
            self._targets.append(to_cpu(self.learn.yb))
        if self.with_input:
            self._inputs.append(to_cpu(self.learn.xb))
        if self.with_loss and self.learn.yb:
            self._losses.append(to_cpu(self.per_item_loss(pred, *self.learn.yb)))

    def result(self, loss_func: Callable, with_decoded: bool = False, act: Callable | None = None) -> tuple:
        """``(inputs?, preds, targets, decoded?, losses?)``: what ``Learner.get_preds`` returns.

        Predictions go through ``act``, or else the loss's activation (softmax for cross-entropy).
        """
        if not self._preds:
            raise ValueError(_no_batches(self._source))
        preds = act(self.preds) if act is not None else loss_activation(loss_func, self.preds)
        result = ([self.inputs] if self.with_input else []) + [preds, self.targets]
        if with_decoded:
            result.append(loss_decodes(loss_func, preds))
        if self.with_loss:
            result.append(self.losses)
        return tuple(result)

    @property
    def preds(self):
        return self._in_item_order(_concat(self._preds))

    @property
    def targets(self):
        return self._in_item_order(_concat(self._targets))

    @property
    def inputs(self):
        return self._in_item_order(_concat(self._inputs, self._pad_value, self._pad_first))

    @property
    def losses(self):
        return self._in_item_order(_concat(self._losses))

    def _in_item_order(self, value):
        """``value`` (gathered in the loader's order) in item order, where the loader chose its own."""
        back = self._back
        if back is None or value is None:
            return value
        if isinstance(value, tuple):
            return tuple(self._in_item_order(v) for v in value)
        if isinstance(value, torch.Tensor) and value.ndim and len(value) == len(back):
            return value[back]
        return value


def _no_batches(dl) -> str:
    """Why ``get_preds`` has nothing to return: the loader gave no batch, and what to change."""
    what = f"{len(dl.dataset)} items, bs={dl.bs}" if hasattr(dl, "dataset") and hasattr(dl, "bs") else repr(dl)
    if hasattr(dl, "seq_len"):  # a language model's loader: bs rows of seq_len tokens cut from one stream
        return (f"get_preds: the language model's loader ({what}, seq_len={dl.seq_len}) gave no batch: its "
                f"texts hold fewer than bs + 1 tokens; pass more text, or test_dl(texts, bs=1)")
    return (f"get_preds: the loader ({what}) gave no batch, so there is nothing to predict; pass at least "
            f"one item (with drop_last=True, at least bs)")


def test_time_augmentation(learn, dl=None, n: int = 4, beta: float | None = 0.25, ds_idx: int = 1,
        use_max: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Test-time augmentation: predictions over ``n`` passes with the training augmentations, mixed
    with the plain predictions: ``(1 - beta) * augmented_mean + beta * plain``.

    ``use_max`` takes the element-wise maximum of the augmented passes instead of their mean;
    ``beta=None`` returns the augmented and plain predictions stacked. Returns ``(preds, targs)``.

    >>> preds, targs = tta(learn, n=4)   # doctest: +SKIP
    """
    dl = dl if dl is not None else learn.dls[ds_idx]
    if n < 1:
        raise ValueError(f"tta(n={n}): expected at least one augmented pass")
    dl = dl.new(shuffle=False, drop_last=False)  # the same order in every pass
    preds, targs = learn.get_preds(dl=dl)
    augmented_dl = dl.new()
    augmented_dl.split_idx = 0  # training transforms: random crops and batch augmentation
    passes = []
    for i in range(n):
        augmented_dl.epoch = i + 1
        passes.append(learn.get_preds(dl=augmented_dl)[0])
    stacked = torch.stack(passes)
    augmented = stacked.max(0).values if use_max else stacked.mean(0)
    if beta is None:
        return torch.stack([augmented, preds]), targs
    return torch.lerp(augmented, preds, beta), targs


# the events a validation pass sends (predict's pass is skipped only when no other callback acts on one)
VALIDATION_EVENTS = ("before_validate", "before_batch", "after_pred", "after_loss", "after_cancel_batch",
                     "after_batch", "after_cancel_validate", "after_validate", "cleanup")
# default callbacks whose work in a prediction's pass the direct prediction does itself, or that do
# nothing there without targets (the bars are muted in every such pass)
_DIRECT_SAFE = (TrainEvalCallback, Recorder, TerminateOnNaN, SanityCheckCallback)


class modes_put_back:  # noqa: N801  (used as a function: ``with modes_put_back(model):``)
    """A model in training mode gets every module's mode back after the block (a BatchNorm frozen in
    eval mode stays so); one in eval mode is not walked at all (a class, not a generator: predict
    enters it on every call)."""

    __slots__ = ("model", "modes")

    def __init__(self, model: nn.Module):
        self.model, self.modes = model, None

    def __enter__(self) -> None:
        self.modes = [m.training for m in self.model.modules()] if self.model.training else None

    def __exit__(self, *exc) -> bool:
        if self.modes is not None:
            for module, mode in zip(self.model.modules(), self.modes):
                module.training = mode
        return False


def predicts_directly(learn) -> bool:
    """Whether predictions may skip the validation pass: no loop is running, and every callback
    acting on a validation event is a default one whose work there :func:`predict_directly`
    does itself (eval mode, the output check) or that does nothing without targets."""
    return not learn.running and _direct_plan(learn)[0]


def _direct_plan(learn) -> tuple[bool, SanityCheckCallback | None]:
    """``(whether the callbacks allow a direct prediction, the output check to run)``, worked out
    once per set of callbacks: the learner's event table is rebuilt whenever they change."""
    table = learn._tables()[0]
    cached = getattr(learn, "_direct_plan_cache", None)
    if cached is not None and cached[0] is table:
        return cached[1]
    allowed, has_train_eval = True, False
    for event in VALIDATION_EVENTS:
        for cb in table[event]:
            if type(cb) not in _DIRECT_SAFE and not isinstance(cb, ProgressCallback):
                allowed = False
            has_train_eval = has_train_eval or type(cb) is TrainEvalCallback
    sanity = next((cb for cb in table["after_pred"] if isinstance(cb, SanityCheckCallback)), None)
    plan = (allowed and has_train_eval, sanity)
    learn._direct_plan_cache = (table, plan)
    return plan


def predict_directly(learn, items, bs: int | None = None) -> tuple | None:
    """``(inputs, predictions, decoded)`` for ``items`` as ``get_preds(dl=dls.test_dl(items),
    with_input=True, with_decoded=True)`` gives them, built without a loader or the pass: the items
    encoded as one batch (``dls.test_batch``), the model in eval mode (put back after), no
    gradients, subnormal floats flushed on a CPU, the output checked as on a pass's first batch;
    ``xb``, ``yb`` and ``pred`` are left set as the pass leaves them. None, having done nothing,
    where that cannot give the same as the pass (see :func:`predicts_directly`)."""
    test_batch = getattr(learn.dls, "test_batch", None)
    if test_batch is None or not predicts_directly(learn):
        return None
    with modes_put_back(learn.model), flushing_denormals(learn.device, learn.flush_denormal), torch.no_grad():
        batch = test_batch(items, bs=bs)
        if batch is None:
            return None
        if learn.model.training:  # as TrainEvalCallback.before_validate: eval mode, not walked again
            learn.model.eval()
        learn.training, learn.iter, learn.n_iter = False, 0, 1
        learn.pred = learn.loss = learn.loss_grad = None
        learn.xb, learn.yb = split_batch(batch, learn.dls.valid, learn.dls, learn.device)
        learn.pred = learn.model(*learn.xb)
        sanity = _direct_plan(learn)[1]
        if sanity is not None:
            sanity.check_prediction()
    # as GatherPreds keeps one batch, and its result() reads it
    preds = loss_activation(learn.loss_func, _concat([to_cpu(learn.pred)]))
    return _concat([to_cpu(learn.xb)]), preds, loss_decodes(learn.loss_func, preds)


def predict_items(learn, items, with_input: bool = False, bs: int | None = None) -> list[tuple]:
    """``learn.predict`` of each item, in batches of ``bs``: ``[(decoded_label, decoded_prediction,
    probabilities), ...]``, with the model's input first when ``with_input``; each label is read
    beside its item's input. The items go through the validation transforms in this process (a
    loader without workers builds its batches directly)."""
    items = list(items) if not hasattr(items, "iloc") else items
    if not len(items):
        raise ValueError("predict_batch got no items; pass a list of items (file paths, images, rows...)")
    # items that fit in one batch go straight to the model where that gives what the pass gives
    direct = predict_directly(learn, items, bs=bs)
    if direct is not None:
        inputs, preds, decoded = direct
    else:
        # in this process (no worker started per call), where the loaders' test_dl takes these arguments
        accepted = _parameters(type(learn.dls).test_dl)
        options = {name: value for name, value in (("bs", bs), ("num_workers", 0))
                   if value is not None and name in accepted}
        dl = learn.dls.test_dl(items, **options)
        inputs, preds, _, decoded = learn.get_preds(dl=dl, with_input=True, with_decoded=True)
    labels = learn.dls.decode_targets(inputs, decoded)
    results = [(label, decoded[i], preds[i]) for i, label in enumerate(labels)]
    if not with_input:
        return results
    return [(_item_of(inputs, i),) + result for i, result in enumerate(results)]


@functools.lru_cache(maxsize=64)
def _parameters(function) -> frozenset[str]:
    """The argument names of ``function`` (read once per function: predict calls this every time)."""
    return frozenset(inspect.signature(function).parameters)


def _item_of(batch, i: int):
    if isinstance(batch, (tuple, list)):
        return type(batch)(_item_of(part, i) for part in batch)
    return batch[i]
