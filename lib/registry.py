"""The code an export file may name, and the rule for every other name.

An export description names code in several places: the function that builds the model, the data
class that rebuilds the pipeline, the Learner class (``TextLearner`` for text), the loss, a tabular model's activation, a vision architecture or
cut function given as a dotted path, text tokenizer rules, modules to import. ``load_learner``
calls only

- what the library registered here with :func:`register_code` (its model builders, data classes,
  losses, and torch's own losses and activations), or a name resolved by a registry of names
  (``"resnet34"``, ``"AWD_LSTM"``, a built-in tokenizer rule, a registered transform);
- what the caller passed: ``load_learner(path, custom_objects=[MyNet])`` or
  ``custom_objects={"pkg.mod.MyNet": MyNet}``;
- any dotted path, imported, when the caller says the file is trusted: ``trust_code=True``.

Anything else is an :class:`UntrustedCodeError` that names the field and says how to allow it.
Outside a load (a script calling ``vision_learner(dls, "pkg.mod.my_arch")``) names resolve as
before: the script is the caller's own code.

>>> code_from_name("torch.nn.modules.activation.ReLU", "activation").__name__
'ReLU'
"""
from __future__ import annotations

import contextlib
import contextvars
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn
from torch.nn import functional as F
from torch.nn.modules import activation as torch_activations
from torch.nn.modules import loss as torch_losses

KINDS: tuple[str, ...] = ("model", "data", "loss", "activation", "arch", "cut", "rule", "module", "learner")
_WHAT = {"model": "model builder", "data": "data class", "loss": "loss", "activation": "activation",
         "arch": "architecture", "cut": "cut function", "rule": "tokenizer rule", "module": "module to import",
         "learner": "Learner class"}
_REGISTRY: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}


class UntrustedCodeError(ValueError):
    """An export names code that the library does not provide and the caller did not allow."""


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}; expected one of {KINDS}")
    return kind


def import_dotted(path: str) -> Any:
    """The object at ``"package.module.name"`` (nested names like ``"module.Class.method"`` work).

    This imports and runs code: the library calls it for names from export files only through
    :func:`code_from_name`, which applies the rules above.

    >>> import_dotted("torch.nn.Linear").__name__
    'Linear'
    """
    if not isinstance(path, str) or "." not in path:
        raise ValueError(f"{path!r} is not a dotted path like 'package.module.name'")
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is not None and not module_name.startswith(error.name):
                raise ValueError(f"importing {module_name!r} for {path!r} failed: {error}") from error
            continue
        try:
            for attribute in parts[split:]:
                obj = getattr(obj, attribute)
        except AttributeError as error:
            raise ValueError(f"could not find {path!r}: module {module_name!r} has no "
                             f"{'.'.join(parts[split:])!r}; is the installed version the one it was "
                             "exported with?") from error
        return obj
    raise ValueError(f"could not import {path!r}: no module {parts[0]!r}; install the package that "
                     "defines it, or put it on sys.path")


def dotted_path(obj: Any) -> str | None:
    """``"module.qualname"`` of a class or function that can be imported again, else None.

    >>> dotted_path(nn.Linear)
    'torch.nn.modules.linear.Linear'
    """
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    return f"{module}.{qualname}"


def register_code(kind: str, obj: Any, name: str | None = None) -> Any:
    """Let export files name ``obj`` as a ``kind`` (one of :data:`KINDS`), under ``name`` (default:
    its dotted path). Returns ``obj``, so it also works as a decorator for functions and classes.

    >>> register_code("loss", nn.MSELoss) is nn.MSELoss
    True
    """
    name = name or dotted_path(obj)
    if name is None:
        raise ValueError(f"{obj!r} has no importable name; pass name=")
    _REGISTRY[_check_kind(kind)][name] = obj
    return obj


def _import_library_module(name: str) -> None:
    """Import the longest prefix of ``name`` that is a module of this library (its code registers)."""
    parts = name.split(".")
    for end in range(len(parts), 1, -1):
        module = ".".join(parts[:end])
        if module in sys.modules:
            return
        try:
            importlib.import_module(module)
            return
        except ModuleNotFoundError as error:
            if error.name != module:
                raise
        except ImportError:
            return


def registered_code(kind: str, name: str) -> Any | None:
    """The object the library registered as ``kind`` under ``name``, or None."""
    table = _REGISTRY[_check_kind(kind)]
    if name not in table and isinstance(name, str) and name.startswith("fastlearn."):
        _import_library_module(name)
    return table.get(name)


