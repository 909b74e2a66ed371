"""Mixed precision: ``learn.to_fp16()``, ``learn.to_bf16()``, ``learn.to_fp32()``.

One callback, ``MixedPrecision``, enters ``torch.autocast`` in ``before_batch`` and leaves it in
``after_loss`` (a custom ``training_step`` with several updates: it enters again after each
optimizer step, and leaves in ``after_batch``); the model's ``forward`` is never wrapped. With float16 on CUDA it also scales the
loss with a ``torch.amp.GradScaler``, unscales the gradients before the optimizer step (and before
``GradientClip`` clips them), and skips the steps whose gradients hold inf/NaN, counting them in
``learn.mixed_precision.skipped_steps``. The scaler's state is saved and loaded with the learner.

On a CPU, float16 is slow and badly supported, so ``to_fp16()`` trains in bfloat16 there and says
so once per process. Predictions and losses reach the metrics as float32.

>>> learn = Learner(dls, model, loss_func=CrossEntropyLossFlat()).to_fp16()   # doctest: +SKIP
>>> Learner(dls, model, precision="bf16")                                     # doctest: +SKIP
"""
from __future__ import annotations

import warnings

import torch

from fastlearn.callback import Callback, CancelStepException
from fastlearn.config import PRECISIONS, get_config

_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
_cpu_fp16_said = False


def _say_cpu_fallback_once() -> None:
    global _cpu_fp16_said
    if not _cpu_fp16_said:
        _cpu_fp16_said = True
        warnings.warn("to_fp16() on a CPU trains with bfloat16 autocast instead of float16 "
                      "(float16 is slow on CPUs and needs no gradient scaler in bfloat16); "
                      "call to_bf16() to ask for it directly", UserWarning, stacklevel=3)


_SMALLEST_SUBNORMAL, _ONE = 5e-324, 1.0  # held in variables: a product of constants is folded when compiled


def denormals_flushed_now() -> bool:
    """True when this thread computes subnormal floats as zero (``torch.set_flush_denormal(True)``).

    torch has no getter; the mode it sets is the thread's floating-point control register (MXCSR
    on x86, FPCR on ARM), which Python's own float arithmetic obeys too, so multiplying the smallest
    subnormal double by one and looking tells it in well under a microsecond.
    """
    return _SMALLEST_SUBNORMAL * _ONE == 0.0


class flushing_denormals:  # noqa: N801  (used as a function: ``with flushing_denormals(device):``)
    """On a CPU (and where ``enabled``, None: the config's ``flush_denormal``, default true), compute
    subnormal floats (magnitudes below 1.2e-38) as zero inside the block, as TensorFlow does by default.

    A recurrent model's activations and gradients drift into subnormals after a few steps, and a
    CPU handles each one ~100x slower than a normal float: an AWD-LSTM language-model batch goes from
    1.8 s to 25 s within ten steps. Values that small change no result in float32 training. The
    thread's previous mode is put back on leaving (a user's own ``torch.set_flush_denormal(True)``
    stays). Other devices are untouched (their kernels flush on their own). A ``Learner`` passes
    the setting it read when it was built: reading the config checks its files on disk, which
    right after a model's forward pass (caches cold) costs ``predict`` ~60-100 µs a call.

    >>> with flushing_denormals("cpu"):
    ...     torch.tensor(1e-40).mul(1.0).item()
    0.0
    """

    __slots__ = ("_device", "_enabled", "_flushing")

    def __init__(self, device: torch.device | str, enabled: bool | None = None):
        self._device, self._enabled, self._flushing = device, enabled, False

    def __enter__(self) -> None:
        # cheapest first: the validation passes inside a fit find the mode already set and read no
        # config (a class, not a generator: predict enters it on every call)
        device, enabled = self._device, self._enabled
        self._flushing = not (
            (device.type if isinstance(device, torch.device) else torch.device(device).type) != "cpu"
            or denormals_flushed_now()
            or not (enabled if enabled is not None else get_config().get("defaults", "flush_denormal"))
            or not torch.set_flush_denormal(True))

    def __exit__(self, *exc) -> bool:
        if self._flushing:
            torch.set_flush_denormal(False)
        return False


def _as_float32(x):
    """Half-precision floating tensors (also inside tuples / lists) as float32; others unchanged."""
    if isinstance(x, torch.Tensor):
        return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    if isinstance(x, (tuple, list)):
        return type(x)(_as_float32(item) for item in x)
    return x


