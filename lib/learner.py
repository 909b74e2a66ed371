"""``Learner``: a model, data, a loss and an optimizer, trained by one loop that fires the events of
:mod:`fastlearn.callback`; schedules, bars, precision and distribution are callbacks.

>>> Learner(dls, model, loss_func=CrossEntropyLossFlat(), metrics=accuracy).fit_one_cycle(3)   # doctest: +SKIP
"""
from __future__ import annotations

import difflib
import gc
import inspect
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path as PlainPath

import torch
from torch import nn

from fastlearn.allocator import keep_freed_memory
from fastlearn.callback import (INNER_LOOP, Callback, CancelBackwardException, CancelBatchException,
                                CancelEpochException, CancelFitException, CancelStepException, CancelTrainException,
                                CancelValidException, TrainEvalCallback, as_callback, callbacks_added,
                                callbacks_muted, callbacks_removed, cleanup_after, events_table, sort_callbacks,
                                training_loop_text)
from fastlearn.callback.profiler import profile_learner
from fastlearn.config import get_config
from fastlearn.foundation import L, listify
from fastlearn.inference import (GatherPreds, loss_without_reduction, modes_put_back, predict_items,
                                 test_time_augmentation)
from fastlearn.losses import data_loss
from fastlearn.metrics import wrap_metric
from fastlearn.optimizer import (AdamW, check_hyper, check_lr, freeze_groups, make_optimizer, n_splitter_groups,
                                 norm_params, set_hyper, split_groups, splitter_groups, spread_lr)
from fastlearn.paths import Path
from fastlearn.progress import ProgressCallback, print_table_row
from fastlearn.recorder import Recorder
from fastlearn.registry import register_code
from fastlearn.sanity import SanityCheckCallback, sanity_validate
from fastlearn.schedule import LRFinder, ParamScheduler, flat_cos_scheds, one_cycle_scheds, sgdr_scheds
from fastlearn import checkpoint, lr_finder
from fastlearn.distributed import attach_if_launched, distrib_ctx
from fastlearn.debugging import debug_run, debug_settings
from fastlearn.deploy import export_onnx, export_torchscript
from fastlearn.export import export_learner
from fastlearn.precision import flushing_denormals, set_precision
from fastlearn.training import default_lr_mult, fine_tune
from fastlearn.summary import SummaryText, model_summary
from fastlearn.tracker import TerminateOnNaN
from fastlearn.training import compile_model, to_channels_last
from fastlearn.torch_core import default_device, is_main_process, split_batch, trainable_params

# on in every Learner; ``learn.remove_cb(TerminateOnNaN)`` (or any of them) turns one off
DEFAULT_CALLBACKS = (TrainEvalCallback, Recorder, ProgressCallback, TerminateOnNaN, SanityCheckCallback)
# the events around each stage of the loop, named once
_EVENT_NAMES = {name: (f"before_{name}", f"after_{name}", f"after_cancel_{name}")
                for name in ("fit", "epoch", "train", "validate", "batch", "backward", "step")}

