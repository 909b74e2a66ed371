"""Chapter 16's optimizer built from steppers: ``Optimizer(params, cbs=[...], **hypers)``, the
steppers the chapter writes (``sgd_step``, ``weight_decay``, ``l2_reg``, ``average_grad``,
``average_sqr_grad``, ``momentum_step``, ``rms_prop_step``, ``step_stat``, ``adam_step``) and
``OptimWrapper``.

This is the teaching path: it shows how SGD, momentum, RMSProp and Adam are made of small steps.
A ``Learner`` trains with ``torch.optim`` optimizers by default (``opt_func=AdamW``), which are
faster; an ``Optimizer`` works anywhere those do, since it is a ``torch.optim.Optimizer``.

A stepper is a function ``stepper(p, **hypers_and_state)`` called for every parameter ``p`` with
a gradient, in order; it may change ``p`` in place and may return a dict of state to keep for
``p`` (passed back to every stepper on the next step).

>>> model = torch.nn.Linear(3, 1)
>>> opt = Optimizer(model.parameters(), cbs=[average_grad, momentum_step], lr=0.1, mom=0.9)
>>> model(torch.ones(2, 3)).sum().backward(); opt.step(); opt.zero_grad()
>>> sorted(opt.state[model.weight])
['grad_avg']
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable

import torch

from fastlearn.foundation import listify

# the course's hyper-parameter names and the names a torch param group uses for them (so the
# Learner's schedules and weight decay, which set torch names, drive the steppers too)
TORCH_NAMES = {"mom": "momentum", "wd": "weight_decay"}
COURSE_NAMES = {torch_name: name for name, torch_name in TORCH_NAMES.items()}


class Optimizer(torch.optim.Optimizer):
    """Runs ``cbs`` (steppers) on every parameter with a gradient at each ``step()``.

    ``**hypers`` are the hyper-parameters the steppers read, by the course's names (``lr``,
    ``mom``, ``sqr_mom``, ``eps``, ``wd``...); a stepper's ``defaults`` attribute (a dict) adds
    default values. ``fit_one_cycle`` cycles ``mom`` and a Learner's ``wd=`` sets ``wd``, as for
    the torch optimizers. ``params`` may be parameters or param groups (dicts).

    >>> opt_func = partial(Optimizer, cbs=[sgd_step])        # doctest: +SKIP
    >>> learn = Learner(dls, model, opt_func=opt_func)       # doctest: +SKIP
    """

    def __init__(self, params: Iterable, cbs: Callable | Iterable[Callable], train_bn: bool = True, **hypers):
        self.cbs = listify(cbs)
        if not self.cbs:
            raise ValueError("Optimizer(cbs=[]) has no steppers, so step() would change nothing; pass "
                             "cbs=[sgd_step] (or the steppers of the method you want)")
        for cb in self.cbs:
            if not callable(cb):
                raise TypeError(f"Optimizer: the stepper {cb!r} is not a function; steppers are functions "
                                "(p, lr, **kwargs) -> dict or None")
        merged: dict = {}
        for cb in self.cbs:
            merged.update(getattr(cb, "defaults", {}))
        merged.update(hypers)
        self.train_bn = train_bn
        super().__init__(params, {TORCH_NAMES.get(k, k): v for k, v in merged.items()})

    @staticmethod
    def hypers_of(group: dict) -> dict:
        """A param group's hyper-parameters by the course's names (what the steppers receive)."""
        return {COURSE_NAMES.get(k, k): v for k, v in group.items() if k != "params"}

    @property
    def hypers(self) -> list[dict]:
        """One dict of hyper-parameters per param group, by the course's names."""
        return [self.hypers_of(group) for group in self.param_groups]

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        """Run the steppers on every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            hypers = self.hypers_of(group)
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                for cb in self.cbs:
                    update = cb(p, **{**state, **hypers})
                    if update:
                        state.update(update)
        return loss

    def __repr__(self) -> str:
        names = [getattr(cb, "__name__", repr(cb)) for cb in self.cbs]
        return f"Optimizer(cbs={names}, {len(self.param_groups)} groups, hypers={self.hypers[0] if self.hypers else {}})"


def sgd_step(p: torch.Tensor, lr: float, **kwargs) -> None:
    """Plain SGD: ``p -= lr * p.grad``.

    >>> p = torch.ones(2); p.grad = torch.ones(2); sgd_step(p, lr=0.1); p
    tensor([0.9000, 0.9000])
    """
    p.add_(p.grad, alpha=-lr)


def weight_decay(p: torch.Tensor, lr: float, wd: float, do_wd: bool = True, **kwargs) -> None:
    """Decoupled weight decay: ``p *= 1 - lr * wd`` (``do_wd=False`` skips it).

    >>> p = torch.ones(1); weight_decay(p, lr=0.1, wd=0.5); p
    tensor([0.9500])
    """
    if do_wd and wd != 0:
        p.mul_(1 - lr * wd)


weight_decay.defaults = {"wd": 0.0}


def l2_reg(p: torch.Tensor, lr: float, wd: float, do_wd: bool = True, **kwargs) -> None:
    """L2 regularization: add ``wd * p`` to the gradient (the same as weight decay for plain SGD).

    >>> p = torch.ones(1); p.grad = torch.zeros(1); l2_reg(p, lr=0.1, wd=0.5); p.grad
    tensor([0.5000])
    """
    if do_wd and wd != 0:
        p.grad.add_(p, alpha=wd)


l2_reg.defaults = {"wd": 0.0}


def average_grad(p: torch.Tensor, mom: float, dampening: bool = False, grad_avg: torch.Tensor | None = None,
                 **kwargs) -> dict:
    """Keep a moving average of the gradients: ``grad_avg = mom * grad_avg + (1 - mom if
    dampening else 1) * p.grad``.

    >>> p = torch.zeros(1); p.grad = torch.ones(1)
    >>> state = average_grad(p, mom=0.9); average_grad(p, mom=0.9, **state)["grad_avg"]
    tensor([1.9000])
    """
    if grad_avg is None:
        grad_avg = torch.zeros_like(p.grad)
    grad_avg.mul_(mom).add_(p.grad, alpha=1 - mom if dampening else 1.0)
    return {"grad_avg": grad_avg}


average_grad.defaults = {"mom": 0.9}


def average_sqr_grad(p: torch.Tensor, sqr_mom: float, dampening: bool = True,
                     sqr_avg: torch.Tensor | None = None, **kwargs) -> dict:
    """Keep a moving average of the squared gradients: ``sqr_avg = sqr_mom * sqr_avg + (1 -
    sqr_mom) * p.grad ** 2``.

    >>> p = torch.zeros(1); p.grad = torch.full((1,), 2.0)
    >>> average_sqr_grad(p, sqr_mom=0.75)["sqr_avg"]
    tensor([1.])
    """
    if sqr_avg is None:
        sqr_avg = torch.zeros_like(p.grad)
    sqr_avg.mul_(sqr_mom).addcmul_(p.grad, p.grad, value=1 - sqr_mom if dampening else 1.0)
    return {"sqr_avg": sqr_avg}


average_sqr_grad.defaults = {"sqr_mom": 0.99}


def momentum_step(p: torch.Tensor, lr: float, grad_avg: torch.Tensor, **kwargs) -> None:
    """SGD with momentum: ``p -= lr * grad_avg`` (after :func:`average_grad`).

    >>> p = torch.ones(1); momentum_step(p, lr=0.1, grad_avg=torch.full((1,), 2.0)); p
    tensor([0.8000])
    """
    p.add_(grad_avg, alpha=-lr)


def rms_prop_step(p: torch.Tensor, lr: float, sqr_avg: torch.Tensor, eps: float,
                  grad_avg: torch.Tensor | None = None, **kwargs) -> None:
    """RMSProp: ``p -= lr * g / (sqrt(sqr_avg) + eps)``, ``g`` the gradient or its average.

    >>> p = torch.ones(1); p.grad = torch.ones(1)
    >>> rms_prop_step(p, lr=0.1, sqr_avg=torch.full((1,), 4.0), eps=0.0); p
    tensor([0.9500])
    """
    p.addcdiv_(grad_avg if grad_avg is not None else p.grad, sqr_avg.sqrt().add_(eps), value=-lr)


rms_prop_step.defaults = {"sqr_mom": 0.99, "eps": 1e-8}


def step_stat(p: torch.Tensor, step: int = 0, **kwargs) -> dict:
    """Count the steps taken (Adam's bias correction needs it).

    >>> step_stat(torch.zeros(1), step=2)
    {'step': 3}
    """
    return {"step": step + 1}


def debias(mom: float, damp: float, step: int) -> float:
    """The sum of the weights a moving average with ``mom`` and ``damp`` has given after ``step``
    steps (divide by it to remove the average's bias towards zero).

    >>> round(debias(0.9, 0.1, 1), 6)
    0.1
    """
    return damp * (1 - mom ** step) / (1 - mom)


def adam_step(p: torch.Tensor, lr: float, mom: float, step: int, sqr_mom: float, grad_avg: torch.Tensor,
              sqr_avg: torch.Tensor, eps: float, **kwargs) -> None:
    """Adam's update from the (debiased) averages of the gradients and of their squares.

    >>> p = torch.zeros(1)
    >>> adam_step(p, lr=0.1, mom=0.9, step=1, sqr_mom=0.99, grad_avg=torch.full((1,), 0.1),
    ...           sqr_avg=torch.full((1,), 0.01), eps=0.0); p
    tensor([-0.1000])
    """
    debias1 = debias(mom, 1 - mom, step)
    debias2 = debias(sqr_mom, 1 - sqr_mom, step)
    p.addcdiv_(grad_avg, (sqr_avg / debias2).sqrt() + eps, value=-lr / debias1)


# the course's names of the moving-average rates: the position in torch's ``betas`` (Adam family),
# else the torch argument that holds it, and what the rate is (for the error)
_AVERAGE_RATES = {"mom": (0, "momentum", "has no momentum"),
                  "sqr_mom": (1, "alpha", "keeps no average of squared gradients")}


def _torch_hypers(opt: type, hypers: dict) -> dict:
    """Course hyper-parameter names → the arguments of the torch optimizer class ``opt``."""
    accepted = set(inspect.signature(opt).parameters)
    out, betas = {}, [None, None]
    for name, value in hypers.items():
        if name in _AVERAGE_RATES:
            position, torch_name, lacking = _AVERAGE_RATES[name]
            if "betas" in accepted:
                betas[position] = value
            elif torch_name in accepted:
                out[torch_name] = value
            else:
                raise TypeError(f"OptimWrapper: {opt.__name__} {lacking}, so {name}={value!r} cannot be set")
        elif name == "wd":
            out["weight_decay"] = value
        elif name in accepted:
            out[name] = value
        else:
            raise TypeError(f"OptimWrapper: {opt.__name__} takes no argument {name!r}; it takes "
                            f"{sorted(accepted - {'params'})}")
    if betas != [None, None]:
        default = inspect.signature(opt).parameters["betas"].default
        out["betas"] = tuple(b if b is not None else d for b, d in zip(betas, default))
    return out


def OptimWrapper(params: Iterable, opt: type = torch.optim.AdamW, hp_map: dict | None = None,
                 **hypers) -> torch.optim.Optimizer:
    """The torch optimizer ``opt`` built with the course's hyper-parameter names (``mom``,
    ``sqr_mom``, ``wd``, ``eps``, ``lr``) mapped to its own (``momentum`` or ``betas``, ``alpha``,
    ``weight_decay``). ``hp_map`` maps further names ``{course_name: torch_name}``.

    Course code passes it as ``opt_func=partial(OptimWrapper, opt=torch.optim.SGD)``; a
    ``Learner`` takes torch optimizers directly too.

    >>> opt = OptimWrapper(torch.nn.Linear(2, 1).parameters(), opt=torch.optim.SGD, lr=0.1, mom=0.9)
    >>> type(opt).__name__, opt.defaults["momentum"]
    ('SGD', 0.9)
    """
    if not (isinstance(opt, type) and issubclass(opt, torch.optim.Optimizer)):
        raise TypeError(f"OptimWrapper(opt={opt!r}): expected a torch.optim.Optimizer class such as torch.optim.SGD")
    hp_map = hp_map or {}
    direct = {hp_map[k]: v for k, v in hypers.items() if k in hp_map}
    mapped = _torch_hypers(opt, {k: v for k, v in hypers.items() if k not in hp_map})
    return opt(list(params), **mapped, **direct)
