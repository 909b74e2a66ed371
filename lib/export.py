"""Export a trained Learner as weights plus a declarative description; rebuild its parts for inference.

The file is a ``torch.save`` of ``{"description": <JSON text>, "state_dict": <tensors>}``, read
back with ``torch.load(weights_only=True)``: no pickled Python objects, so loading runs no code
from the file and needs none of the training script's functions. The description records:

- ``model``: ``{"builder": "package.module.callable", "args": {...}}``, called to rebuild the model.
  ``vision_learner`` (and the other application learners) set ``learn.model_spec`` to this. For
  your own ``nn.Module``, either set ``learn.model_spec`` yourself, or give the model an
  ``export_args`` dict of its constructor's arguments (``self.export_args = dict(n_hidden=64)``
  in ``__init__``); its class must then be importable (defined in a module, not ``__main__``),
  and loading needs it passed: ``load_learner(path, custom_objects=[MyNet])``.
- ``data``: ``dls.inference_spec()`` and the dotted path of the class whose
  ``from_inference_spec(spec, device)`` rebuilds what inference needs (vocab, item transforms,
  normalization): ``dls.inference_builder()`` (the ``Datasets`` for loaders a DataBlock made),
  else the loaders' own class.
- ``learner``: the Learner class (``fastlearn.text.learner.TextLearner`` for text), so the loaded
  learner's ``predict`` is the original's (a language model's continues the text). A class of
  your own is recorded under its dotted path and, like your model, loads when you pass it
  (``custom_objects=[MyLearner]``); one defined in ``__main__`` is recorded as its nearest
  importable base class.
- ``loss``: the loss class and its simple arguments (its activation and decoding give ``predict``
  its probabilities and label), and the library version.

Loading runs no code the file names: the model builder, the data class, the loss and every other
name in the description must be one the library registered (:mod:`fastlearn.registry`), or one the
caller passes (``custom_objects``) or allows (``trust_code=True``). The whole description is
checked first (:mod:`fastlearn.export_checks`): fields, types, JSON values, the builder's
arguments, and the weights' names and shapes against a model built on the ``meta`` device.

This module sits below :mod:`fastlearn.learner` (``Learner.export`` calls :func:`export_learner`)
and never imports it; :func:`fastlearn.loading.load_learner` puts the rebuilt parts in a Learner.

>>> learn.export("model.pkl")                        # doctest: +SKIP
>>> learn = load_learner("model.pkl")                # doctest: +SKIP
>>> label, index, probs = learn.predict("shoe.png")  # doctest: +SKIP
"""
from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping
from pathlib import Path as PlainPath
from typing import Any, NamedTuple

import torch
from torch import nn

import fastlearn
from fastlearn.atomic import atomic_write
from fastlearn.debugging import skip_write
from fastlearn.export_checks import (DEFAULT_LEARNER, check_description, check_state_dict, check_weights_fit,
                                     is_library_builder)
from fastlearn.registry import (CodePolicy, UntrustedCodeError, allowed_code, code_from_name, code_policy,
                                dotted_path)
from fastlearn.torch_core import default_device

FORMAT = "fastlearn-export"
FORMAT_VERSION = 2  # 2: the Learner class is recorded ("learner"); version 1 files load as a plain Learner


