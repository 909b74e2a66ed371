"""Optimizers with the course's defaults, and the param groups a Learner trains.

Optimizers are ``torch.optim`` classes. The functions here build them with fastai's defaults
(Adam betas (0.9, 0.99), eps 1e-5, decoupled weight decay 0.01) and take the course's argument
names (``mom``, ``wd``), so ``SGD(model.parameters(), lr)`` works by hand as well as as an
``opt_func``. Any ``torch.optim`` class or ``functools.partial`` of one is accepted as ``opt_func``.

>>> import torch
>>> opt = AdamW(torch.nn.Linear(2, 1).parameters(), lr=1e-3)
>>> opt.defaults["betas"], opt.defaults["eps"], opt.defaults["weight_decay"]
((0.9, 0.99), 1e-05, 0.01)
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def _fused_ok(params) -> bool:
    """Whether torch's fused AdamW takes these parameters: floating point, all on CUDA or all on the
    CPU (one pass over each tensor instead of several: about 4× faster on a CPU)."""
    tensors = [p for group in params for p in (group["params"] if isinstance(group, dict) else [group])]
    devices = {p.device.type for p in tensors}
    return bool(tensors) and len(devices) == 1 and devices <= {"cuda", "cpu"} and all(
        p.is_floating_point() for p in tensors)


def _materialize(params) -> list:
    return list(params)


def SGD(params: Iterable, lr: float = 1e-3, mom: float = 0.0, wd: float = 0.0,
        nesterov: bool = False) -> torch.optim.SGD:
    """``torch.optim.SGD`` with the course's names: ``SGD(model.parameters(), lr, mom=0.9)``.

    >>> SGD(torch.nn.Linear(2, 1).parameters(), 0.1).defaults["momentum"]
    0.0
    """
    return torch.optim.SGD(_materialize(params), lr=lr, momentum=mom, weight_decay=wd, nesterov=nesterov)


def AdamW(params: Iterable, lr: float = 1e-3, mom: float = 0.9, sqr_mom: float = 0.99, eps: float = 1e-5,
          wd: float = 0.01) -> torch.optim.AdamW:
    """``torch.optim.AdamW`` with fastai's defaults (betas (0.9, 0.99), eps 1e-5, wd 0.01), fused on
    CUDA and CPU."""
    params = _materialize(params)
    fused = True if _fused_ok(params) else None
    return torch.optim.AdamW(params, lr=lr, betas=(mom, sqr_mom), eps=eps, weight_decay=wd, fused=fused)


def Adam(params: Iterable, lr: float = 1e-3, mom: float = 0.9, sqr_mom: float = 0.99, eps: float = 1e-5,
         wd: float = 0.01) -> torch.optim.AdamW:
    """fastai's ``Adam``: weight decay is decoupled, so it is AdamW with the same defaults."""
    return AdamW(params, lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd)


def RAdam(params: Iterable, lr: float = 1e-3, mom: float = 0.9, sqr_mom: float = 0.99, eps: float = 1e-5,
          wd: float = 0.0) -> torch.optim.RAdam:
    """``torch.optim.RAdam`` with decoupled weight decay and fastai's defaults."""
    return torch.optim.RAdam(_materialize(params), lr=lr, betas=(mom, sqr_mom), eps=eps, weight_decay=wd,
                             decoupled_weight_decay=True)


def RMSProp(params: Iterable, lr: float = 1e-2, mom: float = 0.0, sqr_mom: float = 0.99, eps: float = 1e-8,
            wd: float = 0.0) -> torch.optim.RMSprop:
    """``torch.optim.RMSprop`` with fastai's defaults (alpha 0.99)."""
    return torch.optim.RMSprop(_materialize(params), lr=lr, alpha=sqr_mom, eps=eps, weight_decay=wd,
                               momentum=mom)


def is_norm_or_bias(module: nn.Module, param_name: str) -> bool:
    """True for a normalization layer's parameters and for biases (no weight decay on them)."""
    return isinstance(module, NORM_TYPES) or param_name.endswith("bias")


def norm_and_bias_params(model: nn.Module) -> set[int]:
    """The ids of the model's normalization-layer and bias parameters."""
    ids = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if is_norm_or_bias(module, name):
                ids.add(id(param))
    return ids


