"""Exports that run without fastlearn: ONNX (``learn.export_onnx``, for onnxruntime and other
runtimes; the ``onnx`` extra) and TorchScript (``learn.export_torchscript``, for ``torch.jit.load``
and C++).

The exported model takes a batch as the loaders give it before normalization: for images,
float RGB in [0, 1], shape ``(batch, channels, height, width)``, with any batch size. The data's
``Normalize`` statistics are folded into the graph (``fold_normalization=True``) or only recorded,
and ``activation=True`` appends the loss's activation (softmax probabilities for a classifier).
Each file records, under the key ``fastlearn``, what a server needs: the inputs' shapes and
types, the normalization and whether it is folded, the loss whose activation the outputs went
through (None: raw outputs), the class names.

>>> learn.export_onnx("model.onnx")                                  # doctest: +SKIP
>>> session = onnxruntime.InferenceSession("model.onnx")             # doctest: +SKIP
>>> probs = session.run(None, {"input": images})[0]                 # doctest: +SKIP
>>> read_deploy_metadata("model.onnx")["vocab"]                      # doctest: +SKIP
['cat', 'dog']
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

import fastlearn
from fastlearn.atomic import atomic_write, atomic_write_bytes
from fastlearn.checkpoint import unwrapped_model
from fastlearn.debugging import skip_write
from fastlearn.foundation import import_optional
from fastlearn.losses import loss_activation
from fastlearn.torch_core import split_batch

METADATA_KEY = "fastlearn"


class DeployedModel(nn.Module):
    """The model as served: ``(x - mean) / std`` in front of it when given, the activation after
    it when given.

    >>> model = DeployedModel(nn.Identity(), mean=torch.tensor([0.5]), std=torch.tensor([0.25]))
    >>> model(torch.tensor([[1.0]]))
    tensor([[2.]])
    """

    def __init__(self, model: nn.Module, mean: torch.Tensor | None = None, std: torch.Tensor | None = None,
                 activation: Callable | None = None):
        super().__init__()
        self.model, self.activation = model, activation
        self.folded = mean is not None
        if self.folded:
            shape = (1, -1) + (1,) * 2 if mean.numel() > 1 else (1,)
            self.register_buffer("mean", mean.float().reshape(shape))
            self.register_buffer("std", std.float().reshape(shape))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.folded:
            inputs = ((inputs[0] - self.mean) / self.std, *inputs[1:])
        out = self.model(*inputs)
        return self.activation(out) if self.activation is not None else out


def normalization_stats(dls) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(mean, std)`` of the per-channel normalization the loaders' batch transforms apply to the
    first input (a transform for images leaves the inputs of a loader without kinds alone), or None."""
    for index in range(len(dls) if hasattr(dls, "__len__") else 0):
        dl = dls[index]
        kind = (getattr(dl, "kinds", None) or ("raw",))[0]
        for transform in getattr(getattr(dl, "after_batch", None), "fs", None) or []:
            mean, std = getattr(transform, "mean", None), getattr(transform, "std", None)
            applies = getattr(transform, "applies_to", None)
            if isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor) and hasattr(transform, "axes") \
                    and (applies is None or applies(kind)):
                return mean.detach().cpu().flatten(), std.detach().cpu().flatten()
    return None


def _vocab(dls) -> list | None:
    vocab = getattr(dls, "vocab", None)
    try:
        vocab = [str(v) for v in vocab] if vocab is not None else None
        json.dumps(vocab)
    except (TypeError, ValueError):
        return None
    return vocab


def example_inputs(learn, example=None) -> tuple[torch.Tensor, ...]:
    """The inputs of one validation (else training) batch on the CPU, or ``example`` as given."""
    if example is not None:
        return tuple(t.cpu() for t in (example if isinstance(example, (tuple, list)) else (example,)))
    dl = learn.dls.valid if len(learn.dls) > 1 and learn.dls.valid is not None and len(learn.dls.valid) else \
        learn.dls.train
    xb, _ = split_batch(next(iter(dl)), dl, learn.dls, learn.device)
    return tuple(x.detach().cpu() for x in xb)