def _json_value(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def model_spec_of(learn) -> dict:
    """``learn.model_spec``, or a spec from the model's class and its ``export_args``."""
    spec = getattr(learn, "model_spec", None)
    if spec is None:
        model = learn.model
        args = getattr(model, "export_args", None)
        if args is None:
            raise ValueError(
                f"cannot export a {type(model).__name__} model: fastlearn rebuilds models from a description, "
                "not a pickle. Give the model an export_args dict of its constructor arguments "
                "(self.export_args = dict(...) in __init__), or set learn.model_spec = "
                "{'builder': 'package.module.make_model', 'args': {...}}")
        path = dotted_path(type(model))
        if path is None:
            raise ValueError(f"the model class {type(model).__qualname__} is defined in {type(model).__module__}, "
                             "which cannot be imported when loading; move it into a module and import it from there")
        spec = {"builder": path, "args": dict(args)}
    if not isinstance(spec, dict) or "builder" not in spec:
        raise ValueError(f"learn.model_spec={spec!r}; expected "
                         "{'builder': 'package.module.callable', 'args': {...}}")
    if not _json_value(spec.get("args", {})):
        raise ValueError(f"the model arguments {spec.get('args')!r} are not JSON values (numbers, strings, "
                         "lists, dicts); pass names or numbers instead of objects")
    return {"builder": spec["builder"], "args": dict(spec.get("args", {}))}


def learner_class_name(learn) -> str:
    """The dotted path of ``learn``'s class, or of its nearest base class that can be imported
    again (a subclass defined in ``__main__`` cannot).

    >>> learner_class_name(language_model_learner(dls_lm, AWD_LSTM))   # doctest: +SKIP
    'fastlearn.text.learner.TextLearner'
    """
    paths = (dotted_path(cls) for cls in type(learn).__mro__)
    return next((path for path in paths if path is not None), DEFAULT_LEARNER)


def describe_loss(loss_func: Any) -> dict | None:
    """The loss as ``{"builder": class path, "args": {simple constructor args}}`` (a function: its path).

    >>> describe_loss(torch.nn.CrossEntropyLoss())["builder"]
    'torch.nn.modules.loss.CrossEntropyLoss'
    """
    if loss_func is None:
        return None
    if inspect.isfunction(loss_func) or inspect.isbuiltin(loss_func):
        path = dotted_path(loss_func)
        return {"function": path} if path else None
    cls = type(loss_func)
    path = dotted_path(cls)
    if path is None:
        return None
    args = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        value = getattr(loss_func, name, None)
        if value is not None and isinstance(value, (int, float, str, bool)):
            args[name] = value
    return {"builder": path, "args": args}


def _modules_to_import(dls) -> list[str]:
    """Modules defining the data's blocks and transforms: imported at load time so that they register."""
    objects = list(getattr(dls.train_ds, "blocks", None) or [])
    for dl in (dls.train, dls.valid):
        for pipeline in (getattr(dl, "after_item", None), getattr(dl, "after_batch", None)):
            objects.extend(getattr(pipeline, "fs", None) or [])
    modules = {type(obj).__module__ for obj in objects}
    return sorted(m for m in modules if m and m != "__main__" and not m.startswith("builtins"))


def export_learner(learn, fname: str | os.PathLike = "export.pkl") -> PlainPath:
    """Write ``learn``'s weights and description to ``learn.path / fname`` (atomically); returns the path.

    >>> export_learner(learn, "model.pkl")   # doctest: +SKIP
    PosixPath('model.pkl')
    """
    dls = learn.dls
    # "~/model.pkl" (or a learn.path "~/data") is in the home folder, not in a folder named "~"
    path = (PlainPath(learn.path) / PlainPath(fname).expanduser()).expanduser()
    if skip_write(learn, "export", path):
        return path
    if not hasattr(dls, "inference_spec"):
        raise TypeError(f"the data ({type(dls).__name__}) cannot describe itself for inference "
                        "(no inference_spec()); build it with DataBlock / ImageDataLoaders to export")
    data_cls = dls.inference_builder() if hasattr(dls, "inference_builder") else type(dls)
    data_builder = dotted_path(data_cls)
    if data_builder is None:
        raise ValueError(f"the data class {data_cls.__qualname__} cannot be imported when loading; "
                         "define it in a module")
    description = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "library_version": fastlearn.__version__,
        "model": model_spec_of(learn),
        "learner": learner_class_name(learn),
        "data": {"builder": data_builder, "spec": dls.inference_spec(), "imports": _modules_to_import(dls)},
        "loss": describe_loss(learn.loss_func),
    }
    try:
        text = json.dumps(description)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the export description is not JSON ({error}); the data's inference_spec() "
                         "and the model arguments must be plain values") from error
    model = getattr(learn.model, "_orig_mod", learn.model)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    content = {"description": text, "state_dict": state}
    return atomic_write(path, lambda file: torch.save(content, file))


