"""Callbacks that watch the run: stop on a NaN loss, save the best (or every) model, stop early.

>>> learn.fit_one_cycle(10, 1e-3, cbs=[TerminateOnNaN(), SaveModelCallback(monitor="accuracy"),
...                                    EarlyStoppingCallback(patience=3)])   # doctest: +SKIP

A checkpoint is never written from weights holding NaN or inf: the last good one is kept.
To resume a killed run from its last per-epoch checkpoint::

    name = latest_checkpoint(learn)            # "model_2", or None
    learn.load(name)
    learn.fit_one_cycle(5, 1e-3, start_epoch=learn.epoch + 1, cbs=SaveModelCallback(every_epoch=True))
"""
from __future__ import annotations

import math

import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from fastlearn.callback import Callback, CancelFitException
from fastlearn.checkpoint import checkpoint_path, unwrapped_model
from fastlearn.distributed import any_process, broadcast_value, is_distributed, rank_distrib
from fastlearn.recorder import Recorder


NAN_CHECKS = ("auto", "every_batch", "deferred")


class TerminateOnNaN(Callback):
    """Stop training at the first batch whose loss is NaN or inf, before that batch changes the
    weights; warns with the epoch and iteration, kept in ``nan_at``. Under DDP every process stops.
    Every Learner has one (``learn.terminate_on_nan``); ``learn.remove_cb(TerminateOnNaN)`` turns
    it off. ``TerminateOnNaNCallback`` is the same class.

    ``check``: "every_batch" reads the loss on the host at every batch, then stops; on a GPU that
    read waits for the device, once per step. "deferred" keeps the GPU busy: the check stays on
    the device, where the optimizer's fused step skips the update of a batch whose loss is not
    finite (its ``found_inf`` input, the one gradient scaling uses), and the host reads the flag
    one batch later, stopping before the next batch's step; the weights are the same, the run
    stops one batch later (and the Recorder has seen the bad loss). It needs fused optimizers
    (``torch.optim.AdamW(fused=True)``, fastlearn's default ``AdamW``) and no float16 gradient
    scaler. "auto" (the default) is "deferred" on CUDA where it can be, "every_batch" elsewhere
    (on a CPU the read costs nothing).

    >>> learn.fit(3, cbs=TerminateOnNaN())   # doctest: +SKIP
    """

    order = -5
    run_valid = False

    def __init__(self, check: str = "auto"):
        if check not in NAN_CHECKS:
            raise ValueError(f"TerminateOnNaN(check={check!r}); expected one of {NAN_CHECKS}")
        self.check = check
        self.nan_at: tuple[int, int] | None = None
        self.deferred = False
        self._pending: tuple[int, int, int] | None = None
        self._bad: torch.Tensor | None = None
        self._flag: torch.Tensor | None = None
        self._event = None
        self._armed: list[torch.optim.Optimizer] = []

    @property
    def name(self) -> str:
        return "terminate_on_nan"

    def before_fit(self):
        self.nan_at, self._pending, self._bad = None, None, None
        self._flag, self._event = None, None
        self.deferred = self._can_defer()

    def _can_defer(self) -> bool:
        if self.check == "every_batch":
            return False
        opts = self.learn.opts
        fused = bool(opts) and all(getattr(o, "_step_supports_amp_scaling", False) and o.defaults.get("fused")
                                   for o in opts)
        mixed = getattr(self.learn, "mixed_precision", None)
        scaler = bool(getattr(mixed, "uses_scaler", False))
        if self.check == "deferred":
            if not fused or scaler or is_distributed():
                raise ValueError("TerminateOnNaN(check='deferred') needs fused optimizers (AdamW(fused=True), "
                                 f"fastlearn's default AdamW; got {[type(o).__name__ for o in opts]}), no float16 "
                                 "gradient scaler and a single process; use check='every_batch'")
            return True
        return fused and not scaler and not is_distributed() and torch.device(self.learn.device).type == "cuda"

    def after_loss(self):
        learn = self.learn
        if learn.loss is None:
            return
        if self.deferred:
            self._read_pending()
            # 1.0 where the loss is NaN or inf (x * 0 is NaN for those alone), the float found_inf
            # that the fused step reads: two small kernels and a copy to the host, no wait
            bad = learn.loss.detach().mul(0).ne_(0)
            self._bad = (bad if bad.ndim == 0 else bad.amax()).float()
            if self._flag is None:  # one pinned buffer and one event, reused: read before refilled
                cuda = self._bad.device.type == "cuda"
                self._flag = torch.empty((), pin_memory=cuda)
                self._event = torch.cuda.Event() if cuda else None
            self._flag.copy_(self._bad, non_blocking=True)
            if self._event is not None:
                self._event.record()
            self._pending = (int(learn.epoch), int(learn.iter), int(learn.n_iter))
            return
        loss = learn.loss.detach()
        bad = not (math.isfinite(loss.item()) if loss.ndim == 0 else bool(torch.isfinite(loss).all()))
        if is_distributed():
            bad = any_process(bad, self.loss.device)
        if bad:
            self._stop(int(self.epoch), int(self.iter), int(self.n_iter),
                       float(self.loss.detach().float().mean()))

    def before_step(self):
        if self.deferred and self._bad is not None:
            opt = self.learn.opt
            opt.found_inf = self._bad  # the fused step leaves the weights alone where it is 1
            self._armed.append(opt)

    def _disarm(self):
        if self._armed:
            for opt in self._armed:
                if hasattr(opt, "found_inf"):
                    del opt.found_inf
            self._armed.clear()

    def after_step(self):
        self._disarm()

    def after_batch(self):
        self._disarm()
        self._bad = None

    def after_train(self):
        if self.deferred:
            self._read_pending()  # the epoch's last batch

    def cleanup(self):
        self._disarm()
        self._pending, self._bad = None, None

    def _read_pending(self):
        pending, self._pending = self._pending, None
        if pending is None:
            return
        epoch, iteration, n_iter = pending
        if self._event is not None:
            self._event.synchronize()  # the previous batch's loss: long computed by now
        if bool(self._flag):
            self._stop(epoch, iteration, n_iter, float("nan"))

    def _stop(self, epoch: int, iteration: int, n_iter: int, loss: float):
        self.nan_at = (epoch, iteration)
        if rank_distrib() == 0:
            shown = "not finite" if self.deferred else f"{loss} (or not finite on another process)"
            warnings.warn(
                f"TerminateOnNaN: the training loss is {shown} at epoch {epoch}, iteration {iteration} (batch "
                f"{iteration + 1} of {n_iter}); training stopped before this batch changed the weights. Lower the "
                "learning rate, clip gradients (GradientClip) or check this batch's data", RuntimeWarning,
                stacklevel=3)
        raise CancelFitException()