@contextlib.contextmanager
def deployed(learn, fold_normalization: bool, activation: bool, example=None) -> Iterator[tuple]:
    """Inside the block: ``(module, inputs, metadata)``, the learner's model on the CPU in eval mode
    wrapped as served, example inputs as the served model takes them, and the metadata to record.
    The model's device and mode are put back afterwards."""
    model = unwrapped_model(learn)
    inputs = example_inputs(learn, example)
    stats = normalization_stats(learn.dls)
    if stats is not None and example is None and inputs[0].ndim == 4 and inputs[0].shape[1] == stats[0].numel():
        mean, std = stats
        inputs = (inputs[0] * std.reshape(1, -1, 1, 1) + mean.reshape(1, -1, 1, 1), *inputs[1:])  # as loaded
    act = functools.partial(loss_activation, learn.loss_func) if activation else None
    folded = fold_normalization and stats is not None
    metadata = {
        "format": "fastlearn-deploy", "library_version": fastlearn.__version__,
        "inputs": [{"name": name, "shape": ["batch", *x.shape[1:]], "dtype": str(x.dtype).replace("torch.", "")}
                   for name, x in zip(input_names(len(inputs)), inputs)],
        "normalization": None if stats is None else {"mean": stats[0].tolist(), "std": stats[1].tolist(),
                                                     "folded": folded},
        "activation": type(learn.loss_func).__name__ if activation else None,  # outputs through its activation
        "vocab": _vocab(learn.dls),
    }
    was_training, device = model.training, next(model.parameters(), torch.empty(0)).device
    model.eval().cpu()
    try:
        yield DeployedModel(model, *(stats if folded else (None, None)), activation=act).eval(), inputs, metadata
    finally:
        model.to(device).train(was_training)


def input_names(n: int) -> list[str]:
    """``["input"]`` for one input, ``["input_0", "input_1", ...]`` for several."""
    return ["input"] if n == 1 else [f"input_{i}" for i in range(n)]


def export_onnx(learn, fname: str | os.PathLike = "model.onnx", fold_normalization: bool = True,
                activation: bool = False, opset: int | None = None, example=None) -> Path:
    """Write ``learn``'s model as ONNX to ``learn.path / fname`` (atomically), with a dynamic batch
    axis and the metadata described above; returns the path. ``example``: inputs to trace with
    instead of a validation batch (then they are taken as the served model's inputs as they are).

    >>> export_onnx(learn, "model.onnx", activation=True)   # doctest: +SKIP
    """
    path = Path(learn.path) / fname
    if skip_write(learn, "ONNX export", path):
        return path
    import_optional("onnxscript", "onnx", "export_onnx")
    with deployed(learn, fold_normalization, activation, example) as (module, inputs, metadata), torch.no_grad():
        batch = torch.export.Dim("batch", min=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*axis name: batch will not be used")  # several inputs
            program = torch.onnx.export(module, inputs, dynamo=True, input_names=input_names(len(inputs)),
                                        output_names=["output"], opset_version=opset, verbose=False,
                                        dynamic_shapes=(tuple({0: batch} for _ in inputs),))  # for *inputs
        proto = program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    return atomic_write_bytes(path, proto.SerializeToString())


def export_torchscript(learn, fname: str | os.PathLike = "model.pt", fold_normalization: bool = True,
                       activation: bool = False, example=None) -> Path:
    """Write ``learn``'s model as TorchScript (traced on a batch, on the CPU) to ``learn.path /
    fname`` (atomically), with the metadata as the extra file ``fastlearn.json``; returns the
    path. Load it with ``torch.jit.load(path)``, no fastlearn needed.

    >>> export_torchscript(learn, "model.pt")   # doctest: +SKIP
    """
    path = Path(learn.path) / fname
    if skip_write(learn, "TorchScript export", path):
        return path
    with deployed(learn, fold_normalization, activation, example) as (module, inputs, metadata), torch.no_grad():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
            traced = torch.jit.trace(module, inputs, check_trace=False)
            extra = {f"{METADATA_KEY}.json": json.dumps(metadata)}
            return atomic_write(path, lambda file: torch.jit.save(traced, file, _extra_files=extra))


def read_deploy_metadata(fname: str | os.PathLike) -> dict:
    """The metadata an ONNX or TorchScript export recorded (ONNX needs the ``onnx`` package).

    >>> read_deploy_metadata("model.onnx")["inputs"][0]["shape"]   # doctest: +SKIP
    ['batch', 3, 64, 64]
    """
    path = Path(fname)
    if not path.is_file():
        raise FileNotFoundError(f"no exported model at {path}")
    if path.read_bytes()[:2] == b"PK":  # TorchScript files are zip archives
        extra = {f"{METADATA_KEY}.json": ""}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.load(io.BytesIO(path.read_bytes()), map_location="cpu", _extra_files=extra)
        return json.loads(extra[f"{METADATA_KEY}.json"])
    onnx = import_optional("onnx", "onnx", "read_deploy_metadata")
    model = onnx.load(str(path), load_external_data=False)
    for entry in model.metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    raise ValueError(f"{path} holds no fastlearn metadata; was it written by learn.export_onnx?")
