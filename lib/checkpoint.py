"""Complete, atomic checkpoints: ``learn.save`` / ``learn.load``.

A checkpoint holds the model, the optimizer (and where it was in the run: the epoch and the
training iteration, so schedules continue), the RNG states of Python, NumPy and torch, and the
state of every callback that has ``state_dict`` / ``load_state_dict`` (a gradient scaler, say).
It is written to a temporary file in the same folder and renamed, so a crash while saving never
leaves a half-written file under the real name.
"""
from __future__ import annotations

import io
import os
import pickle
import tempfile
from pathlib import Path

import torch

from fastlearn.torch_core import get_rng_states, set_rng_states

FORMAT_VERSION = 1


def checkpoint_path(learn, name) -> Path:
    """``name`` as given if it is a path with a suffix, else ``learn.path/model_dir/name.pth``."""
    name = Path(name)
    if name.suffix:
        return name if name.is_absolute() else Path(learn.path) / learn.model_dir / name
    return Path(learn.path) / learn.model_dir / f"{name}.pth"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _plain_rng(states: dict) -> dict:
    """RNG states as tensors / lists only, so the file loads with ``weights_only=True``."""
    version, state, gauss = states["python"]
    name, keys, pos, has_gauss, cached = states["numpy"]
    plain = {"python": [version, list(state), gauss],
             "numpy": [name, torch.from_numpy(keys.astype("int64")), pos, has_gauss, cached],
             "torch": states["torch"]}
    if "cuda" in states:
        plain["cuda"] = list(states["cuda"])
    return plain


def _restore_rng(plain: dict) -> dict:
    import numpy as np
    version, state, gauss = plain["python"]
    name, keys, pos, has_gauss, cached = plain["numpy"]
    states = {"python": (version, tuple(state), gauss),
              "numpy": (name, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached),
              "torch": plain["torch"].cpu()}  # loading with map_location="cuda" moved them
    if "cuda" in plain:
        states["cuda"] = [state.cpu() for state in plain["cuda"]]
    return states


def unwrapped_model(learn) -> torch.nn.Module:
    """The model without a ``DistributedDataParallel`` (or compile) wrapper."""
    model = learn.model
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    return getattr(model, "_orig_mod", model)


def save_learner(learn, name, with_opt: bool = True) -> Path:
    """Write the learner's full state to ``checkpoint_path(learn, name)``; only rank 0 writes."""
    path = checkpoint_path(learn, name)
    state = {
        "format": FORMAT_VERSION,
        "model": unwrapped_model(learn).state_dict(),
        "epoch": int(learn.epoch),
        "train_iter": int(getattr(learn, "train_iter", 0)),
        "epochs_done": int(getattr(learn, "epochs_done", 0)),
        "rng": _plain_rng(get_rng_states()),
        "callbacks": {cb.name: cb.state_dict() for cb in learn.cbs if callable(getattr(cb, "state_dict", None))},
    }
    if with_opt and learn.opt is not None:
        state["opt"] = learn.opt.state_dict()
    if getattr(learn, "is_main_process", True):
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(path, buffer.getvalue())
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()  # every rank can load the file once save returns
    return path


def load_learner_state(learn, name, with_opt: bool = True, strict: bool = True) -> None:
    """Restore what :func:`save_learner` wrote; a damaged file raises a clear error."""
    path = checkpoint_path(learn, name)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; learn.save({Path(name).stem!r}) writes one there")
    try:
        state = torch.load(path, map_location=learn.device, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, OSError) as error:
        raise ValueError(f"checkpoint {path} could not be read ({error}); the file is damaged or "
                         "truncated: save it again or use an earlier checkpoint") from error
    if not isinstance(state, dict) or "model" not in state:
        state = {"model": state}
    unwrapped_model(learn).load_state_dict(state["model"], strict=strict)
    if with_opt and "opt" in state:
        if learn.opt is None:
            learn.create_opt()
        learn.opt.load_state_dict(state["opt"])
    if "epoch" in state:
        learn.epoch = state["epoch"]
        learn.train_iter = state.get("train_iter", 0)
        learn.epochs_done = state.get("epochs_done", learn.epoch + 1)
    if "rng" in state:
        set_rng_states(_restore_rng(state["rng"]))
    for cb in learn.cbs:
        saved = state.get("callbacks", {}).get(cb.name)
        if saved is not None and callable(getattr(cb, "load_state_dict", None)):
            cb.load_state_dict(saved)