TerminateOnNaNCallback = TerminateOnNaN  # the course's name


def weights_are_finite(model: torch.nn.Module) -> bool:
    """True if no parameter or floating buffer holds NaN or inf.

    >>> weights_are_finite(torch.nn.Linear(2, 1))
    True
    """
    tensors = list(model.parameters()) + [b for b in model.buffers() if b.is_floating_point()]
    return all(bool(torch.isfinite(t.detach()).all()) for t in tensors)


class TrackerCallback(Callback):
    """Base class: follows ``monitor`` (a column of the metrics table, "valid_loss" by default)
    after each epoch; ``best`` holds its best value and ``new_best`` whether this epoch set it.

    ``comp`` compares a value with the best (default: ``np.less`` for names holding "loss" or
    "error", else ``np.greater``); ``min_delta`` is the improvement that counts.

    >>> TrackerCallback(monitor="accuracy").monitor   # doctest: +SKIP
    'accuracy'
    """

    order = 55
    run_after = Recorder

    def __init__(self, monitor: str = "valid_loss", comp: Callable | None = None, min_delta: float = 0.0,
                 reset_on_fit: bool = True):
        if comp is None:
            comp = np.less if ("loss" in monitor or "error" in monitor) else np.greater
        self.monitor, self.comp, self.reset_on_fit = monitor, comp, reset_on_fit
        self.min_delta = -abs(min_delta) if comp is np.less else abs(min_delta)
        self.best: float | None = None
        self.new_best = False

    def before_fit(self):
        names = [n for n in self.learn.recorder.metric_names[1:] if n != "time"]
        if self.monitor not in names:
            raise ValueError(f"{type(self).__name__}(monitor={self.monitor!r}) is not a column of this run's "
                             f"metrics table {names}; pass one of them")
        self.index = names.index(self.monitor)
        if self.reset_on_fit or self.best is None:
            self.best = float("inf") if self.comp is np.less else -float("inf")

    def after_epoch(self):
        value = broadcast_value(self.learn.recorder.values[-1][self.index])
        self.measured = value is not None  # None: an epoch cancelled before it began, or not validated
        self.new_best = self.measured and bool(self.comp(value - self.min_delta, self.best))
        if self.new_best:
            self.best = float(value)


