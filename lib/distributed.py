"""Distributed data parallel training: the same script on one process or many, on one machine or several.

Launched by ``torchrun`` (or ``python -m fastlearn.launch``), a script trains with
``DistributedDataParallel`` without a change: the ``Learner`` sees ``WORLD_SIZE > 1`` in the
environment, joins the process group (NCCL on GPUs, Gloo on CPUs, with a timeout), takes its
device (``cuda:LOCAL_RANK``) and adds a ``DistributedTrainer`` callback, which during ``fit``

- wraps the model in ``DistributedDataParallel`` (and unwraps it afterwards, so saving, exporting
  and predicting see the plain model);
- shards the training data with a seeded ``DistributedSampler`` whose order changes each epoch;
- splits validation into global batches of ``world_size * bs`` items in dataset order, runs each
  process on its slice, gathers predictions and targets on every process and drops the padding,
  so the loss and metrics are those of a single process over the whole validation set, once;
- leaves progress bars and the metrics table to rank 0 (``learn.is_main_process``).

``with learn.distrib_ctx():`` does the same explicitly (also for a single torchrun process).

>>> with learn.distrib_ctx():           # doctest: +SKIP
...     learn.fit_one_cycle(2, 1e-3)
"""
from __future__ import annotations

import atexit
import contextlib
import copy
import datetime
import math
import os
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler, Sampler

from fastlearn.callback import Callback
from fastlearn.progress import ProgressCallback

DEFAULT_TIMEOUT_S = 600.0


# --- the environment -----------------------------------------------------------------------------

def launched_distributed() -> bool:
    """True when a launcher (torchrun, ``fastlearn.launch``, ``notebook_launcher``) started
    several processes: ``WORLD_SIZE > 1`` in the environment.

    >>> launched_distributed()          # doctest: +SKIP
    False
    """
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def in_launcher_env() -> bool:
    """True when the environment names a rank and a world size (set by torchrun, even for one process)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_distributed() -> bool:
    """True once a process group is running."""
    return dist.is_available() and dist.is_initialized()


def rank_distrib() -> int:
    """This process's global rank (0 outside a distributed run).

    >>> rank_distrib()
    0
    """
    return dist.get_rank() if is_distributed() else int(os.environ.get("RANK", "0"))


def num_distrib() -> int:
    """The number of processes (1 outside a distributed run).

    >>> num_distrib()
    1
    """
    return dist.get_world_size() if is_distributed() else int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK``; 0 outside a distributed run)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def process_device(device: torch.device) -> torch.device:
    """The device this process trains on: ``cuda:LOCAL_RANK`` when ``device`` is a GPU, else ``device``.

    >>> process_device(torch.device("cpu"))
    device(type='cpu')
    """
    if device.type == "cuda":
        return torch.device("cuda", local_rank())
    return device


def setup_distrib(device: torch.device, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """Join the process group described by the environment (``env://``): NCCL for a CUDA
    ``device``, Gloo otherwise, with collectives that fail after ``timeout_s`` seconds instead of
    hanging. Returns True if this call created the group (and so should tear it down).

    >>> setup_distrib(torch.device("cpu"))   # outside a launcher: nothing to join
    False
    """
    if is_distributed() or not in_launcher_env():
        return False
    if not dist.is_available():
        raise RuntimeError("this build of torch has no torch.distributed; install a build with it "
                           "to train on several processes")
    missing = [key for key in ("MASTER_ADDR", "MASTER_PORT") if key not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE/RANK are set but {missing} are not; launch with torchrun or "
                         "`python -m fastlearn.launch`, which set them")
    timeout = datetime.timedelta(seconds=timeout_s)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", timeout=timeout, device_id=device)
    else:
        dist.init_process_group("gloo", timeout=timeout)
    return True


def teardown_distrib() -> None:
    """Leave the process group (if one is running)."""
    if is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (no-op outside a distributed run)."""
    if is_distributed():
        dist.barrier()


def broadcast_value(value, src: int = 0):
    """``value`` as rank ``src`` has it, on every process (unchanged outside a distributed run).

    >>> broadcast_value(3)
    3
    """
    if not is_distributed():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def any_process(flag: bool, device: torch.device | None = None) -> bool:
    """True on every process if ``flag`` is True on any (a collective: every process must call it).

    >>> any_process(False)
    False
    """
    if not is_distributed():
        return bool(flag)
    if device is None or (dist.get_backend() == "nccl" and device.type != "cuda"):
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


# --- samplers ----------------------------------------------------------------------------------

class OrderedShardSampler(Sampler):
    """Validation sharding without counted duplicates: the dataset is cut into global batches of
    ``num_replicas * bs`` items in order; rank ``r`` yields the ``r``-th slice of ``bs`` of each.
    The last global batch is padded with repeated items so every rank runs the same batches;
    ``keep(b)`` says which gathered items of batch ``b`` are real.

    >>> s = OrderedShardSampler(5, num_replicas=2, rank=1, bs=2)
    >>> list(s), s.keep(1).tolist()
    ([2, 3, 1, 2], [True, False, False, False])
    """

    def __init__(self, n: int, num_replicas: int, rank: int, bs: int):
        self.n, self.num_replicas, self.rank, self.bs = n, num_replicas, rank, bs
        self.global_bs = num_replicas * bs
        self.n_batches = math.ceil(n / self.global_bs) if n else 0

    def __len__(self) -> int:
        return self.n_batches * self.bs

    def __iter__(self):
        for b in range(self.n_batches):
            start = b * self.global_bs + self.rank * self.bs
            yield from ((start + j) % self.n for j in range(self.bs))

    def keep(self, batch_index: int) -> torch.Tensor:
        """A bool mask over the ``num_replicas * bs`` gathered items of batch ``batch_index``."""
        return torch.arange(batch_index * self.global_bs, (batch_index + 1) * self.global_bs) < self.n


def _gather_batch(x, keep: torch.Tensor, local_bs: int):
    """All-gather the per-item tensors of one batch in rank order and drop the padded items."""
    if isinstance(x, (tuple, list)):
        return type(x)(_gather_batch(item, keep, local_bs) for item in x)
    if not isinstance(x, torch.Tensor) or x.ndim == 0 or x.shape[0] != local_bs:
        return x
    x = x.detach().contiguous()
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x)
    return torch.cat(parts)[keep.to(x.device)]


