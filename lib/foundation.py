"""``L``: the list the course indexes with lists and masks, maps and filters.

>>> xs = L([10, 20, 30, 40])
>>> xs[[0, 2]]
(#2) [10, 30]
>>> xs[[True, False, True, False]]
(#2) [10, 30]
>>> xs.map(lambda x: x // 10)
(#4) [1, 2, 3, 4]
"""
from __future__ import annotations

import importlib
import operator
import random
from collections.abc import Callable, Iterable
from typing import Any


def _listify(items) -> list:
    if items is None:
        return []
    if isinstance(items, (str, bytes, dict)) or not isinstance(items, Iterable):
        return [items]
    if hasattr(items, "shape") and getattr(items, "ndim", 1) == 0:
        return [items]
    return list(items)


class L(list):
    """A ``list`` that also takes a list of indices or a boolean mask as an index.

    Positional construction follows the course: ``L(1, 2, 3)`` and ``L([1, 2, 3])`` are the same;
    ``L()`` is empty; a single non-iterable becomes a one-item list.
    """

    def __init__(self, *items):
        if len(items) == 1:
            super().__init__(_listify(items[0]))
        else:
            super().__init__(items)

    def __getitem__(self, index):
        if isinstance(index, (int, slice)):
            result = super().__getitem__(index)
            return L(result) if isinstance(index, slice) else result
        if hasattr(index, "tolist"):
            index = index.tolist()
        if isinstance(index, Iterable) and not isinstance(index, (str, bytes)):
            index = list(index)
            if index and all(isinstance(i, bool) for i in index):
                if len(index) != len(self):
                    raise IndexError(f"boolean mask of length {len(index)} for an L of length {len(self)}")
                return L([x for x, keep in zip(self, index) if keep])
            return L([super(L, self).__getitem__(int(i)) for i in index])
        return super().__getitem__(index)

    def __repr__(self) -> str:
        shown = ", ".join(repr(x) for x in list.__getitem__(self, slice(0, 10)))
        more = "..." if len(self) > 10 else ""
        return f"(#{len(self)}) [{shown}{more}]"

    def __add__(self, other) -> "L":
        return L(list(self) + _listify(other))

    def __radd__(self, other) -> "L":
        return L(_listify(other) + list(self))

    def __mul__(self, n: int) -> "L":
        return L(list(self) * n)

    def __eq__(self, other) -> bool:
        return list(self) == _listify(other)

    __hash__ = None

    def __invert__(self) -> "L":
        """``~mask``: each item negated (``files[~is_train]`` keeps the others).

        >>> ~L(True, False)
        (#2) [False, True]
        """
        return L([not x for x in self])

    @classmethod
    def range(cls, start, stop: int | None = None, step: int = 1) -> "L":
        """``L.range(3)`` is ``(#3) [0, 1, 2]``; a collection stands for its length
        (``L.range(dataset)`` indexes a dataset).

        >>> L.range("abc")
        (#3) [0, 1, 2]
        """
        if hasattr(start, "__len__"):
            start = len(start)
        return cls(list(range(start) if stop is None else range(start, stop, step)))

    def map(self, f: Callable, *args, **kwargs) -> "L":
        """Apply ``f`` to every item (extra arguments are passed after the item)."""
        return L([f(x, *args, **kwargs) for x in self])

    def filter(self, f: Callable, negate: bool = False) -> "L":
        return L([x for x in self if bool(f(x)) != negate])

    def itemgot(self, *indices) -> "L":
        """``[x[i] for x in self]``, repeated for each index given."""
        result = self
        for index in indices:
            result = L([x[index] for x in result])
        return result

    def attrgot(self, name: str, default: Any = None) -> "L":
        """``[x.name for x in self]`` (dict items by key), ``default`` where missing."""
        return L([x.get(name, default) if isinstance(x, dict) else getattr(x, name, default) for x in self])

    def unique(self) -> "L":
        """Items in first-seen order without repeats."""
        return L(list(dict.fromkeys(self)))

    def sorted(self, key: str | Callable | None = None, reverse: bool = False) -> "L":
        if isinstance(key, str):
            key = operator.attrgetter(key)
        return L(sorted(self, key=key, reverse=reverse))

    def val2idx(self) -> dict:
        """``{item: index}`` for every item."""
        return {v: i for i, v in enumerate(self)}

    def shuffle(self) -> "L":
        items = list(self)
        random.shuffle(items)
        return L(items)

    def concat(self) -> "L":
        return L([y for x in self for y in _listify(x)])

    def sum(self):
        return sum(self)

    def argwhere(self, f: Callable) -> "L":
        return L([i for i, x in enumerate(self) if f(x)])

    def enumerate(self) -> "L":
        return L(list(enumerate(self)))

    def zip(self) -> "L":
        return L(list(zip(*self)))

    def copy(self) -> "L":
        return L(list(self))

    def items(self) -> list:
        return list(self)


def first(items, f: Callable | None = None, negate: bool = False):
    """The first item (matching ``f`` if given), or None."""
    for x in items:
        if f is None or bool(f(x)) != negate:
            return x
    return None


def coll_repr(items, max_n: int = 10) -> str:
    """A collection as the course prints one: its length, then the ``repr`` of its first
    ``max_n`` items joined by commas, ``...`` when there are more.

    >>> coll_repr(["xxbos", "xxmaj", "this"], 2)
    "(#3) ['xxbos','xxmaj'...]"
    """
    items = list(items)
    shown = ",".join(repr(x) for x in items[:max_n])
    return f"(#{len(items)}) [{shown}{'...' if len(items) > max_n else ''}]"


def listify(items) -> list:
    """``None`` → ``[]``, a single value → ``[value]``, an iterable → a list."""
    return _listify(items)


def import_optional(module: str, extra: str, what: str) -> Any:
    """Import ``module``, a package of an optional extra; missing, an ImportError that names the
    extra to install for ``what``.

    >>> import_optional("math", "none", "this example").sqrt(4.0)
    2.0
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{what} needs the {module.split('.')[0]!r} package, which is not installed: "
                          f"pip install 'fastlearn[{extra}]'") from error
