"""Hooks: read what a layer computes while the model runs, and ``ActivationStats``.

A ``Hook`` registers a function on a module with torch's own ``register_forward_hook`` (or
``register_full_backward_hook``) and keeps its last result in ``hook.stored``; ``Hooks`` does the
same for a list of modules. Both are context managers that remove themselves on exit.

>>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
>>> with hook_outputs(model) as hooks:
...     _ = model(torch.randn(5, 4))
>>> [tuple(h.stored.shape) for h in hooks]
[(5, 3), (5, 3), (5, 2)]
>>> model_sizes(nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.Conv2d(8, 4, 3, stride=2)), size=(32, 32))
[torch.Size([1, 8, 15, 15]), torch.Size([1, 4, 7, 7])]

``HookCallback`` hooks layers for the duration of a fit; ``ActivationStats`` is one that records,
for every layer with parameters and every training batch, the mean and standard deviation of its
activations and the share near zero (the course's chapter on training stability).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from fastlearn.callback import Callback

__all__ = ["ActivationStats", "Hook", "HookCallback", "Hooks", "dummy_eval", "has_params", "hook_output",
           "hook_outputs", "in_channels", "model_sizes", "num_features_model"]


def _detached(x: Any, cpu: bool) -> Any:
    """Tensors in ``x`` (also inside tuples and lists) detached, and on the CPU when ``cpu``."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        return x.cpu() if cpu else x
    if isinstance(x, (tuple, list)):
        return type(x)(_detached(item, cpu) for item in x)
    return x


class Hook:
    """Call ``hook_func(module, input, output)`` each time ``module`` runs forward (or, with
    ``is_forward=False``, ``hook_func(module, grad_input, grad_output)`` on its backward pass) and
    keep the result in ``stored``. ``detach`` hands the function detached tensors, ``cpu`` moves
    them to the CPU first. ``remove()`` (or leaving a ``with`` block) unregisters it.

    >>> layer = nn.Linear(2, 3)
    >>> with Hook(layer, lambda module, inp, out: out.shape) as hook:
    ...     _ = layer(torch.zeros(4, 2))
    >>> hook.stored
    torch.Size([4, 3])
    """

    def __init__(self, module: nn.Module, hook_func: Callable, is_forward: bool = True, detach: bool = True,
                 cpu: bool = False):
        if not isinstance(module, nn.Module):
            raise TypeError(f"Hook needs an nn.Module to hook, got {type(module).__name__}")
        if not callable(hook_func):
            raise TypeError(f"Hook needs a function f(module, input, output), got {hook_func!r}")
        self.module, self.hook_func, self.is_forward = module, hook_func, is_forward
        self.detach, self.cpu = detach, cpu
        self.stored: Any = None
        register = module.register_forward_hook if is_forward else module.register_full_backward_hook
        self._handle = register(self._run)
        self.removed = False

    def _run(self, module: nn.Module, inputs: Any, outputs: Any) -> None:
        if self.detach:
            inputs, outputs = _detached(inputs, self.cpu), _detached(outputs, self.cpu)
        self.stored = self.hook_func(module, inputs, outputs)

    def remove(self) -> None:
        """Unregister the hook (calling it twice is harmless)."""
        if not self.removed:
            self._handle.remove()
            self.removed = True

    def __enter__(self) -> "Hook":
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"Hook({type(self.module).__name__}, {'forward' if self.is_forward else 'backward'})"


def _output(module: nn.Module, inputs: Any, outputs: Any) -> Any:
    return outputs


def _grad_output(module: nn.Module, grad_inputs: Any, grad_outputs: Any) -> Any:
    return grad_outputs[0] if isinstance(grad_outputs, tuple) and len(grad_outputs) == 1 else grad_outputs


def hook_output(module: nn.Module, detach: bool = True, cpu: bool = False, grad: bool = False) -> Hook:
    """A ``Hook`` that stores ``module``'s output (with ``grad=True``: the gradient of the loss
    with respect to that output, on the backward pass).

    >>> layer = nn.Linear(2, 3)
    >>> with hook_output(layer) as hook:
    ...     _ = layer(torch.zeros(4, 2))
    >>> hook.stored.shape
    torch.Size([4, 3])
    """
    return Hook(module, _grad_output if grad else _output, is_forward=not grad, detach=detach, cpu=cpu)