# --- the callback ------------------------------------------------------------------------------

class DistributedTrainer(Callback):
    """Train with ``DistributedDataParallel`` inside ``fit`` (added for you under torchrun).

    ``sync_bn`` turns BatchNorm into ``SyncBatchNorm`` on GPUs; ``find_unused_parameters`` and
    ``broadcast_buffers`` are passed to ``DistributedDataParallel``.

    >>> learn.add_cb(DistributedTrainer(sync_bn=False))   # doctest: +SKIP
    """

    order = -20

    def __init__(self, sync_bn: bool = True, find_unused_parameters: bool = False, broadcast_buffers: bool = True):
        self.sync_bn, self.find_unused_parameters = sync_bn, find_unused_parameters
        self.broadcast_buffers = broadcast_buffers
        self._plain_model: nn.Module | None = None
        self._plain_dls = None
        self._valid_shards: dict[int, tuple] = {}
        self._sampler: OrderedShardSampler | None = None

    @property
    def active(self) -> bool:
        """True when a process group runs (this callback does nothing otherwise)."""
        return is_distributed()

    def before_fit(self):
        if not self.active:
            return
        model = self.learn.model
        if self.sync_bn and self.learn.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self._plain_model = model
        device_ids = [self.learn.device.index] if self.learn.device.type == "cuda" else None
        options = {} if self.broadcast_buffers else {"broadcast_buffers": False}
        self.learn.model = DistributedDataParallel(model, device_ids=device_ids,
                                                   find_unused_parameters=self.find_unused_parameters, **options)
        self._plain_dls = self.learn.dls
        sharded = copy.copy(self._plain_dls)
        sharded.loaders = [self._shard_train(self._plain_dls.train)] + list(self._plain_dls.loaders[1:])
        self.learn.dls = sharded

    def _shard_train(self, dl):
        if dl.sampler is not None and not isinstance(dl.sampler, DistributedSampler):
            raise ValueError(f"the training DataLoader has its own sampler ({type(dl.sampler).__name__}); "
                             "distributed training needs to shard the data itself: pass shuffle= "
                             "instead of a sampler, or give a DistributedSampler")
        if isinstance(dl.sampler, DistributedSampler):
            return dl
        seed = dl.seed if dl.seed is not None else broadcast_value(int(torch.randint(0, 2**31 - 1, (1,))))
        sampler = DistributedSampler(dl.dataset, num_replicas=num_distrib(), rank=rank_distrib(),
                                     shuffle=dl.shuffle, seed=seed, drop_last=dl.drop_last)
        return dl.new(sampler=sampler)

    def after_fit(self):
        self._restore()

    def cleanup(self):
        """After any exception too: the plain model and loaders are back on the learner."""
        self._restore()
        self._sampler = None

    def _restore(self) -> None:
        if self._plain_model is not None:
            self.learn.model = self._plain_model
            self._plain_model = None
        if self._plain_dls is not None:
            self.learn.dls = self._plain_dls
            self._plain_dls = None

    def _shard_valid(self, dl):
        cached = self._valid_shards.get(id(dl))
        if cached is not None and cached[0] is dl:
            return cached[1]
        sampler = OrderedShardSampler(len(dl.dataset), num_distrib(), rank_distrib(), dl.bs)
        sharded = dl.new(sampler=sampler, shuffle=False, drop_last=False)
        self._valid_shards[id(dl)] = (dl, sharded)
        return sharded

    def before_validate(self):
        self._sampler = None
        if not self.active:
            return
        sharded = self._shard_valid(self.learn.dl)
        self._sampler = sharded.sampler
        self.learn.dl = sharded
        gather = getattr(self.learn, "gather_preds", None)
        if gather is not None:
            gather.follow(sharded)  # the gathered shards come back in item order, whatever the loader's own

    def after_batch(self):
        if self.training or self._sampler is None:
            return
        keep, local_bs = self._sampler.keep(self.iter), self._sampler.bs
        self.learn.pred = _gather_batch(self.pred, keep, local_bs)
        self.learn.yb = _gather_batch(tuple(self.yb), keep, local_bs)
        gather_preds = getattr(self.learn, "gather_preds", None)
        if getattr(gather_preds, "with_input", False):
            self.learn.xb = _gather_batch(tuple(self.xb), keep, local_bs)
        if self.yb and self.loss is not None:
            with torch.no_grad():
                self.learn.loss = self.loss_func(self.pred, *self.yb).detach()

    def after_validate(self):
        self._sampler = None


