"""How a loader's batches travel: how many worker processes build them, how many batches each
prepares ahead, and whether they go through pinned memory.

``num_workers=None`` and ``prefetch_factor=None`` read the config (``fastlearn.config``);
``"auto"`` workers are 0 on a machine of two cores or fewer, where starting processes costs more
than it saves.

>>> resolve_num_workers(0), resolve_prefetch_factor(None) >= 1
(0, True)
"""
from __future__ import annotations

import gc
import multiprocessing
import os

import torch

from fastlearn.config import get_config


def _auto_num_workers() -> int:
    """'auto' worker count: 0 on small machines (process start-up costs more than it saves)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if cpus <= 2 else min(8, cpus - 1)


def resolve_num_workers(num_workers: int | str | None) -> int:
    """``None`` reads the config; ``"auto"`` picks a count for this machine.

    >>> resolve_num_workers(2)
    2
    """
    if num_workers is None:
        num_workers = get_config().get("defaults", "num_workers")
    if num_workers == "auto":
        return _auto_num_workers()
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers={num_workers!r}; expected a non-negative int or 'auto'")
    return num_workers


def resolve_prefetch_factor(prefetch_factor: int | None) -> int:
    """``None`` reads the config's ``prefetch_factor`` (batches each worker prepares ahead).

    >>> resolve_prefetch_factor(4)
    4
    """
    if prefetch_factor is None:
        prefetch_factor = get_config().get("defaults", "prefetch_factor")
    if isinstance(prefetch_factor, bool) or not isinstance(prefetch_factor, int) or prefetch_factor < 1:
        raise ValueError(f"prefetch_factor={prefetch_factor!r}; expected a positive int (batches each worker "
                         "prepares ahead), or None for the config's")
    return prefetch_factor


def should_pin_memory(device: torch.device | str | None, sample, pin_memory: bool | None = None) -> bool:
    """Whether batches go through pinned memory: by default only on a CUDA ``device`` and only
    when every tensor in ``sample`` (a dataset's first item) is on the CPU, since tensors already
    on a GPU cannot be pinned. ``pin_memory=False`` turns it off; ``True`` turns it on, and is an
    error for a dataset of GPU tensors.

    >>> should_pin_memory("cuda", (torch.zeros(2), 1)), should_pin_memory("cpu", (torch.zeros(2),))
    (True, False)
    >>> should_pin_memory("cuda", (torch.zeros(2, device="meta"),))
    False
    """
    if pin_memory is False:
        return False
    if pin_memory is None and (device is None or torch.device(device).type != "cuda"):
        return False
    elsewhere = sorted({str(t.device) for t in _tensors(sample) if t.device.type != "cpu"})
    if elsewhere and pin_memory:
        raise ValueError(f"pin_memory=True, but the dataset's items hold tensors on {elsewhere}; only "
                         "CPU tensors can be pinned: pass pin_memory=None (or False)")
    return not elsewhere


def iterate_loader(loader: torch.utils.data.DataLoader):
    """``iter(loader)``, with the parent's unreachable objects collected first where that forks
    worker processes. A forked worker inherits the whole heap, garbage cycles included (a finished
    Learner and its GPU tensors, say); if the worker's collector freed such a tensor, the worker
    would call into CUDA, which a forked process cannot, and abort with "CUDA error:
    initialization error". Persistent workers start once per loader, so this runs once per loader.
    """
    if loader.num_workers > 0 and not getattr(loader, "_iterator", None):  # workers about to start
        context = loader.multiprocessing_context or multiprocessing.get_context()
        if isinstance(context, str):
            context = multiprocessing.get_context(context)
        if context.get_start_method() == "fork":
            gc.collect()
    return iter(loader)


def _tensors(value):
    """The tensors in a nested tuple / list / dict."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