class SaveModelCallback(TrackerCallback):
    """Save the model (with the optimizer, unless ``with_opt=False``) to ``models/fname.pth``
    each time ``monitor`` improves, and load that best model back at the end of ``fit``.

    ``every_epoch=True`` saves ``fname_{epoch}`` after every epoch instead (an int: every that
    many epochs) and loads nothing at the end; ``at_end=True`` saves once, after training.
    Weights holding NaN/inf are never saved: the last good checkpoint is kept.

    >>> learn.fit(5, cbs=SaveModelCallback(monitor="accuracy"))   # doctest: +SKIP
    """

    writes_files = True

    def __init__(self, monitor: str = "valid_loss", comp: Callable | None = None, min_delta: float = 0.0,
                 fname: str = "model", every_epoch: bool | int = False, at_end: bool = False,
                 with_opt: bool = True, reset_on_fit: bool = True):
        super().__init__(monitor=monitor, comp=comp, min_delta=min_delta, reset_on_fit=reset_on_fit)
        if not isinstance(every_epoch, (bool, int)) or every_epoch < 0:
            raise ValueError(f"every_epoch={every_epoch!r}; expected True/False or a number of epochs")
        self.fname, self.every_epoch, self.at_end, self.with_opt = fname, every_epoch, at_end, with_opt
        self.saved: list[str] = []

    def _save(self, name: str) -> bool:
        if not weights_are_finite(unwrapped_model(self.learn)):
            if rank_distrib() == 0:
                warnings.warn(f"SaveModelCallback: not saving {name!r} at epoch {self.epoch}: the model's weights "
                              "hold NaN or inf; the last good checkpoint is kept", RuntimeWarning, stacklevel=2)
            return False
        self.learn.save(name, with_opt=self.with_opt)
        self.saved.append(name)
        return True

    def after_epoch(self):
        if self.every_epoch:
            every = 1 if self.every_epoch is True else int(self.every_epoch)
            if self.epoch % every == 0:
                self._save(f"{self.fname}_{self.epoch}")
            return
        super().after_epoch()
        if self.new_best:
            if rank_distrib() == 0:
                print(f"Better model found at epoch {self.epoch} with {self.monitor} value: {self.best}.")
            self._save(self.fname)

    def after_fit(self):
        if self.at_end:
            self._save(self.fname)
        elif not self.every_epoch and self.fname in self.saved:
            self.learn.load(self.fname, with_opt=self.with_opt)