@dataclass
class CodePolicy:
    """What a load may run besides the library's own code: ``allowed`` names (given by the
    caller), or any dotted path when ``trust_code``. ``source`` names the file in messages."""

    source: str
    trust_code: bool = False
    allowed: dict[str, Any] = field(default_factory=dict)


_POLICY: contextvars.ContextVar[CodePolicy | None] = contextvars.ContextVar("fastlearn_code_policy", default=None)


def allowed_code(custom_objects: Mapping[str, Any] | Any | None) -> dict[str, Any]:
    """``custom_objects`` as ``{dotted name: object}``: a mapping as given, or classes / functions
    (one or a list) under their dotted paths.

    >>> list(allowed_code([nn.Linear]))
    ['torch.nn.modules.linear.Linear']
    """
    if custom_objects is None:
        return {}
    if isinstance(custom_objects, Mapping):
        bad = [key for key in custom_objects if not isinstance(key, str)]
        if bad:
            raise TypeError(f"custom_objects maps dotted names to objects; got the key(s) {bad!r}")
        return dict(custom_objects)
    items = list(custom_objects) if isinstance(custom_objects, (list, tuple, set)) else [custom_objects]
    allowed = {}
    for obj in items:
        name = dotted_path(obj)
        if name is None:
            raise ValueError(f"custom_objects got {obj!r}, which has no importable name; pass a mapping "
                             "{'dotted.name.the.file.records': obj} instead")
        allowed[name] = obj
    return allowed


@contextlib.contextmanager
def code_policy(policy: CodePolicy) -> Iterator[CodePolicy]:
    """Resolve names with ``policy`` inside the block (``load_learner`` uses it)."""
    token = _POLICY.set(policy)
    try:
        yield policy
    finally:
        _POLICY.reset(token)


def _refuse(name: str, kind: str, policy: CodePolicy) -> UntrustedCodeError:
    return UntrustedCodeError(
        f"{policy.source} names the {_WHAT[kind]} {name!r}, which is not part of fastlearn; loading an "
        "export runs no code named by the file unless you allow it. If it is your own code and you trust "
        f"the file, pass it: load_learner(path, custom_objects={{{name!r}: <the object>}}), "
        "or allow every name in the file with load_learner(path, trust_code=True) "
        "(fastlearn predict --trust-code)")


def check_code_name(name: Any, kind: str) -> None:
    """Raise if a load in progress may not use ``name`` as a ``kind``; never imports user code."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a {_WHAT[_check_kind(kind)]} is named by a non-empty string, got {name!r}")
    policy = _POLICY.get()
    if policy is None or policy.trust_code or name in policy.allowed:
        return
    if kind == "module":
        if name == "fastlearn" or name.startswith("fastlearn.") or name in sys.modules:
            return
    elif registered_code(kind, name) is not None:
        return
    raise _refuse(name, kind, policy)


def code_from_name(name: str, kind: str) -> Any:
    """The object an export names as a ``kind``: the library's registered one, one the caller
    allowed, or (outside a load, or with ``trust_code``) whatever the dotted path imports.

    >>> code_from_name("torch.nn.functional.mse_loss", "loss") is F.mse_loss
    True
    """
    check_code_name(name, kind)
    if kind == "module":
        return importlib.import_module(name)
    found = registered_code(kind, name)
    if found is not None:
        return found
    policy = _POLICY.get()
    if policy is not None and name in policy.allowed:
        return policy.allowed[name]
    return import_dotted(name)


def is_timm_model_name(name: Any) -> bool:
    """True when ``timm`` is installed and ``name`` is one of its model names, with or without a
    pretrained tag (``"vit_base_patch16_224.augreg_in21k"``). Such a name builds only an
    architecture from timm's own registry, so an export may name it like a fastlearn one.

    >>> is_timm_model_name("torch.nn.Linear")
    False
    """
    if not isinstance(name, str) or not name or importlib.util.find_spec("timm") is None:
        return False
    import timm
    return bool(timm.is_model(name))


def _register_torch_modules(kind: str, module) -> None:
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__:
            register_code(kind, obj)


_register_torch_modules("loss", torch_losses)
_register_torch_modules("activation", torch_activations)
_LOSS_FUNCTIONS = ("cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                   "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "poisson_nll_loss",
                   "gaussian_nll_loss", "soft_margin_loss", "multilabel_soft_margin_loss", "multi_margin_loss",
                   "margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss", "triplet_margin_loss")
for _name in _LOSS_FUNCTIONS:
    _function: Callable = getattr(F, _name)
    register_code("loss", _function)
    register_code("loss", _function, name=f"torch.nn.functional.{_name}")