# --- attaching it ------------------------------------------------------------------------------

def _quiet_other_ranks(learn) -> Callable[[], None]:
    """On ranks other than 0, remove the progress bars and silence the metrics table; returns undo."""
    if rank_distrib() == 0:
        return lambda: None
    bars = [cb for cb in learn.cbs if isinstance(cb, ProgressCallback)]
    learn.remove_cbs(bars)
    recorder = getattr(learn, "recorder", None)
    previous = getattr(recorder, "silent", None)
    if recorder is not None:
        recorder.silent = True

    def undo() -> None:
        learn.add_cbs(bars)
        if recorder is not None:
            recorder.silent = previous
    return undo


def attach_if_launched(learn, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Called by ``Learner.__init__``: under a launcher with several processes, join the process
    group (torn down at exit if this created it), move to this process's device and add a
    ``DistributedTrainer``. Outside one, do nothing.

    >>> attach_if_launched(learn)   # doctest: +SKIP
    """
    if not launched_distributed() or any(isinstance(cb, DistributedTrainer) for cb in learn.cbs):
        return
    device = process_device(learn.device)
    if device != learn.device:
        learn.to(device)
    if setup_distrib(device, timeout_s):
        atexit.register(teardown_distrib)
    learn.add_cb(DistributedTrainer())
    _quiet_other_ranks(learn)


@contextlib.contextmanager
def distrib_ctx(learn, sync_bn: bool = True, timeout_s: float = DEFAULT_TIMEOUT_S):
    """Train with ``DistributedDataParallel`` inside the block when launched by torchrun (even as
    a single process); outside a launcher the block runs unchanged. The process group is torn
    down at the end if this created it.

    >>> with distrib_ctx(learn):            # doctest: +SKIP
    ...     learn.fit(1)
    """
    if not in_launcher_env() and not is_distributed():
        yield learn
        return
    device = process_device(learn.device)
    if device != learn.device:
        learn.to(device)
    created = setup_distrib(device, timeout_s)
    existing = [cb for cb in learn.cbs if isinstance(cb, DistributedTrainer)]
    added = None
    if existing:
        existing[0].sync_bn = sync_bn
    else:
        added = DistributedTrainer(sync_bn=sync_bn)
        learn.add_cb(added)
    undo = _quiet_other_ranks(learn) if not existing else (lambda: None)
    try:
        yield learn
    finally:
        for cb in existing + ([added] if added is not None else []):
            cb._restore()
        if added is not None:
            learn.remove_cb(added)
        undo()
        if created:
            teardown_distrib()
