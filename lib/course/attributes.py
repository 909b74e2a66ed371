"""Attribute shortcuts the book's from-scratch code uses: ``store_attr``, ``GetAttr``, ``Self`` and
``delegates``.

They save typing in course code (chapter 19 builds its own ``Learner`` and ``Callback`` with
them); the library itself writes attributes out and does not use them.

>>> class Point:
...     def __init__(self, x, y): store_attr()
>>> p = Point(1, 2); (p.x, p.y)
(1, 2)
>>> from pathlib import Path
>>> list(map(Self.parent.name(), [Path("train/cat/1.png")]))
['cat']
"""
from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any


def store_attr(names: str | None = None, self: Any = None, but: str | tuple = "", **attrs) -> None:
    """Store the calling function's arguments as attributes of its ``self``.

    Called with no arguments inside ``__init__``, every argument becomes an attribute of the
    same name (chapter 19's ``def __init__(self, params, lr, wd=0.): store_attr()``). ``names``
    ("a,b" or "a b") stores only those; ``but`` leaves some out; keyword arguments store given
    values.

    >>> class SGD:
    ...     def __init__(self, params, lr, wd=0.): store_attr(but="params")
    >>> opt = SGD([], 0.1); opt.lr, opt.wd, hasattr(opt, "params")
    (0.1, 0.0, False)
    """
    frame = sys._getframe(1)
    try:
        code = frame.f_code
        arg_names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
        local = frame.f_locals
        if self is None:
            if not arg_names or arg_names[0] not in local:
                raise TypeError("store_attr() found no self: call it inside a method, or pass self=")
            self = local[arg_names[0]]
        excluded = set(but.replace(",", " ").split()) if isinstance(but, str) else set(but)
        if names is None:
            wanted = [n for n in arg_names[1:] if n not in excluded]
        else:
            wanted = [n for n in names.replace(",", " ").split() if n not in excluded]
        missing = [n for n in wanted if n not in local]
        if missing:
            raise ValueError(f"store_attr: {missing} are not arguments or variables of {code.co_name}(); "
                             f"its arguments are {list(arg_names)}")
        for name in wanted:
            setattr(self, name, local[name])
        for name, value in attrs.items():
            setattr(self, name, value)
    finally:
        del frame


class GetAttr:
    """Forward unknown attributes to the object named by ``_default`` (``"default"`` unless set).

    Chapter 19 writes ``class Callback(GetAttr): _default = 'learner'`` so that ``self.model``
    inside a callback reads ``self.learner.model``. Names starting with ``_`` are not forwarded;
    ``_xtra`` (a list of names) limits forwarding to those.

    >>> class Wrapper(GetAttr):
    ...     _default = "inner"
    ...     def __init__(self, inner): self.inner = inner
    >>> Wrapper([3, 1, 2]).count(1)
    1
    """

    _default = "default"
    _xtra: list[str] | None = None

    def __getattr__(self, name: str):
        default = type(self)._default
        if name.startswith("_") or name == default:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        try:
            inner = object.__getattribute__(self, default)
        except AttributeError:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r} (and no {default!r} "
                                 "to look it up on)") from None
        if self._xtra is not None and name not in self._xtra:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r} (forwarded names: {self._xtra})")
        return getattr(inner, name)

    def __dir__(self) -> list[str]:
        inner = self.__dict__.get(type(self)._default)
        forwarded = [n for n in dir(inner) if not n.startswith("_")] if inner is not None else []
        return sorted(set(super().__dir__()) | set(forwarded if self._xtra is None else self._xtra))

    def __setstate__(self, state: dict) -> None:  # unpickling must not forward before __dict__ exists
        self.__dict__.update(state)


class _SelfChain:
    """A recorded chain of attribute reads and calls, applied to an object when called with it."""

    def __init__(self, steps: tuple = ()):
        object.__setattr__(self, "_steps", steps)

    def __getattr__(self, name: str) -> "_SelfChain":
        if name.startswith("__"):
            raise AttributeError(name)
        return _SelfChain(self._steps + ((name, None),))

    def __call__(self, *args, **kwargs):
        steps = self._steps
        if steps and steps[-1][1] is None:
            # ``Self.sum()`` or ``Self.parent.name()``: these are the arguments of the last read
            return _SelfChain(steps[:-1] + ((steps[-1][0], (args, kwargs)),))
        if len(args) != 1 or kwargs:
            raise TypeError(f"{self!r} is applied to one object, got {len(args)} arguments")
        value = args[0]
        for name, call in steps:
            value = getattr(value, name)
            if call is not None and callable(value):
                value = value(*call[0], **call[1])
        return value

    def __repr__(self) -> str:
        text = "Self"
        for name, call in self._steps:
            text += f".{name}" + ("" if call is None else "(" + ", ".join(
                [repr(a) for a in call[0]] + [f"{k}={v!r}" for k, v in call[1].items()]) + ")")
        return text


Self = _SelfChain()
"""``Self.method(args)`` is ``lambda o: o.method(args)``; attribute reads chain
(``Self.parent.name()`` gives ``o.parent.name``: a value that is not callable is not called).
Chapter 19 labels files with ``files.map(Self.parent.name())``.

>>> Self.upper()("cat"), Self.real()(3)
('CAT', 3)
"""


def delegates(to: Callable | type | None = None, keep: bool = False, but: tuple[str, ...] = ()):
    """Decorator: show ``to``'s keyword arguments in place of ``**kwargs`` in the signature.

    ``@delegates(TabularModel)`` on a class (or its ``__init__``) documents the arguments its
    ``**kwargs`` pass on (chapter 8's ``EmbeddingNN``); with ``to=None`` on a class, the base
    class's ``__init__``. Only the signature changes (``help()``, ``inspect.signature``, tab
    completion); what the function does is untouched. ``keep=True`` leaves ``**kwargs`` in too.

    >>> def base(a, b=1, c=2): ...
    >>> @delegates(base)
    ... def wrapper(a, **kwargs): ...
    >>> str(inspect.signature(wrapper))
    '(a, *, b=1, c=2)'
    """
    def decorate(f):
        target = f.__init__ if isinstance(f, type) else f
        source = to
        if source is None:
            if not isinstance(f, type):
                raise TypeError(f"delegates() on the function {f.__name__} needs to= (the function its **kwargs go to)")
            source = f.__base__.__init__
        elif isinstance(source, type):
            source = source.__init__
        signature = inspect.signature(target)
        params = dict(signature.parameters)
        var_kw = next((p for p in params.values() if p.kind == inspect.Parameter.VAR_KEYWORD), None)
        if var_kw is None:
            return f
        if not keep:
            del params[var_kw.name]
        added = {name: p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                 for name, p in inspect.signature(source).parameters.items()
                 if p.default is not inspect.Parameter.empty and name not in params and name not in but}
        ordered = [p for p in params.values() if p.kind != inspect.Parameter.VAR_KEYWORD] + list(added.values())
        if keep:
            ordered.append(var_kw)
        target.__signature__ = signature.replace(parameters=_sorted_kinds(ordered))
        return f
    return decorate


def _sorted_kinds(params: list[inspect.Parameter]) -> list[inspect.Parameter]:
    """Parameters in an order ``inspect.Signature`` accepts (by kind, keeping order within a kind)."""
    return sorted(params, key=lambda p: p.kind)