class MixedPrecision(Callback):
    """Autocast to ``precision`` ("fp16" or "bf16"), with a gradient scaler for float16 on CUDA.

    ``cpu_fallback`` (default True): on a CPU, "fp16" trains in bfloat16. With False, a CPU keeps
    float16 and uses a CPU gradient scaler (slow; useful to exercise the scaler path without a GPU).
    ``init_scale``, ``growth_interval``: passed to ``torch.amp.GradScaler``.

    >>> cb = MixedPrecision("bf16")
    >>> cb.precision
    'bf16'
    """

    order = 10

    def __init__(self, precision: str = "fp16", cpu_fallback: bool = True, init_scale: float = 2.0 ** 16,
                 growth_interval: int = 2000):
        if precision not in _DTYPES:
            raise ValueError(f"MixedPrecision(precision={precision!r}); expected 'fp16' or 'bf16' "
                             "(for full precision remove the callback: learn.to_fp32())")
        self.precision, self.cpu_fallback = precision, cpu_fallback
        self.init_scale, self.growth_interval = init_scale, growth_interval
        self.scaler: torch.amp.GradScaler | None = None
        self._skipped, self._skips = 0, None
        self._device_type: str | None = None
        self._autocast = None
        self._unscaled = False
        self._pending_state: dict | None = None

    # --- set-up ------------------------------------------------------------------------------

    @property
    def dtype(self) -> torch.dtype:
        """The autocast dtype actually used on the learner's device."""
        device_type = self.learn.device.type if self.learn is not None else "cpu"
        if self.precision == "fp16" and device_type == "cpu" and self.cpu_fallback:
            return torch.bfloat16
        return _DTYPES[self.precision]

    @property
    def skipped_steps(self) -> int:
        """How many optimizer steps the scaler skipped because the gradients held inf/NaN."""
        return self._skipped + (int(self._skips.item()) if self._skips is not None else 0)

    @property
    def uses_scaler(self) -> bool:
        """True when the loss is scaled: float16 on CUDA (or on a CPU with ``cpu_fallback=False``)."""
        return self.scaler is not None and self.scaler.is_enabled()

    def _setup(self) -> None:
        device_type = self.learn.device.type
        if device_type == self._device_type:
            return
        self._device_type = device_type
        if self.precision == "fp16" and device_type == "cpu" and self.cpu_fallback:
            _say_cpu_fallback_once()
        wants_scaler = self.dtype == torch.float16 and device_type in ("cuda", "cpu")
        self.scaler = torch.amp.GradScaler(device_type if wants_scaler else "cpu", init_scale=self.init_scale,
                                           growth_interval=self.growth_interval, enabled=wants_scaler)
        if self._pending_state is not None:
            self.load_state_dict(self._pending_state)

    # --- events ------------------------------------------------------------------------------

    def before_fit(self):
        self._setup()

    def before_batch(self):
        self._setup()
        self._unscaled = False
        self._enter_autocast()

    def _enter_autocast(self) -> None:
        if self._autocast is None:
            self._autocast = torch.autocast(self._device_type, dtype=self.dtype, enabled=True)
            self._autocast.__enter__()

    def after_pred(self):
        self.learn.pred = _as_float32(self.pred)

    def _leave_autocast(self) -> None:
        if self._autocast is not None:
            autocast, self._autocast = self._autocast, None
            autocast.__exit__(None, None, None)

    def after_loss(self):
        self._leave_autocast()
        if self.loss is not None:
            self.learn.loss = _as_float32(self.loss)

    def before_backward(self):
        if self.uses_scaler:
            self.learn.loss_grad = self.scaler.scale(self.loss_grad)

    def unscale(self) -> None:
        """Divide the gradients by the current scale, once per step (``GradientClip`` calls this)."""
        if self.uses_scaler and not self._unscaled:
            self.scaler.unscale_(self.opt)
            self._unscaled = True

    def before_step(self):
        if not self.uses_scaler:
            return
        self.unscale()
        scale = getattr(self.scaler, "_scale", None)
        lazy = isinstance(scale, torch.Tensor)
        # a skipped step lowers the scale; compared on the device to avoid a sync every step
        scale_before = scale.clone() if lazy else self.scaler.get_scale()
        self.scaler.step(self.opt)
        self.scaler.update()
        if lazy:
            lowered = (self.scaler._scale < scale_before).int()
            self._skips = lowered if self._skips is None else self._skips + lowered
        elif self.scaler.get_scale() < scale_before:
            self._skipped += 1
        self._unscaled = False
        # the scaler has stepped (or skipped) the optimizer: the loop must not step it again
        raise CancelStepException()

    def after_step(self):
        # a custom training step's forward passes after this step (a GAN's generator update after
        # the critic's) run under autocast too; after_batch leaves it
        self._enter_autocast()

    def after_batch(self):
        self._leave_autocast()

    def after_cancel_fit(self):
        self._leave_autocast()

    def cleanup(self):
        """After any exception too: autocast never stays switched on for the rest of the process."""
        self._leave_autocast()
        self._unscaled = False

    # --- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The scaler's state and the count of skipped steps (saved by ``learn.save``)."""
        scaler_state = self.scaler.state_dict() if self.uses_scaler else {}
        return {"precision": self.precision, "skipped_steps": self.skipped_steps, "scaler": scaler_state}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (applied to the scaler once it exists)."""
        self._skipped, self._skips = int(state.get("skipped_steps", 0)), None
        scaler_state = state.get("scaler") or {}
        if self.scaler is None:
            self._pending_state = state
            return
        self._pending_state = None
        if scaler_state and self.uses_scaler:
            self.scaler.load_state_dict(scaler_state)


def set_precision(learn, precision: str) -> None:
    """Train ``learn`` in ``precision``: "fp32" removes mixed precision, "fp16" / "bf16" add it.

    >>> set_precision(learn, "bf16")      # doctest: +SKIP
    >>> learn.mixed_precision.dtype       # doctest: +SKIP
    torch.bfloat16
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}; expected one of {PRECISIONS} "
                         "(e.g. learn.to_fp16(), learn.to_bf16(), Learner(..., precision='bf16'))")
    existing = [cb for cb in learn.cbs if isinstance(cb, MixedPrecision)]
    learn.remove_cbs(existing)
    if precision == "fp32":
        return
    callback = MixedPrecision(precision)
    learn.add_cb(callback)
    if learn.device.type == "cpu" and precision == "fp16":
        _say_cpu_fallback_once()
