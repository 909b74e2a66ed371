"""Checks on an export file before ``load_learner`` builds anything from it.

The description must have the known fields with the known types, hold only JSON values (finite
numbers, no ``NaN``), and name only code the load may use (see :mod:`fastlearn.registry`). The
model's arguments must be ones its builder takes, with sane values for the arguments the library
knows (``arch``, ``cut``, ``act_cls``, ``y_range``, counts...). The weights must be a dict of
tensors whose names and shapes are those of the model the description builds: that is checked on
a model built on the ``meta`` device, which allocates nothing.

>>> check_json({"a": [1, 2.5, None]}, "the description")
>>> check_json({"a": float("nan")}, "the description")
Traceback (most recent call last):
...
ValueError: the description holds nan at a; expected finite numbers and plain JSON values
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fastlearn.registry import check_code_name, code_from_name, is_timm_model_name, registered_code

TOP_KEYS = frozenset({"format", "format_version", "library_version", "model", "learner", "data", "loss"})
DEFAULT_LEARNER = "fastlearn.learner.Learner"  # what files without a "learner" field (format version 1) load as
MAX_DEPTH = 64


def check_json(value: Any, where: str, at: str = "", depth: int = 0) -> None:
    """Raise unless ``value`` is plain JSON (dicts with string keys, lists, strings, bools, None,
    finite numbers), at most :data:`MAX_DEPTH` levels deep."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{where} is nested more than {MAX_DEPTH} levels deep at {at or 'the top'}")
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} holds {value} at {at or 'the top'}; expected finite numbers and plain "
                             "JSON values")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_json(item, where, f"{at}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has the non-string key {key!r} at {at or 'the top'}")
            check_json(item, where, f"{at}.{key}" if at else key, depth + 1)
        return
    raise ValueError(f"{where} holds a {type(value).__name__} at {at or 'the top'}; expected plain JSON values")


def _fields(value: Any, keys: dict[str, tuple], where: str, required: tuple[str, ...]) -> dict:
    """``value`` as a dict with only ``keys`` (name -> allowed types), ``required`` ones present."""
    if not isinstance(value, dict):
        raise ValueError(f"{where} is a {type(value).__name__}; expected a dict with keys {sorted(keys)}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {unknown}; known: {sorted(keys)}")
    missing = [key for key in required if key not in value]
    if missing:
        raise ValueError(f"{where} lacks {missing}")
    for key, types in keys.items():
        if key in value and not isinstance(value[key], types):
            raise ValueError(f"{where}: {key} is {value[key]!r}; expected {' or '.join(t.__name__ for t in types)}")
    return value


# --- the model's arguments ---------------------------------------------------------------------

def _count(minimum: int) -> Callable[[Any, str], None]:
    def check(value: Any, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value < 2 ** 31:
            raise ValueError(f"{where} is {value!r}; expected a whole number from {minimum} to 2**31 - 1")
    return check


def _y_range(value: Any, where: str) -> None:
    ok = value is None or (isinstance(value, list) and len(value) == 2
                           and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                           and value[0] < value[1])
    if not ok:
        raise ValueError(f"{where} is {value!r}; expected null or [low, high] with low < high")


def _none_only(value: Any, where: str) -> None:
    if value is not None:
        raise ValueError(f"{where} is {value!r}; an export records null here (a function cannot be described)")


def _not_pretrained(value: Any, where: str) -> None:
    if value not in (None, False):
        raise ValueError(f"{where} is {value!r}; an export is rebuilt with pretrained=false (its weights are "
                         "in the file)")


def _arch(value: Any, where: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} is {value!r}; expected an architecture name such as 'resnet34'")
    # a dotted path names code; plain names and timm's tagged names come from architecture registries
    if "." in value and not is_timm_model_name(value):
        check_code_name(value, "arch")


def _cut(value: Any, where: str) -> None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return
    check_code_name(value, "cut")


def _activation(value: Any, where: str) -> None:
    if value is None:
        return
    _fields(value, {"builder": (str,), "args": (dict,)}, where, ("builder",))
    check_code_name(value["builder"], "activation")
    bad = {k: v for k, v in value.get("args", {}).items() if not isinstance(v, (int, float, str, bool))}
    if bad:
        raise ValueError(f"{where}.args {bad!r}: an activation's arguments are numbers, strings or bools")


ARG_RULES: dict[str, Callable[[Any, str], None]] = {
    "arch": _arch, "cut": _cut, "act_cls": _activation, "init": _none_only, "pretrained": _not_pretrained,
    "y_range": _y_range, "n_out": _count(1), "n_class": _count(1), "out_sz": _count(1), "vocab_sz": _count(1),
    "n_in": _count(1), "n_factors": _count(1), "n_cont": _count(0), "seq_len": _count(1),
}


def check_builder_args(builder: Callable, args: dict, where: str) -> None:
    """The arguments must be parameters of ``builder`` (all its required ones given) and pass
    :data:`ARG_RULES`."""
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        params = None
    if params is not None and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(args) - set(params))
        if unknown:
            raise ValueError(f"{where} has argument(s) {unknown} that {getattr(builder, '__qualname__', builder)} "
                             f"does not take; it takes {list(params)}")
        missing = [name for name, p in params.items() if p.default is p.empty
                   and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in args]
        if missing:
            raise ValueError(f"{where} lacks the required argument(s) {missing}")
    for name, value in args.items():
        if name in ARG_RULES:
            ARG_RULES[name](value, f"{where}.{name}")