class PatienceTracker(TrackerCallback):
    """Base: counts the epochs without improvement in ``wait`` and calls ``on_plateau()`` once
    ``patience`` of them have passed in a row.

    >>> PatienceTracker(patience=3).patience
    3
    """

    def __init__(self, monitor: str = "valid_loss", comp: Callable | None = None, min_delta: float = 0.0,
                 patience: int = 1, reset_on_fit: bool = True):
        super().__init__(monitor=monitor, comp=comp, min_delta=min_delta, reset_on_fit=reset_on_fit)
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience={patience!r}; expected a positive number of epochs")
        self.patience = patience

    def before_fit(self):
        super().before_fit()
        self.wait = 0

    def after_epoch(self):
        super().after_epoch()
        if not self.measured:  # an epoch without a value is neither better nor worse
            return
        self.wait = 0 if self.new_best else self.wait + 1
        if self.wait >= self.patience:
            self.on_plateau()

    def on_plateau(self) -> None:
        """What to do after ``patience`` epochs without improvement."""


class EarlyStoppingCallback(PatienceTracker):
    """Stop training when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    >>> learn.fit(20, cbs=EarlyStoppingCallback(monitor="valid_loss", patience=3))   # doctest: +SKIP
    """

    order = TrackerCallback.order + 1  # after SaveModelCallback has seen the epoch

    def __init__(self, monitor: str = "valid_loss", comp: Callable | None = None, min_delta: float = 0.0,
                 patience: int = 1, reset_on_fit: bool = True):
        super().__init__(monitor=monitor, comp=comp, min_delta=min_delta, patience=patience, reset_on_fit=reset_on_fit)
        self.stopped_epoch: int | None = None

    def before_fit(self):
        super().before_fit()
        self.stopped_epoch = None

    def on_plateau(self) -> None:
        self.stopped_epoch = int(self.epoch)
        if rank_distrib() == 0:
            print(f"No improvement since epoch {self.epoch - self.wait}: early stopping")
        raise CancelFitException()


def latest_checkpoint(learn, fname: str = "model") -> str | None:
    """The newest per-epoch checkpoint ``fname_{epoch}`` written by
    ``SaveModelCallback(every_epoch=...)`` in ``learn.path/model_dir``, or None.

    >>> latest_checkpoint(learn)   # doctest: +SKIP
    'model_2'
    """
    folder = Path(checkpoint_path(learn, fname)).parent
    pattern = re.compile(rf"^{re.escape(fname)}_(\d+)\.pth$")
    epochs = [int(m.group(1)) for p in folder.glob(f"{fname}_*.pth") if (m := pattern.match(p.name))]
    return f"{fname}_{max(epochs)}" if epochs else None


class ReduceLROnPlateau(PatienceTracker):
    """Divide the learning rates by ``factor`` (not below ``min_lr``) when ``monitor`` has not
    improved by ``min_delta`` for ``patience`` epochs. Use it with ``fit``: a schedule of
    ``fit_one_cycle`` sets the learning rates again every batch.

    >>> learn.fit(20, 1e-3, cbs=ReduceLROnPlateau(monitor="valid_loss", patience=2))   # doctest: +SKIP
    """

    order = TrackerCallback.order + 2

    def __init__(self, monitor: str = "valid_loss", comp: Callable | None = None, min_delta: float = 0.0,
                 patience: int = 1, factor: float = 10.0, min_lr: float = 0.0, reset_on_fit: bool = True):
        super().__init__(monitor=monitor, comp=comp, min_delta=min_delta, patience=patience, reset_on_fit=reset_on_fit)
        if not factor > 1:
            raise ValueError(f"factor={factor!r}; expected a number above 1 to divide the learning rates by")
        self.factor, self.min_lr = factor, min_lr
        self.reductions: list[tuple[int, list[float]]] = []

    def on_plateau(self) -> None:
        self.wait = 0
        for opt in self.learn.opts:
            for group in opt.param_groups:
                group["lr"] = max(group["lr"] / self.factor, self.min_lr)
        lrs = [group["lr"] for group in self.opt.param_groups]
        self.reductions.append((int(self.epoch), lrs))
        if rank_distrib() == 0:
            print(f"Epoch {self.epoch}: reducing lr to {max(lrs):.3g}")