def norm_params(model: nn.Module) -> set[int]:
    """The ids of the model's normalization-layer parameters (trained even when frozen, if train_bn)."""
    return {id(p) for m in model.modules() if isinstance(m, NORM_TYPES) for p in m.parameters(recurse=False)}


def split_groups(groups: list[list[nn.Parameter]], model: nn.Module, wd_bn_bias: bool) -> list[dict]:
    """Turn the splitter's groups into torch param groups, each remembering its splitter group.

    With ``wd_bn_bias=False`` each splitter group becomes two torch groups: one with weight decay,
    one (norm and bias parameters) with ``weight_decay=0``.
    """
    no_decay = set() if wd_bn_bias else norm_and_bias_params(model)
    torch_groups = []
    seen: set[int] = set()
    for index, group in enumerate(groups):
        params = [p for p in group if id(p) not in seen]
        seen.update(id(p) for p in params)
        decay = [p for p in params if id(p) not in no_decay]
        plain = [p for p in params if id(p) in no_decay]
        torch_groups.append({"params": decay, "fl_group": index, "fl_decay": True})
        if plain:
            torch_groups.append({"params": plain, "fl_group": index, "fl_decay": False, "weight_decay": 0.0})
    return [g for g in torch_groups if g["params"] or not g["fl_decay"]]


def splitter_groups(splitter, model: nn.Module) -> list[list[nn.Parameter]]:
    """The splitter's parameter groups as lists (a flat list of parameters is one group)."""
    groups = splitter(model)
    if groups and isinstance(groups[0], nn.Parameter):
        groups = [groups]
    return [list(g) for g in groups]


def freeze_groups(groups: list[list[nn.Parameter]], n: int, keep: set[int] = frozenset()) -> None:
    """Stop gradients for the groups before ``n`` (negative counts from the end), except ``keep`` ids."""
    n = n if n >= 0 else len(groups) + n
    for index, group in enumerate(groups):
        for param in group:
            param.requires_grad_(index >= n or id(param) in keep)