def read_export(fname: str | os.PathLike) -> tuple[dict, dict]:
    """The description and the state dict of an export file, with clear errors for bad files."""
    path = PlainPath(fname).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no export file at {path}; pass the path learn.export() wrote")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} is not a readable fastlearn export: it is corrupted, truncated or another "
                         f"kind of file ({type(error).__name__}: {str(error)[:200]}); "
                         "export the model again") from error
    if isinstance(content, dict) and "model" in content and "format" in content and "description" not in content:
        raise ValueError(f"{path} is a checkpoint (written by learn.save()), not an export; load it into the learner "
                         "it was saved from with learn.load(name), then learn.export() writes a file load_learner reads")
    if not isinstance(content, dict) or "description" not in content or "state_dict" not in content:
        raise ValueError(f"{path} loads but is not a fastlearn export (expected the dict learn.export() writes)")
    try:
        description = json.loads(content["description"])
    except (TypeError, ValueError, RecursionError) as error:
        raise ValueError(f"the description inside {path} is damaged ({str(error)[:200]}); export the model "
                         "again") from error
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        found = description.get("format") if isinstance(description, dict) else type(description).__name__
        raise ValueError(f"{path} is not a fastlearn export (format {found!r})")
    version = description.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"the description inside {path} has format_version {version!r}; expected an int")
    if version < 0:
        raise ValueError(f"the description inside {path} has format_version {version}, which no fastlearn writes "
                         f"(0 to {FORMAT_VERSION}); the file was edited or damaged: export the learner again")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} was written by fastlearn {description.get('library_version')} in a newer format "
                         f"(version {description['format_version']}); upgrade fastlearn to load it")
    return description, content["state_dict"]


def _build_model(builder, args: dict, state: dict, source: str, on_meta_first: bool) -> nn.Module:
    """The model the description builds, with the file's weights. A library builder runs first on
    the ``meta`` device (no memory, no computation) so that a description whose sizes do not match
    its weights is refused before anything real is allocated."""
    if on_meta_first:
        try:
            with torch.device("meta"):
                on_meta = builder(**args)
        except UntrustedCodeError:
            raise
        except Exception:  # code the caller allowed (an architecture) may not build on meta: checked below
            on_meta = None
        if on_meta is not None:
            check_weights_fit(on_meta, state, source)
    model = builder(**args)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"the weights in {source} do not fit the model its description builds: "
                         f"{str(error)[:300]}") from error
    return model


class ExportedParts(NamedTuple):
    """What an export file rebuilds: the data for inference, the model with its weights, the loss,
    the device they are on, the model's description (``learn.model_spec``) and the Learner class."""
    dls: Any
    model: nn.Module
    loss_func: Any
    device: torch.device
    model_spec: dict
    learner_cls: type


def rebuild_exported(fname: str | os.PathLike, cpu: bool = True, trust_code: bool = False,
                     custom_objects: Mapping[str, Any] | list | type | None = None) -> ExportedParts:
    """The parts :func:`export_learner` wrote, rebuilt after the whole description and the weights
    are checked; :func:`fastlearn.loading.load_learner` puts them in a Learner.

    Loading runs only the library's own code. A file that needs yours (your ``nn.Module``, a cut
    function, a loss class) loads when you pass it: ``custom_objects=[MyNet]`` (matched by dotted
    path) or ``custom_objects={"pkg.mod.MyNet": MyNet}``; ``trust_code=True`` imports whatever the
    file names, for files you trust as much as your own code.

    >>> parts = rebuild_exported("export.pkl")      # doctest: +SKIP
    >>> parts.dls.vocab, type(parts.model).__name__  # doctest: +SKIP
    """
    path = PlainPath(fname).expanduser()
    description, state = read_export(path)
    source = str(path)
    device = torch.device("cpu") if cpu else default_device()
    policy = CodePolicy(source=source, trust_code=trust_code, allowed=allowed_code(custom_objects))
    with code_policy(policy):
        plan = check_description(description, source)
        state = check_state_dict(state, source)
        data = description["data"]
        for module in data.get("imports", []):
            try:
                code_from_name(module, "module")
            except ImportError as error:
                raise ValueError(f"{path} needs the module {module!r}, which defines part of its data pipeline, "
                                 f"and it cannot be imported ({error}); install it or put it on sys.path") from error
        try:
            dls = plan["data"].from_inference_spec(data["spec"], device)
        except (KeyError, TypeError, IndexError, AttributeError) as error:
            raise ValueError(f"the data description in {path} is damaged or was edited "
                             f"({type(error).__name__}: {error}); export the model again") from error
        spec = description["model"]
        model = _build_model(plan["model"], spec.get("args", {}), state, source,
                             on_meta_first=is_library_builder(plan["model"], spec["builder"]))
        loss = plan["loss"] if plan["loss"] is not None else (getattr(dls, "loss_func", None) or nn.Identity())
    return ExportedParts(dls, model, loss, device, spec, plan["learner"])
