"""Small tensor helpers: the default device, moving nested batches, seeding.

>>> to_device((torch.zeros(1), [torch.ones(1)]), "cpu")[1][0]
tensor([1.])
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from fastlearn.config import get_config


def default_device(device: torch.device | str | None = None) -> torch.device:
    """``device`` if given, else the config's, where ``auto`` means CUDA, then MPS, then CPU.

    >>> default_device("cpu")
    device(type='cpu')
    """
    if device is None:
        device = get_config().get("defaults", "device")
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ValueError(f"device={device!r} is not a device; use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'") from None


def to_device(batch, device: torch.device | str | None = None, non_blocking: bool = False):
    """Move every tensor in a nested tuple / list / dict to ``device`` (default: :func:`default_device`)."""
    if device is None:
        device = default_device()
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, (list, tuple)):
        moved = [to_device(b, device, non_blocking) for b in batch]
        return type(batch)(moved) if not hasattr(batch, "_fields") else type(batch)(*moved)
    if isinstance(batch, dict):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    return batch


def to_cpu(batch):
    """Move every tensor in a nested structure to the CPU and detach it."""
    if isinstance(batch, torch.Tensor):
        batch = batch.detach() if batch.requires_grad else batch
        return batch if batch.device.type == "cpu" else batch.cpu()
    return to_device(batch, "cpu")


def set_seed(seed: int, reproducible: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices); ``reproducible`` also makes cuDNN deterministic.

    >>> set_seed(42); a = torch.rand(1); set_seed(42); bool(a == torch.rand(1))
    True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if reproducible:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def get_rng_states() -> dict:
    """The RNG states of Python, NumPy and torch (CPU and CUDA), for a checkpoint."""
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    """Restore what :func:`get_rng_states` returned."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def is_main_process() -> bool:
    """True outside a distributed run and on rank 0 inside one (the process that writes files)."""
    distributed = torch.distributed
    return not distributed.is_available() or not distributed.is_initialized() or distributed.get_rank() == 0


def trainable_params(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters that require a gradient: the default splitter (one param group)."""
    return [p for p in model.parameters() if p.requires_grad]


def num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def tensor(x, *rest, **kwargs) -> torch.Tensor:
    """``torch.tensor`` that also takes what the course passes it: PIL images and NumPy arrays
    (their pixels / values), several numbers (``tensor(1, 2, 3)``) and lists of tensors (stacked).
    Keyword arguments (``dtype``, ``device``) go to ``torch.tensor`` / ``Tensor.to``.

    >>> tensor(1, 2, 3)
    tensor([1, 2, 3])
    >>> from PIL import Image
    >>> tensor(Image.new("L", (4, 2))).shape
    torch.Size([2, 4])
    """
    if rest:
        x = (x, *rest)
    if isinstance(x, torch.Tensor):
        return x.to(**kwargs) if kwargs else x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x).to(**kwargs) if kwargs else torch.from_numpy(x)
    if hasattr(x, "getbands"):  # a PIL image
        return tensor(np.array(x), **kwargs)
    if isinstance(x, (list, tuple)) and x and all(isinstance(t, torch.Tensor) for t in x):
        return torch.stack(list(x)).to(**kwargs) if kwargs else torch.stack(list(x))
    return torch.tensor(x, **kwargs)


def split_batch(batch, dl, dls, device: torch.device) -> tuple[tuple, tuple]:
    """``(xb, yb)`` of a batch: on ``device`` (unless ``dl`` already delivers there), the first
    ``n_inp`` parts (the loader's, else the data's, else 1) as inputs and the rest as targets.

    >>> split_batch((torch.zeros(2), torch.ones(2)), None, None, torch.device("cpu"))[1]
    (tensor([1., 1.]),)
    """
    batch = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
    if getattr(dl, "device", None) != device:  # fastlearn loaders already deliver there
        batch = to_device(batch, device)
    n_inp = getattr(dl, "n_inp", None) or getattr(dls, "n_inp", 1) or 1
    return tuple(batch[:n_inp]), tuple(batch[n_inp:])