class Hooks:
    """One ``Hook`` per module of ``modules``, with the same function: ``hooks.stored`` lists their
    results; indexing, ``len`` and iteration give the single hooks.

    >>> model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    >>> with Hooks(model, lambda module, inp, out: out.mean().item()) as hooks:
    ...     _ = model(torch.zeros(4, 2))
    >>> len(hooks.stored)
    2
    """

    def __init__(self, modules: Iterable[nn.Module] | nn.Module, hook_func: Callable, is_forward: bool = True,
                 detach: bool = True, cpu: bool = False):
        modules = list(modules.children()) if isinstance(modules, nn.Module) else list(modules)
        self.hooks = [Hook(module, hook_func, is_forward=is_forward, detach=detach, cpu=cpu) for module in modules]

    def __getitem__(self, index: int) -> Hook:
        return self.hooks[index]

    def __len__(self) -> int:
        return len(self.hooks)

    def __iter__(self) -> Iterator[Hook]:
        return iter(self.hooks)

    @property
    def stored(self) -> list:
        """Each hook's last result, in the order of the modules."""
        return [hook.stored for hook in self.hooks]

    def remove(self) -> None:
        """Unregister every hook."""
        for hook in self.hooks:
            hook.remove()

    def __enter__(self) -> "Hooks":
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"Hooks({len(self.hooks)} modules)"


def hook_outputs(modules: Iterable[nn.Module] | nn.Module, detach: bool = True, cpu: bool = False,
                 grad: bool = False) -> Hooks:
    """``Hooks`` storing the output (or, with ``grad=True``, the output's gradient) of each module;
    given a module, its children are hooked.

    >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    >>> with hook_outputs(model) as hooks:
    ...     _ = model(torch.zeros(4, 2))
    >>> [tuple(s.shape) for s in hooks.stored]
    [(4, 3), (4, 3)]
    """
    return Hooks(modules, _grad_output if grad else _output, is_forward=not grad, detach=detach, cpu=cpu)


def has_params(module: nn.Module) -> bool:
    """True if ``module`` (with its children) has parameters.

    >>> has_params(nn.Linear(2, 1)), has_params(nn.ReLU())
    (True, False)
    """
    return next(module.parameters(), None) is not None


def in_channels(model: nn.Module) -> int:
    """The number of input channels (or features) of the first convolution or linear layer.

    >>> in_channels(nn.Sequential(nn.Conv2d(5, 8, 3), nn.ReLU()))
    5
    """
    for module in model.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            return module.in_channels
        if isinstance(module, nn.Linear):
            return module.in_features
    raise ValueError(f"{type(model).__name__} has no convolution or linear layer to read the input channels "
                     "from; build the input yourself and run the model on it")


