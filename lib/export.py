"""Export a trained Learner as weights plus a declarative description; rebuild it for inference.

The file is a ``torch.save`` of ``{"description": <JSON text>, "state_dict": <tensors>}``, read
back with ``torch.load(weights_only=True)``: no pickled Python objects, so loading runs no code
from the file and needs none of the training script's functions. The description records:

- ``model``: ``{"builder": "package.module.callable", "args": {...}}``, called to rebuild the model.
  ``vision_learner`` (and the other application learners) set ``learn.model_spec`` to this. For
  your own ``nn.Module``, either set ``learn.model_spec`` yourself, or give the model an
  ``export_args`` dict of its constructor's arguments (``self.export_args = dict(n_hidden=64)``
  in ``__init__``); its class must then be importable (defined in a module, not ``__main__``).
- ``data``: ``dls.inference_spec()`` and the dotted path of the class whose
  ``from_inference_spec(spec, device)`` rebuilds what inference needs (vocab, item transforms,
  normalization).
- ``loss``: the loss class and its simple arguments (its activation and decoding give ``predict``
  its probabilities and label), and the library version.

>>> learn.export("model.pkl")                        # doctest: +SKIP
>>> learn = load_learner("model.pkl")                # doctest: +SKIP
>>> label, index, probs = learn.predict("shoe.png")  # doctest: +SKIP
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import tempfile
from pathlib import Path as PlainPath
from typing import Any

import torch
from torch import nn

import fastlearn
from fastlearn.torch_core import default_device

FORMAT = "fastlearn-export"
FORMAT_VERSION = 1


def import_dotted(path: str) -> Any:
    """The object at ``"package.module.name"`` (nested names like ``"module.Class.method"`` work).

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

    >>> dotted_path(torch.nn.Linear)
    'torch.nn.modules.linear.Linear'
    """
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    return f"{module}.{qualname}"


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


def _rebuild_loss(description: dict | None, dls) -> Any:
    if description is None:
        return getattr(dls, "loss_func", None) or nn.Identity()
    if "function" in description:
        return import_dotted(description["function"])
    return import_dotted(description["builder"])(**description["args"])


def _modules_to_import(dls) -> list[str]:
    """Modules defining the data's blocks and transforms: imported at load time so that they register."""
    objects = list(getattr(dls.train_ds, "blocks", None) or [])
    for dl in (dls.train, dls.valid):
        for pipeline in (getattr(dl, "after_item", None), getattr(dl, "after_batch", None)):
            objects.extend(getattr(pipeline, "fs", None) or [])
    modules = {type(obj).__module__ for obj in objects}
    return sorted(m for m in modules if m and m != "__main__" and not m.startswith("builtins"))


def _atomic_torch_save(obj: Any, path: PlainPath) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def export_learner(learn, fname: str | os.PathLike = "export.pkl") -> PlainPath:
    """Write ``learn``'s weights and description to ``learn.path / fname`` (atomically); returns the path.

    >>> export_learner(learn, "model.pkl")   # doctest: +SKIP
    PosixPath('model.pkl')
    """
    dls = learn.dls
    if not hasattr(dls, "inference_spec"):
        raise TypeError(f"the data ({type(dls).__name__}) cannot describe itself for inference "
                        "(no inference_spec()); build it with DataBlock / ImageDataLoaders to export")
    data_builder = dotted_path(type(dls))
    if data_builder is None:
        raise ValueError(f"the data class {type(dls).__qualname__} cannot be imported when loading; "
                         "define it in a module")
    description = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "library_version": fastlearn.__version__,
        "model": model_spec_of(learn),
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
    path = PlainPath(learn.path) / fname
    _atomic_torch_save({"description": text, "state_dict": state}, path)
    return path


def read_export(fname: str | os.PathLike) -> tuple[dict, dict]:
    """The description and the state dict of an export file, with clear errors for bad files."""
    path = PlainPath(fname)
    if not path.is_file():
        raise FileNotFoundError(f"no export file at {path}; pass the path learn.export() wrote")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} is not a readable fastlearn export: it is corrupted, truncated or another "
                         f"kind of file ({type(error).__name__}: {str(error)[:200]}); "
                         "export the model again") from error
    if not isinstance(content, dict) or "description" not in content or "state_dict" not in content:
        raise ValueError(f"{path} loads but is not a fastlearn export (expected the dict learn.export() writes)")
    try:
        description = json.loads(content["description"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"the description inside {path} is damaged ({error}); export the model again") from error
    if description.get("format") != FORMAT:
        raise ValueError(f"{path} is not a fastlearn export (format {description.get('format')!r})")
    if description.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path} was written by fastlearn {description.get('library_version')} in a newer format "
                         f"(version {description['format_version']}); upgrade fastlearn to load it")
    return description, content["state_dict"]


def load_learner(fname: str | os.PathLike, cpu: bool = True):
    """Rebuild the Learner that :func:`export_learner` wrote, ready for ``predict`` and ``get_preds``.

    ``cpu=False`` puts it on the default device. ``learn.dls.vocab`` is the training vocab and
    ``learn.dls.test_dl(items)`` prepares new items the way validation items were.

    >>> learn = load_learner("export.pkl")        # doctest: +SKIP
    >>> learn.predict(PILImage.create("cat.png")) # doctest: +SKIP
    """
    from fastlearn.learner import Learner
    path = PlainPath(fname)
    description, state = read_export(path)
    device = torch.device("cpu") if cpu else default_device()
    spec = description["model"]
    try:
        builder = import_dotted(spec["builder"])
    except ValueError as error:
        raise ValueError(f"{path} needs the model builder {spec['builder']!r} to rebuild its model, and it cannot "
                         f"be imported: {error}") from error
    model = builder(**spec.get("args", {}))
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"the weights in {path} do not fit the model {spec['builder']}({spec.get('args')}): "
                         f"{str(error)[:300]}") from error
    data = description["data"]
    try:
        data_cls = import_dotted(data["builder"])
    except ValueError as error:
        raise ValueError(f"{path} needs {data['builder']!r} to rebuild its data pipeline: {error}") from error
    for module in data.get("imports", []):
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(f"{path} needs the module {module!r}, which defines part of its data pipeline, and "
                             f"it cannot be imported ({error}); install it or put it on sys.path") from error
    dls = data_cls.from_inference_spec(data["spec"], device)
    learn = Learner(dls, model, loss_func=_rebuild_loss(description.get("loss"), dls), device=device)
    learn.model_spec = spec
    learn.model.eval()
    return learn