class Learner:
    """Trains ``model`` on ``dls`` with ``loss_func`` and an optimizer made by ``opt_func``.

    - ``loss_func=None`` takes the loss the data inferred from its target block (``dls.loss_func``).
    - ``splitter(model)`` returns the parameter groups (body / head...) that ``freeze``,
      ``freeze_to`` and discriminative learning rates (``lr=slice(lo, hi)``) act on.
    - ``wd`` overrides the optimizer's weight decay; norm layers and biases get none unless
      ``wd_bn_bias``; with ``train_bn`` the norm layers of frozen groups still train.
    - ``cbs`` takes callbacks or callback classes; ``metrics`` takes functions or ``Metric``s.
    - ``device`` (default: the config's, "auto" = CUDA, then MPS, then CPU).
    - ``precision``: "fp32", "fp16" or "bf16" (default: the config's).
    - ``learn.flush_denormal``: on a CPU, subnormal floats are computed as zero while it trains
      or predicts (the config's ``flush_denormal``, read when the learner is built; settable).
    - Default callbacks: a NaN or infinite training loss stops training before that batch changes
      the weights (``TerminateOnNaN``), and ``SanityCheckCallback`` checks the loaders and the
      model's output against the targets on the first batch; ``learn.remove_cb(...)`` turns either off.
    - Debugging (:mod:`fastlearn.debugging`): ``sanity_val_steps`` validation batches run before
      the first training batch (once per validation path, :mod:`fastlearn.sanity`; 0 turns it
      off); ``fast_dev_run`` (True, or n) makes each fit one epoch of 1 (n) batches that writes
      nothing; ``overfit_batches=n`` trains and validates on the same n batches.
    - A custom training step (two optimizers for a GAN...): override :meth:`training_step`.

    >>> learn = Learner(dls, nn.Linear(2, 1), loss_func=MSELossFlat())   # doctest: +SKIP
    """

    sanity_checking = False  # True during the validation batches run before training (fastlearn.sanity)

    def __init__(self, dls, model: nn.Module, loss_func: Callable | None = None, opt_func: Callable = AdamW,
                 lr: float = 1e-3, splitter: Callable[[nn.Module], list] = trainable_params,
                 cbs: Iterable | Callback | type | None = None, metrics=None, path=None,
                 model_dir: str | PlainPath = "models", wd: float | None = None, wd_bn_bias: bool = False,
                 train_bn: bool = True, moms: Sequence[float] = (0.95, 0.85, 0.95),
                 device: torch.device | str | None = None, precision: str | None = None, sanity_val_steps: int = 2,
                 fast_dev_run: bool | int = False, overfit_batches: int = 0):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model should be a torch.nn.Module, got {type(model).__name__}")
        self.dls, self.model = dls, model
        self.loss_func = loss_func if loss_func is not None else data_loss(dls)
        check_lr(lr)  # a NaN, infinite or negative rate fails here, not after a step
        if wd is not None:
            check_hyper("wd", wd)
        self.opt_func, self.lr, self.splitter = opt_func, lr, splitter
        self.wd, self.wd_bn_bias, self.train_bn, self.moms = wd, wd_bn_bias, train_bn, moms
        self.path = Path(path if path is not None else getattr(dls, "path", "."))
        self.model_dir = PlainPath(model_dir)
        self.opt: torch.optim.Optimizer | None = None
        self.extra_opts: list[torch.optim.Optimizer] = []
        self.sanity_val_steps, self.fast_dev_run, self.overfit_batches = debug_settings(
            sanity_val_steps, fast_dev_run, overfit_batches)
        self.logger: Callable | None = print_table_row
        self.training, self.epoch, self.n_epoch, self.start_epoch = False, 0, 1, 0
        self.iter, self.n_iter, self.train_iter, self.pct_train = 0, 0, 0, 0.0
        self.epochs_done, self.epoch_base = 0, 0
        self.xb, self.yb = (), ()
        self.pred = self.loss = self.loss_grad = None
        self.smooth_loss = float("nan")
        self.metrics = metrics
        self.muted: tuple[Callback, ...] = ()  # callbacks sent no event for now (``no_bar``)
        self.cbs = L()
        self.running = 0  # loops running now (a validate called inside a fit is nested in it)
        self.gather_preds: GatherPreds | None = None  # what get_preds keeps, batch by batch (read under DDP)
        self.to(device)
        self.add_cbs([cb() for cb in DEFAULT_CALLBACKS] + listify(cbs))
        config = get_config()
        # on a CPU, subnormal floats computed as zero while it trains or predicts (read once, here)
        self.flush_denormal: bool = config.get("defaults", "flush_denormal")
        set_precision(self, precision if precision is not None else config.get("defaults", "precision"))
        attach_if_launched(self)  # under torchrun with several processes: DDP, no code change

    # --- metrics, callbacks --------------------------------------------------------------------

    @property
    def metrics(self) -> L:
        return self._metrics

    @metrics.setter
    def metrics(self, metrics) -> None:
        self._metrics = L([wrap_metric(m) for m in listify(metrics)])

    @property
    def cbs(self) -> L:
        """The callbacks, in the order they run."""
        return self._cbs

    @cbs.setter
    def cbs(self, cbs) -> None:
        self._cbs = L(cbs)
        self._events_tables: dict[tuple, tuple[int, dict, dict]] = {}

    def callbacks_for(self, event: str) -> tuple[Callback, ...]:
        """The callbacks that act on ``event`` now (those with a method for it, not muted), in order;
        the table is built once per set of callbacks, so the loop skips the others for free."""
        return self._tables()[0][event]

    def _handlers(self, event: str) -> tuple[tuple[Callback, Callable | None], ...]:
        """``(callback, its method for event)`` pairs of :meth:`callbacks_for` (None for a callback
        with its own ``__call__``), so the loop calls the method without going through ``__call__``."""
        return self._tables()[1][event]

    def _tables(self) -> tuple[dict, dict]:
        cached = self._events_tables.get(self.muted)
        if cached is None or cached[0] != len(self._cbs):  # also catches learn.cbs changed in place
            table = events_table(self._cbs, self.muted)
            handlers = {event: tuple((cb, None if type(cb).__call__ is not Callback.__call__
                                      else getattr(type(cb), event)) for cb in cbs)
                        for event, cbs in table.items()}
            cached = self._events_tables[self.muted] = (len(self._cbs), table, handlers)
        return cached[1], cached[2]

    def add_cb(self, cb: Callback | type) -> "Learner":
        """Add a callback (an instance or a class); it is reachable as ``learn.<its name>``."""
        cb = as_callback(cb, owner=self)
        existing = getattr(self, cb.name, None)
        if isinstance(existing, Callback) and existing in self.cbs:
            self.remove_cb(existing)
        cb.learn = self
        setattr(self, cb.name, cb)
        self.cbs = L(sort_callbacks(list(self.cbs) + [cb]))
        return self

    def add_cbs(self, cbs) -> "Learner":
        for cb in listify(cbs):
            self.add_cb(cb)
        return self

    def remove_cb(self, cb: Callback | type) -> "Learner":
        """Remove a callback instance, or every callback of a class."""
        targets = [c for c in self.cbs if (isinstance(c, cb) if isinstance(cb, type) else c is cb)]
        for target in targets:
            target.learn = None
            if getattr(self, target.name, None) is target:
                delattr(self, target.name)
        self.cbs = L([c for c in self.cbs if all(c is not t for t in targets)])
        return self

    def remove_cbs(self, cbs) -> "Learner":
        for cb in listify(cbs):
            self.remove_cb(cb)
        return self

    def added_cbs(self, cbs):
        """Callbacks added for the duration of a ``with`` block; one they replace (a default
        callback of the same name) comes back after it."""
        return callbacks_added(self, cbs)

    def removed_cbs(self, cbs):
        """Callbacks taken out for the duration of a ``with`` block."""
        return callbacks_removed(self, cbs)

    def __call__(self, event: str) -> None:
        # what Callback.__call__ does, inlined: the loop sends about ten events a batch
        inner, training = event in INNER_LOOP, self.training
        for cb, method in self._handlers(event):
            if method is None:
                cb(event)
            elif not inner or (cb.run_train if training else cb.run_valid):
                method(cb)

    def show_training_loop(self) -> None:
        """Print the loop's events, in order, with the callbacks that act on each."""
        print(training_loop_text(self.cbs))

    # --- device, optimizer, freezing -------------------------------------------------------------

    def to(self, device: torch.device | str | None = None) -> "Learner":
        """Put the model and the data on ``device`` (None: the config's default)."""
        self.device = default_device(device)
        self.model.to(self.device)
        if hasattr(self.dls, "to"):
            self.dls.to(self.device)
        return self

    def param_groups(self) -> list[list[nn.Parameter]]:
        """The splitter's groups of parameters."""
        return splitter_groups(self.splitter, self.model)

    def create_opt(self) -> None:
        """Build the optimizer over the splitter's groups (weight decay off for norm / bias params)."""
        self.opt = make_optimizer(self.opt_func, split_groups(self.param_groups(), self.model, self.wd_bn_bias),
                                  lr=self.lr)
        if self.wd is not None:
            set_hyper(self.opt, "wd", self.wd)
        self.freeze_to(getattr(self, "_frozen_to", 0))

    def freeze_to(self, n: int) -> None:
        """Freeze the parameter groups before ``n`` (negative counts from the end)."""
        self._frozen_to = n
        if self.opt is None:
            self.create_opt()
        freeze_groups(self.param_groups(), n, keep=norm_params(self.model) if self.train_bn else set())

    def freeze(self) -> None:
        """Freeze every parameter group but the last (the head)."""
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        """Train every parameter group."""
        self.freeze_to(0)

    # --- the loop --------------------------------------------------------------------------------

    def _with_events(self, f: Callable, name: str, exception: type) -> None:
        before, after, after_cancel = _EVENT_NAMES[name]
        try:
            self(before)
            f()
        except exception:
            self(after_cancel)
        self(after)

    def _backward(self) -> None:
        self.loss_grad.backward()

    def _step(self) -> None:
        self.opt.step()

    def _do_one_batch(self) -> None:
        if self.training and len(self.yb):
            self.training_step()
            return
        self.pred = self.model(*self.xb)
        self("after_pred")
        if len(self.yb):
            self.loss_grad = self.loss_func(self.pred, *self.yb)
            self.loss = self.loss_grad.detach()
        self("after_loss")

    def training_step(self) -> None:
        """One training batch: the forward pass (``after_pred``), :meth:`backward`, :meth:`step`.
        Override it for a custom step (a GAN's two updates: ``docs/custom_training_step.md``), with
        ``self.backward(loss)`` and ``self.step(opt)`` for each update so precision, clipping and the
        NaN check act on it, and the other optimizers in ``self.extra_opts`` for the schedules."""
        self.pred = self.model(*self.xb)
        self("after_pred")
        self.backward(self.loss_func(self.pred, *self.yb))
        self.step()

    def backward(self, loss: torch.Tensor) -> None:
        """Make ``loss`` the batch's loss (``self.loss``; ``after_loss`` fires), then run its backward
        pass between ``before_backward`` and ``after_backward``.

        During ``after_loss`` ``self.loss`` is the loss the gradients come from, as in the book: a
        callback that adds a penalty to it (``self.learn.loss += penalty``) trains on the sum; one
        that sets ``self.learn.loss_grad`` trains on that and leaves the recorded loss alone."""
        self.loss_grad = self.loss = loss
        self("after_loss")
        if self.loss_grad is loss and self.loss is not loss and getattr(self.loss, "requires_grad", False):
            self.loss_grad = self.loss  # a callback replaced the loss with one that has gradients
        if isinstance(self.loss, torch.Tensor):
            self.loss = self.loss.detach()  # no copy: one kernel less a batch on a GPU
        self._with_events(self._backward, "backward", CancelBackwardException)

    def step(self, opt: torch.optim.Optimizer | None = None) -> None:
        """Step ``opt`` (default: ``self.opt``) between ``before_step`` and ``after_step``, then zero
        its gradients; callbacks see it as ``self.opt`` meanwhile."""
        main, self.opt = self.opt, (opt if opt is not None else self.opt)
        try:
            self._with_events(self._step, "step", CancelStepException)
            self.opt.zero_grad(set_to_none=True)
        finally:
            self.opt = main

    @property
    def opts(self) -> list[torch.optim.Optimizer]:
        """Every optimizer that ``fit`` and the schedules set: ``opt``, then ``extra_opts``."""
        return ([self.opt] if self.opt is not None else []) + list(self.extra_opts)

    @property
    def x(self) -> torch.Tensor:
        """The batch's first input, ``xb[0]``, as callbacks left it (the book's ``learn.x``);
        assigning it replaces ``xb[0]``.

        >>> class Double(Callback):             # doctest: +SKIP
        ...     def before_batch(self): self.learn.x = self.x * 2
        """
        return _first_of(self.xb, "x", "there is no batch yet (learn.xb is ()); read it in a callback from "
                         "before_batch on, or set learn.xb")

    @x.setter
    def x(self, value: torch.Tensor) -> None:
        self.xb = (value, *self.xb[1:])

    @property
    def y(self) -> torch.Tensor:
        """The batch's first target, ``yb[0]``, as callbacks left it (the book's ``learn.y``);
        assigning it replaces ``yb[0]``.

        >>> class Smooth(Callback):             # doctest: +SKIP
        ...     def before_batch(self): self.learn.y = self.y.float() * 0.9
        """
        return _first_of(self.yb, "y", "this batch has no target (learn.yb is ()), as batches of a test_dl or "
                         "predict have none, or no batch ran yet; check `if self.yb:` first")

    @y.setter
    def y(self, value: torch.Tensor) -> None:
        self.yb = (value, *self.yb[1:])

    def one_batch(self, i: int, batch) -> None:
        self.iter = i
        self.pred = self.loss = self.loss_grad = None  # a batch cancelled early has none of its own
        self.xb, self.yb = split_batch(batch, self.dl, self.dls, self.device)
        self._with_events(self._do_one_batch, "batch", CancelBatchException)
        if self.gather_preds is not None and not self.training:
            self.gather_preds.after_batch()  # get_preds: after every callback's after_batch

    def all_batches(self) -> None:
        self.n_iter = len(self.dl)
        for i, batch in enumerate(self.dl):
            self.one_batch(i, batch)

    def _do_epoch_train(self) -> None:
        self.dl = self.dls.train
        if hasattr(self.dl, "set_epoch"):
            self.dl.set_epoch(self.epoch_base + self.epoch)
        self._with_events(self.all_batches, "train", CancelTrainException)

    def _do_epoch_validate(self, ds_idx: int = 1, dl=None) -> None:
        self.dl = dl if dl is not None else self.dls[ds_idx]
        with torch.no_grad():
            self._with_events(self.all_batches, "validate", CancelValidException)

    def _do_epoch(self) -> None:
        self.epochs_done += 1
        self._do_epoch_train()
        if len(self.dls) > 1 and self.dls.valid is not None and len(self.dls.valid):
            self._do_epoch_validate()

    def _do_fit(self) -> None:
        sanity_validate(self)
        for epoch in range(self.start_epoch, self.n_epoch):
            self.epoch = epoch
            self._with_events(self._do_epoch, "epoch", CancelEpochException)

    def fit(self, n_epoch: int, lr: float | slice | None = None, wd: float | None = None, cbs=None,
            reset_opt: bool = False, start_epoch: int = 0, fast_dev_run: bool | int | None = None) -> None:
        """Train for ``n_epoch`` epochs at a constant learning rate ``lr`` (default ``self.lr``).

        ``start_epoch`` resumes a run from a checkpoint: epochs before it are skipped and the
        schedules continue from where they were. ``fast_dev_run`` (True or n) overrides the
        learner's for this fit: one epoch of 1 (n) batches, nothing written, a one-line report.
        """
        if not isinstance(n_epoch, int) or n_epoch < 0:
            raise ValueError(f"n_epoch={n_epoch!r}; expected a non-negative int")
        if not 0 <= start_epoch <= n_epoch:
            raise ValueError(f"start_epoch={start_epoch} must lie between 0 and n_epoch={n_epoch}")
        if wd is not None:
            check_hyper("wd", wd)
        lrs = self._lr_array(lr, reset_opt)
        for opt in self.opts:
            if wd is not None:
                set_hyper(opt, "wd", wd)
            set_hyper(opt, "lr", lrs)
        self.n_epoch, self.start_epoch = n_epoch, start_epoch
        # the loaders' epoch counts on across fits (and from a checkpoint's epochs when resuming)
        self.epoch_base = self.epochs_done - start_epoch
        if self.device.type == "cpu":
            keep_freed_memory()  # once per process (fastlearn.allocator)
        with (self.added_cbs(cbs), debug_run(self, fast_dev_run), cleanup_after(self),
              flushing_denormals(self.device, self.flush_denormal)):
            self._with_events(self._do_fit, "fit", CancelFitException)

    def _lr_array(self, lr, reset_opt: bool = False):
        """One learning rate per param group (building the optimizer first if needed)."""
        if reset_opt or self.opt is None:
            self.create_opt()
        return spread_lr(self.lr if lr is None else lr, n_splitter_groups(*self.opts))

    # --- schedules ---------------------------------------------------------------------------------

    def fit_one_cycle(self, n_epoch: int, lr_max: float | slice | None = None, div: float = 25.0,
                      div_final: float = 1e5, pct_start: float = 0.25, wd: float | None = None,
                      moms: Sequence[float] | None = None, cbs=None, reset_opt: bool = False,
                      start_epoch: int = 0) -> None:
        """One-cycle training: lr warms up from ``lr_max/div`` to ``lr_max`` over ``pct_start`` of
        training, then anneals to ``lr_max/div_final``; momentum cycles ``moms`` the other way."""
        scheds = one_cycle_scheds(self._lr_array(lr_max, reset_opt), div, div_final, pct_start,
                                  self.moms if moms is None else moms)
        self.fit(n_epoch, lr=None, wd=wd, cbs=[ParamScheduler(scheds)] + listify(cbs), start_epoch=start_epoch)

    def fit_flat_cos(self, n_epoch: int, lr: float | slice | None = None, div_final: float = 1e5,
                     pct_start: float = 0.75, wd: float | None = None, cbs=None, reset_opt: bool = False,
                     start_epoch: int = 0) -> None:
        """A flat learning rate for ``pct_start`` of training, then cosine annealing to ``lr/div_final``."""
        scheds = flat_cos_scheds(self._lr_array(lr, reset_opt), div_final, pct_start)
        self.fit(n_epoch, wd=wd, cbs=[ParamScheduler(scheds)] + listify(cbs), start_epoch=start_epoch)

    def fit_sgdr(self, n_cycles: int, cycle_len: int, lr_max: float | slice | None = None,
                 cycle_mult: int = 2, wd: float | None = None, cbs=None, reset_opt: bool = False,
                 start_epoch: int = 0) -> None:
        """SGD with warm restarts: ``n_cycles`` cosine cycles, each ``cycle_mult`` times longer."""
        scheds, n_epoch = sgdr_scheds(self._lr_array(lr_max, reset_opt), n_cycles, cycle_len, cycle_mult)
        self.fit(n_epoch, wd=wd, cbs=[ParamScheduler(scheds)] + listify(cbs), start_epoch=start_epoch)

    def fine_tune(self, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1, lr_mult: float | None = None,
                  pct_start: float = 0.3, div: float = 5.0, wd: float | None = None, cbs=None,
                  clean_epochs: int | None = None) -> None:
        """Transfer learning: ``freeze_epochs`` of one-cycle on the head with the body frozen, then
        ``epochs`` unfrozen with rates ``slice(base_lr/2/lr_mult, base_lr/2)``, the last
        ``clean_epochs`` without training-only transforms (:func:`~fastlearn.training.fine_tune`)."""
        fine_tune(self, epochs, base_lr, freeze_epochs, lr_mult, pct_start, div, wd, cbs, clean_epochs)

    def default_lr_mult(self, epochs: int) -> float:
        """``fine_tune(epochs)``'s ``lr_mult`` when none is passed (:func:`~fastlearn.training.body_lr_mult`)."""
        return default_lr_mult(self, epochs)

    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100, stop_div: bool = True,
                show_plot: bool = True, suggest_funcs: Sequence[Callable] | None = None):
        """Train briefly with an exponentially rising learning rate, then put the model and
        optimizer back as they were; returns the suggested learning rates as a named tuple."""
        return lr_finder.run_lr_find(self, LRFinder(start_lr, end_lr, num_it, stop_div), show_plot, suggest_funcs)

    def profile(self, n_batches: int = 10, skip: int = 1, trace_path: str | None = "profile_trace.json",
                show: bool = True):
        """Time ``n_batches`` training batches (after ``skip`` warm-up ones) part by part (data, forward,
        loss, backward, optimizer, callbacks), print and return the table, write a Chrome trace to
        ``path/trace_path`` (None: no trace); the weights and optimizer are put back afterwards."""
        return profile_learner(self, n_batches=n_batches, skip=skip, trace_path=trace_path, show=show)

    # --- inference -----------------------------------------------------------------------------------

    def get_preds(self, ds_idx: int = 1, dl=None, with_input: bool = False, with_decoded: bool = False,
                  with_loss: bool = False, act: Callable | None = None, cbs=None):
        """Predictions and targets over a whole loader: ``(preds, targs)`` plus, when asked,
        the inputs first, the decoded predictions and the per-item losses, in that order.

        Predictions go through the loss's activation (softmax for cross-entropy) unless ``act``.
        Decoded predictions are the loss's decoding (class indices, 0/1 labels; regression outputs
        and key points as they are, in the targets' scale), so they compare with the targets;
        ``dls.decode_targets(inputs, decoded)`` reads them as ``predict`` does (names, pixels).
        """
        gather = GatherPreds(with_input=with_input, with_loss=with_loss,
                             per_item_loss=loss_without_reduction(self.loss_func) if with_loss else None)
        self._validation_pass(ds_idx, dl, cbs, gather)
        return gather.result(self.loss_func, with_decoded=with_decoded, act=act)

    def tta(self, dl=None, n: int = 4, beta: float | None = 0.25, ds_idx: int = 1, use_max: bool = False):
        """Test-time augmentation: ``(preds, targs)`` mixing ``n`` passes with the training
        augmentations and the plain predictions: ``(1 - beta) * augmented + beta * plain``."""
        return test_time_augmentation(self, dl=dl, n=n, beta=beta, ds_idx=ds_idx, use_max=use_max)

    def show_results(self, ds_idx: int = 1, dl=None, max_n: int = 9, figsize: tuple[float, float] | None = None,
                     nrows: int | None = None):
        """Show inputs with their targets and predictions in one figure (the data's blocks draw
        them); the loaders of texts return a table instead, which a notebook shows."""
        return self.dls.show_results(self, max_n=max_n, figsize=figsize, ds_idx=ds_idx, nrows=nrows, dl=dl)

    def predict(self, item, with_input: bool = False):
        """Predict one raw item: returns ``(decoded_label, decoded_prediction, probabilities)``;
        the label is read beside the item's input (a class name; key points in the image's pixels).

        The item goes through the validation transforms straight to the model, in eval mode and
        without gradients, with no loader built; where a callback other than the defaults acts
        during validation (mixed precision, channels-last, a user's own...), or the loaders have a
        ``test_dl`` of their own, it runs the full validation pass over ``dls.test_dl([item])``
        so those see its events. Both ways give the same result.
        """
        return predict_items(self, [item], with_input=with_input)[0]

    def predict_batch(self, items, with_input: bool = False, bs: int | None = None) -> list[tuple]:
        """Predict many raw items in batches of ``bs`` (default: the validation loader's): one
        ``(decoded_label, decoded_prediction, probabilities)`` per item, as :meth:`predict` gives
        for each alone, in a fraction of the time (what a server answering requests calls).

        >>> [label for label, _, _ in learn.predict_batch(files)]   # doctest: +SKIP
        ['cat', 'dog', 'cat']
        """
        return predict_items(self, items, with_input=with_input, bs=bs)

    def validate(self, ds_idx: int = 1, dl=None, cbs=None) -> list:
        """The validation loss and metrics, ``[valid_loss, *metrics]``, on ``dls[ds_idx]`` or ``dl``."""
        self._validation_pass(ds_idx, dl, cbs)
        return [self.recorder.loss_meter.value] + [m.value for m in self.metrics]

    def _validation_pass(self, ds_idx: int, dl, cbs, gather: GatherPreds | None = None) -> None:
        """One pass over ``dl`` (or ``dls[ds_idx]``) without gradients, bars or logging; ``gather``
        keeps each batch's predictions. A model in training mode is put back in it afterwards,
        every module as it was; one already in eval mode is not walked at all."""
        dl = self.dls[ds_idx] if dl is None else dl
        if gather is not None:
            gather.learn = self
            gather.follow(dl)
        previous, self.gather_preds = self.gather_preds, gather
        try:
            with (modes_put_back(self.model), self.no_bar(), self.no_logging(), self.added_cbs(cbs),
                  cleanup_after(self), flushing_denormals(self.device, self.flush_denormal)):
                self._do_epoch_validate(dl=dl)
        finally:
            self.gather_preds = previous

    def no_bar(self):
        """Hide the progress bars inside a ``with`` block (the progress callbacks stay in
        ``learn.cbs`` and get no event meanwhile)."""
        return callbacks_muted(self, [cb for cb in self.cbs if isinstance(cb, ProgressCallback)])

    def no_logging(self):
        """Silence the per-epoch table inside a ``with`` block."""
        return self.recorder.silenced()

    # --- saving and describing -------------------------------------------------------------------------

    def save(self, name: str, with_opt: bool = True) -> PlainPath:
        """Write the full training state to ``path/model_dir/name.pth``, atomically; returns the path."""
        return checkpoint.save_learner(self, name, with_opt=with_opt)

    def load(self, name: str, with_opt: bool = True, strict: bool = True) -> "Learner":
        """Restore what :meth:`save` wrote (``name`` or a path); returns the learner."""
        checkpoint.load_learner_state(self, name, with_opt=with_opt, strict=strict)
        return self

    def summary(self) -> SummaryText:
        """Layers, output shapes and parameter counts for one batch, as a ``str`` that a notebook
        shows as the table (its repr is the text); ``print(learn.summary())`` in a script."""
        return SummaryText(model_summary(self))

    # --- precision, hardware, distribution: one argument or one callback each --------------------

    def to_fp16(self) -> "Learner":
        """Mixed precision with float16 and a gradient scaler (bfloat16 on a CPU, said once)."""
        set_precision(self, "fp16")
        return self

    def to_bf16(self) -> "Learner":
        """Mixed precision with bfloat16 (CUDA or CPU), no scaler."""
        set_precision(self, "bf16")
        return self

    def to_fp32(self) -> "Learner":
        """Back to full precision."""
        set_precision(self, "fp32")
        return self

    def to_channels_last(self) -> "Learner":
        """Use the channels-last memory format for the model and its image batches."""
        to_channels_last(self)
        return self

    def compile(self, mode: str | None = None, fullgraph: bool = False, dynamic: bool | None = None,
                backend: str | Callable = "inductor") -> "Learner":
        """Compile the model with ``torch.compile`` (:func:`fastlearn.training.compile_model`);
        freeze / unfreeze keep working."""
        compile_model(self, mode=mode, fullgraph=fullgraph, dynamic=dynamic, backend=backend)
        return self

    def distrib_ctx(self, sync_bn: bool = True, timeout_s: float = 600.0):
        """Train with DistributedDataParallel inside this block (``with learn.distrib_ctx(): learn.fit(1)``)."""
        return distrib_ctx(self, sync_bn=sync_bn, timeout_s=timeout_s)

    @property
    def is_main_process(self) -> bool:
        """True outside a distributed run and on rank 0 inside one (the process that writes files)."""
        return is_main_process()

    def export(self, fname: str = "export.pkl") -> PlainPath:
        """Write weights plus a declarative description to ``path/fname``; see ``load_learner``."""
        return export_learner(self, fname)

    def export_onnx(self, fname: str = "model.onnx", fold_normalization: bool = True, activation: bool = False,
                    opset: int | None = None, example=None) -> PlainPath:
        """The model as ONNX, dynamic batch axis, normalization folded in (:mod:`fastlearn.deploy`)."""
        return export_onnx(self, fname, fold_normalization, activation, opset, example)

    def export_torchscript(self, fname: str = "model.pt", fold_normalization: bool = True, activation: bool = False,
                           example=None) -> PlainPath:
        """The model as TorchScript for ``torch.jit.load``, normalization folded in (:mod:`fastlearn.deploy`)."""
        return export_torchscript(self, fname, fold_normalization, activation, example)


