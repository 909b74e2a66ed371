"""The model-building names of the book: ``Module`` (no ``super().__init__()`` needed),
``sequential``, ``Lambda``, ``params``, ``one_hot``, ``to_np`` and torch's ``Tensor``.

>>> class DotProduct(Module):
...     def __init__(self, n_users, n_movies, n_factors):
...         self.user_factors = nn.Embedding(n_users, n_factors)
...         self.movie_factors = nn.Embedding(n_movies, n_factors)
...     def forward(self, x):
...         return (self.user_factors(x[:, 0]) * self.movie_factors(x[:, 1])).sum(dim=1)
>>> DotProduct(3, 4, 2)(torch.tensor([[0, 1], [2, 3]])).shape
torch.Size([2])
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import Tensor, nn  # noqa: F401  (Tensor: chapter 19 subclasses it)

class Module(nn.Module):
    """``nn.Module`` whose subclasses may skip ``super().__init__()``.

    The book's models (``DotProduct`` in chapter 8, the language models of chapter 12, the
    ``ResBlock`` of chapter 14, the Siamese model of chapter 15) assign layers in ``__init__``
    straight away. ``nn.Module``'s own set-up runs before the subclass's ``__init__``; calling
    ``super().__init__()`` as well is harmless. Everything else is plain ``nn.Module``.

    >>> class Scale(Module):
    ...     def __init__(self, k): self.k = nn.Parameter(torch.tensor(float(k)))
    ...     def forward(self, x): return x * self.k
    >>> [name for name, _ in Scale(2).named_parameters()]
    ['k']
    """

    def __new__(cls, *args, **kwargs):
        module = super().__new__(cls)
        nn.Module.__init__(module)
        return module

    def __init__(self, *args, **kwargs):
        """Set up already (in ``__new__``); takes and ignores the subclass's arguments."""


class Lambda(Module):
    """A function as a layer (what :func:`sequential` wraps plain functions in).

    >>> Lambda(lambda x: x * 2)(torch.ones(1))
    tensor([2.])
    """

    def __init__(self, func: Callable):
        if not callable(func):
            raise TypeError(f"Lambda(func={func!r}): expected a function")
        self.func = func

    def forward(self, x):
        return self.func(x)

    def extra_repr(self) -> str:
        return getattr(self.func, "__name__", repr(self.func))


def sequential(*layers: nn.Module | Callable) -> nn.Sequential:
    """``nn.Sequential(*layers)``, where plain functions become :class:`Lambda` layers.

    Chapter 13 builds its CNN as ``sequential(conv(1, 4), conv(4, 8), ..., Flatten())``.

    >>> m = sequential(nn.Linear(2, 3), torch.relu, nn.Linear(3, 1))
    >>> [type(layer).__name__ for layer in m], m(torch.zeros(4, 2)).shape
    (['Linear', 'Lambda', 'Linear'], torch.Size([4, 1]))
    """
    wrapped = []
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Module):
            wrapped.append(layer)
        elif callable(layer):
            wrapped.append(Lambda(layer))
        else:
            raise TypeError(f"sequential: layer {i} is {layer!r} ({type(layer).__name__}); "
                            "expected an nn.Module or a function")
    return nn.Sequential(*wrapped)


def params(model: nn.Module) -> list[nn.Parameter]:
    """All of ``model``'s parameters as a list (chapter 15's splitter:
    ``[params(model.encoder), params(model.head)]``).

    >>> len(params(nn.Linear(2, 1)))
    2
    """
    return list(model.parameters())


def one_hot(x: int | Iterable[int] | torch.Tensor, c: int) -> torch.Tensor:
    """A ``(c,)`` uint8 vector with ones at index ``x`` (or at each index in ``x``); chapter 8
    picks a user's factors with ``user_factors.t() @ one_hot(3, n_users).float()``.

    >>> one_hot(1, 4), one_hot([0, 2], 4)
    (tensor([0, 1, 0, 0], dtype=torch.uint8), tensor([1, 0, 1, 0], dtype=torch.uint8))
    """
    indices = torch.as_tensor(x, dtype=torch.long).reshape(-1)
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= c):
        raise IndexError(f"one_hot({x!r}, {c}): indices must be in 0..{c - 1}")
    vector = torch.zeros(c, dtype=torch.uint8)
    vector[indices] = 1
    return vector


def to_np(x):
    """A tensor as a NumPy array (detached, on the CPU); lists, tuples and dicts of tensors are
    converted item by item. Chapter 9 averages predictions with a random forest's this way.

    >>> to_np(torch.tensor([1.5, 2.0]))
    array([1.5, 2. ], dtype=float32)
    """
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    if isinstance(x, (list, tuple)):
        return type(x)(to_np(v) for v in x) if not hasattr(x, "_fields") else type(x)(*(to_np(v) for v in x))
    if isinstance(x, dict):
        return {k: to_np(v) for k, v in x.items()}
    return np.asarray(x)