def dummy_eval(model: nn.Module, size: Sequence[int] = (64, 64)) -> Any:
    """Run ``model`` in eval mode, without gradients, on one random input of spatial ``size``
    (``in_channels(model)`` channels); the model's mode is put back afterwards.

    >>> dummy_eval(nn.Sequential(nn.Conv2d(3, 8, 3, stride=2)), size=(16, 16)).shape
    torch.Size([1, 8, 7, 7])
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = torch.empty(1, in_channels(model), *size, device=device, dtype=dtype).uniform_(-1.0, 1.0)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    finally:
        model.train(was_training)


def model_sizes(model: nn.Module, size: Sequence[int] = (64, 64)) -> list[torch.Size]:
    """The output shape of each child of ``model`` on a dummy input of spatial ``size``.

    >>> model_sizes(nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU()), size=(16, 16))
    [torch.Size([1, 8, 7, 7]), torch.Size([1, 8, 7, 7])]
    """
    with hook_outputs(model) as hooks:
        dummy_eval(model, size=size)
        return [hook.stored.shape for hook in hooks]


def num_features_model(model: nn.Module) -> int:
    """The number of channels ``model`` outputs, found by running it on growing dummy inputs.

    >>> num_features_model(nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1)))
    8
    """
    size, error = 32, None
    while size <= 512:
        try:
            return dummy_eval(model, size=(size, size)).shape[1]
        except RuntimeError as failure:  # the input was too small for the model's downsampling
            error, size = failure, size * 2
    raise ValueError(f"could not run {type(model).__name__} on dummy inputs up to 512 px: {error}")


def _leaves(model: nn.Module) -> list[nn.Module]:
    return [module for module in model.modules() if not list(module.children())]


class HookCallback(Callback):
    """Hooks ``modules`` (default: every layer of the model with parameters; with
    ``include_paramless`` every layer) for a fit, calling ``self.hook(module, input, output)``,
    which a subclass defines (or pass ``hook=``). ``every=n`` hooks only every n-th training batch;
    ``remove_end=False`` keeps the hooks after the fit (``self.hooks``). Under ``cleanup`` the hooks
    are always removed, after an exception too.

    >>> class OutputMeans(HookCallback):
    ...     def hook(self, module, inp, out):
    ...         return out.mean().item()
    """

    order = -20

    def __init__(self, modules: Sequence[nn.Module] | None = None, every: int | None = None, remove_end: bool = True,
                 is_forward: bool = True, detach: bool = True, cpu: bool = True, include_paramless: bool = False,
                 hook: Callable | None = None):
        if every is not None and (not isinstance(every, int) or every < 1):
            raise ValueError(f"every={every!r}; expected None (every batch) or a positive number of batches")
        self.modules, self.every, self.remove_end = modules, every, remove_end
        self.is_forward, self.detach, self.cpu, self.include_paramless = is_forward, detach, cpu, include_paramless
        if hook is not None:
            self.hook = hook
        if not callable(getattr(self, "hook", None)):
            raise TypeError(f"{type(self).__name__} has no hook(module, input, output) method; define one in the "
                            "subclass or pass hook=")
        self.hooks: Hooks | None = None

    def _modules(self) -> list[nn.Module]:
        if self.modules is not None:
            return list(self.modules)
        model = getattr(self.learn.model, "module", self.learn.model)  # the model inside DDP
        return [m for m in _leaves(model) if self.include_paramless or has_params(m)]

    def _register(self) -> None:
        self._remove()
        self.hooks = Hooks(self._modules(), self.hook, is_forward=self.is_forward, detach=self.detach, cpu=self.cpu)

    def _remove(self) -> None:
        if self.hooks is not None:
            self.hooks.remove()

    def before_fit(self):
        if self.every is None:
            self._register()

    def before_batch(self):
        if self.every is not None and self.training and self.train_iter % self.every == 0:
            self._register()

    def after_batch(self):
        if self.every is not None and self.training:
            self._remove()

    def after_fit(self):
        if self.remove_end:
            self._remove()

    def cleanup(self):
        if self.remove_end:
            self._remove()


NEAR_ZERO = 0.05
HIST_BINS, HIST_RANGE = 40, (0.0, 10.0)
_STAT_NAMES = ("mean", "std", "near_zero")


class ActivationStats(HookCallback):
    """For every layer with parameters and every training batch (or every ``every``-th), the mean
    and standard deviation of the layer's activations and the share of them ``<= 0.05``; with
    ``with_hist`` also a 40-bin histogram over [0, 10] for :meth:`color_dim`. Reachable as
    ``learn.activation_stats``. The statistics stay on the model's device until read.

    >>> learn.fit(1, cbs=ActivationStats(with_hist=True))   # doctest: +SKIP
    >>> learn.activation_stats.plot_layer_stats(-2)          # doctest: +SKIP
    >>> learn.activation_stats.color_dim(-2)                 # doctest: +SKIP
    """

    def __init__(self, with_hist: bool = False, every: int | None = None, modules: Sequence[nn.Module] | None = None):
        super().__init__(modules=modules, every=every, cpu=False)
        self.with_hist = with_hist
        self._batches: list[torch.Tensor] = []
        self._hists: list[torch.Tensor] = []
        self._stats_cache: tuple[int, list] | None = None

    def hook(self, module: nn.Module, inputs: Any, output: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        if isinstance(output, (tuple, list)):
            output = output[0]
        output = output.float()
        stats = torch.stack([output.mean(), output.std() if output.numel() > 1 else output.new_zeros(()),
                             (output <= NEAR_ZERO).float().mean()])
        hist = output.histc(HIST_BINS, *HIST_RANGE) if self.with_hist else None
        return stats, hist

    def before_fit(self):
        self._batches, self._hists, self._stats_cache = [], [], None
        super().before_fit()

    def after_batch(self):
        records = self.training and (self.every is None or self.train_iter % self.every == 0)
        if records and self.hooks is not None and all(s is not None for s in self.hooks.stored):
            self._batches.append(torch.stack([stats for stats, _ in self.hooks.stored]))
            if self.with_hist:
                self._hists.append(torch.stack([hist for _, hist in self.hooks.stored]))
        super().after_batch()

    # --- reading --------------------------------------------------------------------------------

    @property
    def n_layers(self) -> int:
        """How many layers are recorded."""
        return self._batches[0].shape[0] if self._batches else len(self.hooks or [])

    def _array(self) -> np.ndarray:
        if not self._batches:
            raise ValueError("ActivationStats has recorded nothing yet; train with it first: "
                             "learn.fit(1, cbs=ActivationStats())")
        return torch.stack(self._batches).cpu().numpy()  # batches x layers x (mean, std, near_zero)

    def _layer(self, idx: int) -> int:
        n = self.n_layers
        if not -n <= idx < n:
            raise IndexError(f"layer {idx} does not exist: {n} layers are recorded (0 to {n - 1}, or -1 to -{n})")
        return idx % n

    @property
    def stats(self) -> list[list[dict[str, Any]]]:
        """One list per recorded batch, one dict per layer: ``{"mean", "std", "near_zero"}`` (and
        ``"hist"`` with ``with_hist``)."""
        if self._stats_cache is None or self._stats_cache[0] != len(self._batches):
            values = self._array() if self._batches else np.zeros((0, 0, 3))
            hists = torch.stack(self._hists).cpu() if self._hists else None
            rows = []
            for b, batch in enumerate(values):
                row = [dict(zip(_STAT_NAMES, map(float, layer))) for layer in batch]
                if hists is not None:
                    for layer, record in enumerate(row):
                        record["hist"] = hists[b, layer]
                rows.append(row)
            self._stats_cache = (len(self._batches), rows)
        return self._stats_cache[1]

    def layer_stats(self, idx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(means, stds, near_zero)`` of layer ``idx`` over the recorded batches."""
        values = self._array()[:, self._layer(idx)]
        return values[:, 0], values[:, 1], values[:, 2]

    def hist(self, idx: int) -> torch.Tensor:
        """The histograms of layer ``idx``: one row of 40 counts per recorded batch."""
        if not self.with_hist:
            raise ValueError("histograms were not recorded; train with ActivationStats(with_hist=True)")
        if not self._hists:
            self._array()  # raises the "nothing recorded" error
        return torch.stack(self._hists)[:, self._layer(idx)].cpu()

    def plot_layer_stats(self, idx: int, figsize: tuple[float, float] = (12, 3)) -> None:
        """Plot the mean, the standard deviation and the share near zero of layer ``idx``'s
        activations over the batches, side by side in a new figure (``plt.gcf()``)."""
        import matplotlib.pyplot as plt
        values = self.layer_stats(idx)
        _, axes = plt.subplots(1, 3, figsize=figsize)
        for ax, series, title in zip(axes, values, ("mean", "std", "% near zero")):
            ax.plot(series)
            ax.set_title(title)
            ax.set_xlabel("batch")

    def color_dim(self, idx: int, figsize: tuple[float, float] = (10, 5), ax=None) -> None:
        """The "colorful dimension" plot of layer ``idx``: the histogram of its activations (log
        scale) along the batches, bins from 0 (bottom) to 10, on ``ax`` or a new figure."""
        import matplotlib.pyplot as plt
        counts = self.hist(idx)
        if ax is None:
            _, ax = plt.subplots(figsize=figsize)
        ax.imshow(counts.T.float().log1p().numpy(), origin="lower", aspect="auto", cmap="viridis")
        ax.set_xlabel("batch")
        ax.set_ylabel("activation bin (0 to 10)")