def make_optimizer(opt_func: Callable, torch_groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """Call ``opt_func`` on the param groups; works for this module's functions and torch classes."""
    try:
        opt = opt_func(torch_groups, lr=lr)
    except TypeError as error:
        raise TypeError(f"opt_func={opt_func!r} could not be called as opt_func(param_groups, lr=...): "
                        f"{error}; pass a torch.optim class, a functools.partial of one, or a "
                        "function with that signature") from error
    if not isinstance(opt, torch.optim.Optimizer):
        raise TypeError(f"opt_func returned {type(opt).__name__}, expected a torch.optim.Optimizer")
    return opt


def split_optimizer(opt: torch.optim.Optimizer) -> list[torch.optim.Optimizer]:
    """One optimizer of ``opt``'s class and settings per splitter group of ``opt``, in group order,
    with the same hyper-parameters: for a custom training step that updates each part of the model
    on its own (a GAN's generator and critic). Schedules set them all (``learn.extra_opts``).

    >>> model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    >>> opt = AdamW(split_groups([list(model[0].parameters()), list(model[1].parameters())], model, False))
    >>> [len(o.param_groups) for o in split_optimizer(opt)]  # each: weights, then biases (no weight decay)
    [2, 2]
    """
    by_group: dict[int, list[dict]] = {}
    for group in opt.param_groups:
        by_group.setdefault(group.get("fl_group", 0), []).append({**group, "params": list(group["params"])})
    accepted = inspect.signature(type(opt).__init__).parameters
    settings = {k: v for k, v in opt.defaults.items() if k in accepted}
    return [type(opt)(groups, **settings) for _, groups in sorted(by_group.items())]


def n_splitter_groups(*opts: torch.optim.Optimizer) -> int:
    """How many splitter groups the optimizers' torch groups come from (the highest index + 1)."""
    return max(g.get("fl_group", 0) for opt in opts for g in opt.param_groups) + 1


def spread_lr(lr: float | slice | list | np.ndarray, n_groups: int) -> np.ndarray:
    """One learning rate per splitter group.

    ``slice(hi)`` gives ``hi/10`` to all groups but the last; ``slice(lo, hi)`` spreads rates
    geometrically from ``lo`` to ``hi``.

    >>> spread_lr(slice(1e-5, 1e-3), 3).round(7).tolist()
    [1e-05, 0.0001, 0.001]
    >>> spread_lr(slice(1e-3), 3).tolist()
    [0.0001, 0.0001, 0.001]
    """
    check_lr(lr)
    if isinstance(lr, slice):
        if lr.start is None:
            return np.array([lr.stop / 10] * (n_groups - 1) + [lr.stop], dtype=float)
        if n_groups == 1:
            return np.array([lr.stop], dtype=float)
        return np.geomspace(lr.start, lr.stop, n_groups)
    values = np.atleast_1d(np.asarray(lr, dtype=float))
    if values.size == 1:
        return np.full(n_groups, float(values[0]))
    if values.size != n_groups:
        raise ValueError(f"{values.size} learning rates given for {n_groups} param groups; "
                         "give one, a slice, or one per group")
    return values


def check_lr(lr: float | slice | list | np.ndarray) -> None:
    """Refuse a learning rate (a number, a slice or one per group) that is NaN, infinite or
    negative, or a slice that starts at 0 or has no upper value."""
    if isinstance(lr, slice):
        if lr.stop is None:
            raise ValueError(f"lr={lr!r} has no upper value; use slice(hi) or slice(lo, hi)")
        check_hyper("lr", lr.stop, given=lr)
        if lr.start is not None:
            check_hyper("lr", lr.start, given=lr, positive=True)  # a geometric spread starts above 0
        return
    values = lr if isinstance(lr, (list, tuple, np.ndarray)) else [lr]
    for value in np.ravel(np.asarray(values, dtype=object)):
        check_hyper("lr", value, given=lr)


def check_hyper(name: str, value, given=None, positive: bool = False) -> None:
    """Refuse a learning rate or weight decay that is not a finite number >= 0 (> 0 if
    ``positive``), before it reaches the optimizer: one NaN step makes every weight NaN.

    >>> check_hyper("lr", float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: lr=nan; expected a finite number >= 0 (e.g. 1e-3, or what lr_find suggests); nothing was changed
    """
    given = value if given is None else given
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={given!r}; expected a number (or a slice of numbers)") from None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        bound = "> 0" if positive else ">= 0"
        example = "e.g. 1e-3, or what lr_find suggests" if name == "lr" else "e.g. 0.01"
        raise ValueError(f"{name}={given!r}; expected a finite number {bound} ({example}); nothing was changed")


def set_hyper(opt: torch.optim.Optimizer, name: str, values) -> None:
    """Set ``lr``, ``mom`` or ``wd`` on every torch group from a scalar or one value per splitter group.

    ``mom`` is beta1 for Adam-style optimizers and ``momentum`` for SGD / RMSprop.
    """
    if isinstance(values, (float, int)):  # the common case, once per batch: no numpy on the way
        values = [float(values)]
    else:
        values = [float(v) for v in np.atleast_1d(np.asarray(values, dtype=float))]
    for group in opt.param_groups:
        value = values[group.get("fl_group", 0)] if len(values) > 1 else values[0]
        if name == "lr":
            group["lr"] = value
        elif name == "mom":
            if "betas" in group:
                group["betas"] = (value, group["betas"][1])
            elif "momentum" in group:
                group["momentum"] = value
        elif name == "wd":
            if group.get("fl_decay", True):
                group["weight_decay"] = value
        else:
            raise ValueError(f"unknown hyper-parameter {name!r}; expected 'lr', 'mom' or 'wd'")


def get_hyper(opt: torch.optim.Optimizer, name: str) -> list[float]:
    """One value per splitter group (from the first torch group of each)."""
    values: dict[int, float] = {}
    for group in opt.param_groups:
        index = group.get("fl_group", 0)
        if index in values:
            continue
        if name == "lr":
            values[index] = group["lr"]
        elif name == "mom":
            values[index] = group["betas"][0] if "betas" in group else group.get("momentum", 0.0)
        elif name == "wd":
            values[index] = group.get("weight_decay", 0.0)
        else:
            raise ValueError(f"unknown hyper-parameter {name!r}; expected 'lr', 'mom' or 'wd'")
    return [values[i] for i in sorted(values)]
