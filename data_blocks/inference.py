"""What inference needs, as JSON: ``inference_spec(dls)`` describes it, ``parts_from_spec(spec)``
rebuilds its blocks and transforms (``Datasets.from_inference_spec`` then makes the loaders).

The description names blocks and transforms (with their arguments, vocab and normalisation
statistics); rebuilding needs no pickles and none of the training code's functions (label
functions, getters): at inference the inputs are given directly.

>>> spec = dls.inference_spec()                      # doctest: +SKIP
>>> dls2 = Datasets.from_inference_spec(spec)        # doctest: +SKIP
>>> dls2.test_dl(["cat.png"]).one_batch()[0].shape   # doctest: +SKIP
"""
from __future__ import annotations

import importlib

from fastlearn.data.blocks import block_from_description
from fastlearn.data.pipeline import Pipeline
from fastlearn.data.transforms import transform_from_description

SPEC_FORMAT = "fastlearn.data.inference/1"
SPEC_KEYS = ("format", "n_inp", "inputs", "targets", "item_tfms", "batch_tfms", "vocab", "c", "bs")
_PART_KEYS = ("name", "args", "module")


def _with_module(description: dict, obj) -> dict:
    return {**description, "module": type(obj).__module__}


def _import_module_of(description: dict) -> None:
    module = description.get("module")
    if isinstance(module, str) and module.startswith("fastlearn."):  # the library's own: it registers its parts
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(f"the inference description names the module {module!r}, which this version of "
                             f"fastlearn does not have ({error}); install the version it was exported with") from error


def _check_part(part, where: str) -> None:
    ok = (isinstance(part, dict) and set(part) <= set(_PART_KEYS) and isinstance(part.get("name"), str)
          and isinstance(part.get("args", {}), dict) and isinstance(part.get("module", ""), str))
    if not ok:
        raise ValueError(f"{where} is {str(part)[:200]}; expected {{'name': str, 'args': dict, 'module': str}}")


def check_spec(spec) -> None:
    """Raise a clear error unless ``spec`` has the fields and types :func:`inference_spec` writes.

    >>> check_spec({"format": SPEC_FORMAT, "n_inp": 1, "inputs": [], "targets": [], "item_tfms": [],
    ...             "batch_tfms": [], "vocab": None, "c": None})
    """
    if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
        raise ValueError(f"not a fastlearn inference description (format "
                         f"{spec.get('format') if isinstance(spec, dict) else type(spec).__name__!r}, "
                         f"expected {SPEC_FORMAT!r}); make it with dls.inference_spec()")
    unknown, missing = sorted(set(spec) - set(SPEC_KEYS)), [k for k in SPEC_KEYS[:6] if k not in spec]
    if unknown or missing:
        raise ValueError(f"the inference description has unknown keys {unknown} / lacks {missing}; "
                         f"expected {list(SPEC_KEYS)}")
    for key in ("n_inp", "bs"):
        value = spec.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"the inference description's {key} is {value!r}; expected a positive int")
    for key in ("inputs", "targets", "item_tfms", "batch_tfms"):
        if not isinstance(spec[key], list):
            raise ValueError(f"the inference description's {key} is a {type(spec[key]).__name__}; expected a list")
    for i, part in enumerate(spec["inputs"] + spec["targets"]):
        if not isinstance(part, dict) or not isinstance(part.get("kind"), str):
            raise ValueError(f"part {i} of the inference description is {str(part)[:200]}; expected "
                             "{'kind': str, 'block': {...} or null}")
        if part.get("block") is not None:
            _check_part(part["block"], f"the block of part {i}")
    for key in ("item_tfms", "batch_tfms"):
        for i, description in enumerate(spec[key]):
            _check_part(description, f"{key}[{i}]")


def _describe_pipeline(pipeline, where: str) -> list[dict]:
    if pipeline is None:
        return []
    if not isinstance(pipeline, Pipeline):
        raise TypeError(f"{where} is a plain function ({pipeline!r}); it cannot be exported. "
                        "Use Transform subclasses registered with @register_transform")
    return [_with_module(t.describe(), t) for t in pipeline.fs if t.split_idx != 0]


def inference_spec(dls) -> dict:
    """A JSON-able dict: input and target blocks (kind, name, args incl. vocab), the item and
    batch transforms that run at inference, ``n_inp``, ``vocab``, ``c`` and the validation batch
    size ``bs`` (``test_dl`` batches that many items, as the original loaders' did)."""
    dataset = dls.train_ds
    if not hasattr(dataset, "pipelines"):
        raise TypeError(f"inference_spec needs loaders built from Datasets or a DataBlock; this "
                        f"DataBunch holds {type(dataset).__name__}")
    n_inp = dataset.n_inp
    parts = []
    for p, (block, pipeline) in enumerate(zip(dataset.blocks, dataset.pipelines)):
        try:
            described = _with_module(block.describe(pipeline), block)
        except TypeError:
            if p < n_inp:
                raise
            described = None  # a target that cannot be rebuilt: predictions stay undecoded
        parts.append({"kind": block.kind, "block": described})
    vocab = dls.vocab
    return {
        "format": SPEC_FORMAT,
        "n_inp": n_inp,
        "inputs": parts[:n_inp],
        "targets": parts[n_inp:],
        "item_tfms": _describe_pipeline(dls.valid.after_item, "an item transform"),
        "batch_tfms": _describe_pipeline(dls.valid.after_batch, "after_batch"),
        "vocab": None if vocab is None else [v if isinstance(v, (str, int, float, bool)) else str(v)
                                             for v in vocab],
        "c": dls.c,
        "bs": getattr(dls.valid, "bs", None) or 64,
    }


def parts_from_spec(spec: dict) -> tuple[list, Pipeline, Pipeline]:
    """The blocks (those that can be rebuilt), the item transforms and the batch transforms
    ``spec`` describes, each rebuilt from the library's registries after ``spec`` is checked.

    >>> blocks, item_tfms, batch_tfms = parts_from_spec(dls.inference_spec())   # doctest: +SKIP
    """
    check_spec(spec)
    parts = [part for part in spec["inputs"] + spec["targets"] if part.get("block") is not None]
    for part in parts:
        _import_module_of(part["block"])
    blocks = [block_from_description(part["block"]) for part in parts]
    for d in spec["item_tfms"] + spec["batch_tfms"]:
        _import_module_of(d)
    return (blocks, Pipeline([transform_from_description(d) for d in spec["item_tfms"]]),
            Pipeline([transform_from_description(d) for d in spec["batch_tfms"]]))