# --- the whole description -------------------------------------------------------------------

def check_description(description: Any, source: str) -> dict:
    """Check the description's fields and the code they name, resolving the names (no model or
    data is built); returns ``{"model": builder, "data": data class, "loss": the rebuilt loss or None,
    "learner": the Learner class}``."""
    where = f"the description in {source}"
    check_json(description, where)
    _fields(description, {key: (object,) for key in TOP_KEYS}, where, ("format", "model", "data"))
    model = _fields(description["model"], {"builder": (str,), "args": (dict,)}, f"{where}: model", ("builder",))
    builder = code_from_name(model["builder"], "model")
    if not callable(builder):
        raise ValueError(f"{where}: the model builder {model['builder']!r} is not callable")
    check_builder_args(builder, model.get("args", {}), f"{where}: model.args")
    data = _fields(description["data"], {"builder": (str,), "spec": (dict,), "imports": (list,)}, f"{where}: data",
                   ("builder", "spec"))
    for module in data.get("imports", []):
        check_code_name(module, "module")
    data_cls = code_from_name(data["builder"], "data")
    if not callable(getattr(data_cls, "from_inference_spec", None)):
        raise ValueError(f"{where}: the data class {data['builder']!r} has no from_inference_spec")
    learner_name = description.get("learner", DEFAULT_LEARNER)
    if not isinstance(learner_name, str):
        raise ValueError(f"{where}: learner is {learner_name!r}; expected the dotted name of a Learner class")
    learner_cls = code_from_name(learner_name, "learner")
    if not isinstance(learner_cls, type):
        raise ValueError(f"{where}: the learner {learner_name!r} is not a class")
    return {"model": builder, "data": data_cls, "loss": _loss(description.get("loss"), f"{where}: loss"),
            "learner": learner_cls}


def _loss(description: Any, where: str) -> Any:
    """The loss a description records, built (losses hold no weights), or None."""
    if description is None:
        return None
    loss = _fields(description, {"builder": (str,), "args": (dict,), "function": (str,)}, where, ())
    if ("function" in loss) == ("builder" in loss):
        raise ValueError(f"{where} is {loss!r}; expected {{'builder': ..., 'args': {{...}}}} or {{'function': ...}}")
    if "function" in loss:
        return code_from_name(loss["function"], "loss")
    cls = code_from_name(loss["builder"], "loss")
    args = loss.get("args", {})
    bad = {k: v for k, v in args.items() if not isinstance(v, (int, float, str, bool))}
    if bad:
        raise ValueError(f"{where}.args {bad!r}: a loss's recorded arguments are numbers, strings or bools")
    check_builder_args(cls, args, f"{where}.args")
    try:
        return cls(**args)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {loss['builder']}(**{args}) fails: {error}") from error


# --- the weights -------------------------------------------------------------------------------

def check_state_dict(state: Any, source: str) -> dict:
    """The weights must be a dict of tensors under string names."""
    if not isinstance(state, dict):
        raise ValueError(f"the weights in {source} are a {type(state).__name__}; expected a dict of tensors")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"the weights in {source} hold entries that are not named tensors: {bad[:5]!r}")
    return state


def check_weights_fit(model: nn.Module, state: dict, source: str) -> None:
    """Raise, naming the entries, unless ``state`` has exactly ``model``'s tensor names and shapes."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    missing, unexpected = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    wrong = [f"{k}: {got[k]} in the file, {expected[k]} in the model" for k in expected
             if k in got and got[k] != expected[k]]
    if missing or unexpected or wrong:
        parts = ([f"missing {missing[:5]}"] if missing else []) + ([f"unexpected {unexpected[:5]}"] if unexpected
                                                                  else []) + wrong[:5]
        raise ValueError(f"the weights in {source} do not fit the model its description builds ({'; '.join(parts)}); "
                         "the file is damaged or was edited: export the model again")


def is_library_builder(builder: Callable, name: str) -> bool:
    """True when ``name`` is one of the library's registered model builders (safe to build on meta)."""
    return registered_code("model", name) is builder