register_code("learner", Learner)  # export files may name it (fastlearn.registry)


class _NoBatchPart(AttributeError, IndexError):
    """``learn.x`` / ``learn.y`` with no such part: an ``IndexError`` as in fastai (``xb[0]`` of an
    empty tuple), and an ``AttributeError`` so that ``hasattr`` and ``inspect`` see no attribute."""


def _first_of(parts: tuple, name: str, why: str):
    """``parts[0]`` for ``learn.x`` / ``learn.y``; an error that says ``why`` when empty."""
    if not parts:
        raise _NoBatchPart(f"learn.{name}: {why}")
    return parts[0]


def learner_kwargs(caller: str, kwargs: dict) -> dict:
    """``kwargs`` checked as arguments of :class:`Learner`, for an application learner
    (``vision_learner``, ``tabular_learner``, ...) that passes every ``Learner`` argument it does not
    set itself through to ``Learner`` unchanged. A name ``Learner`` does not take is a ``TypeError``
    that names the closest one.

    >>> learner_kwargs("vision_learner", {"train_bn": False, "precision": "bf16"})
    {'train_bn': False, 'precision': 'bf16'}
    """
    known = [name for name in inspect.signature(Learner).parameters if name not in ("dls", "model")]
    for name in kwargs:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"{caller}() got an unexpected keyword argument {name!r}.{hint} Besides its own "
                            f"arguments it takes those of Learner: {', '.join(known)}")
    return kwargs


# Importing torch and the library leaves a few hundred thousand objects that live as long as the
# process. Moved out of the collector's reach here, they are not walked again by the first full
# collection, which the first get_preds or fit of a process would otherwise pay (about 0.15 s).
gc.freeze()
