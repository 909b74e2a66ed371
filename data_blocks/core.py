"""``DataLoader`` and ``DataBunch`` (alias ``DataLoaders``): batches on the device, ready for a Learner.

>>> import torch
>>> from fastlearn.data.core import DataBunch
>>> train = [(torch.randn(3), torch.tensor(0)) for _ in range(10)]
>>> dls = DataBunch.from_dsets(train, train[:4], bs=4, device="cpu")
>>> xb, yb = dls.one_batch()
>>> xb.shape
torch.Size([4, 3])
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import DataLoader as TorchDataLoader
from torch.utils.data import Dataset

from fastlearn.config import get_config
from fastlearn.torch_core import default_device, to_device


def _auto_num_workers() -> int:
    """'auto' worker count: 0 on small machines (process start-up costs more than it saves)."""
    import os
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if cpus <= 2 else min(8, cpus - 1)


def resolve_num_workers(num_workers: int | str | None) -> int:
    """``None`` reads the config; ``"auto"`` picks a count for this machine."""
    if num_workers is None:
        num_workers = get_config().get("defaults", "num_workers")
    if num_workers == "auto":
        return _auto_num_workers()
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers={num_workers!r}; expected a non-negative int or 'auto'")
    return num_workers


class DataLoader:
    """Batches from a dataset, moved to ``device`` and passed through ``after_batch``.

    Wraps ``torch.utils.data.DataLoader`` (workers, pinned memory on CUDA, persistent workers).
    Shuffling is seeded: with ``seed`` set, epoch ``k`` always yields the same order, whatever the
    number of workers. ``batch_size`` is accepted as an alias of ``bs`` (course chapter 4).

    >>> dl = DataLoader(list(range(10)), bs=4)
    >>> len(dl), [b.tolist() for b in dl][-1]
    (3, [8, 9])
    """

    def __init__(self, dataset: Dataset | Sequence, bs: int | None = None, shuffle: bool = False,
                 drop_last: bool = False, num_workers: int | str | None = 0,
                 device: torch.device | str | None = None, after_batch: Callable | None = None,
                 collate_fn: Callable | None = None, seed: int | None = None,
                 pin_memory: bool | None = None, persistent_workers: bool = False,
                 sampler: torch.utils.data.Sampler | None = None, n_inp: int = 1,
                 batch_size: int | None = None, decode_batch_fn: Callable | None = None):
        if bs is None:
            bs = batch_size if batch_size is not None else get_config().get("defaults", "bs")
        if not isinstance(bs, int) or bs < 1:
            raise ValueError(f"bs={bs!r}; the batch size must be a positive int")
        self.dataset, self.bs, self.shuffle, self.drop_last = dataset, bs, shuffle, drop_last
        self.num_workers = resolve_num_workers(num_workers)
        self.device = torch.device(device) if device is not None else None
        self.after_batch, self.collate_fn, self.seed = after_batch, collate_fn, seed
        self.pin_memory, self.persistent_workers, self.sampler = pin_memory, persistent_workers, sampler
        self.n_inp, self.decode_batch_fn = n_inp, decode_batch_fn
        self.epoch = 0
        self.split_idx: int | None = None

    @property
    def n(self) -> int:
        """The number of items (the sampler's share under a distributed sampler)."""
        return len(self.sampler) if self.sampler is not None else len(self.dataset)

    def __len__(self) -> int:
        n = self.n
        return n // self.bs if self.drop_last else -(-n // self.bs)

    def set_epoch(self, epoch: int) -> None:
        """Change the shuffle order (and a distributed sampler's shard) for a new epoch."""
        self.epoch = epoch
        if self.sampler is not None and hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def _torch_loader(self) -> TorchDataLoader:
        generator = None
        if self.shuffle and self.sampler is None:
            generator = torch.Generator()
            seed = self.seed if self.seed is not None else int(torch.randint(0, 2**62, (1,)).item())
            generator.manual_seed(seed + self.epoch)
        pin = self.pin_memory if self.pin_memory is not None else (
            self.device is not None and self.device.type == "cuda")
        return TorchDataLoader(
            self.dataset, batch_size=self.bs, shuffle=self.shuffle and self.sampler is None,
            sampler=self.sampler, drop_last=self.drop_last, num_workers=self.num_workers,
            collate_fn=self.collate_fn, generator=generator, pin_memory=pin,
            persistent_workers=self.persistent_workers and self.num_workers > 0)

    def __iter__(self):
        for batch in self._torch_loader():
            batch = tuple(batch) if isinstance(batch, (list, tuple)) else (batch,)
            if self.device is not None:
                batch = to_device(batch, self.device)
            if self.after_batch is not None:
                batch = self.after_batch(batch)
            yield batch if len(batch) > 1 else batch[0]
        if self.shuffle and self.seed is not None:
            self.epoch += 1

    def one_batch(self):
        """The first batch (for a look, or a model summary)."""
        for batch in self:
            return batch
        raise ValueError(f"this DataLoader has no batch: {self.n} items with bs={self.bs}, "
                         f"drop_last={self.drop_last}; lower bs or set drop_last=False")

    def to(self, device: torch.device | str) -> "DataLoader":
        """Move batches to ``device`` from now on (returns self)."""
        self.device = torch.device(device)
        return self

    def new(self, dataset: Dataset | Sequence | None = None, **changes) -> "DataLoader":
        """A copy with some arguments changed, e.g. ``dl.new(shuffle=False, bs=128)``."""
        args = dict(dataset=self.dataset, bs=self.bs, shuffle=self.shuffle, drop_last=self.drop_last,
                    num_workers=self.num_workers, device=self.device, after_batch=self.after_batch,
                    collate_fn=self.collate_fn, seed=self.seed, pin_memory=self.pin_memory,
                    persistent_workers=self.persistent_workers, sampler=self.sampler,
                    n_inp=self.n_inp, decode_batch_fn=self.decode_batch_fn)
        if dataset is not None:
            args["dataset"] = dataset
        unknown = set(changes) - set(args)
        if unknown:
            raise TypeError(f"DataLoader.new got unknown arguments {sorted(unknown)}; known: {sorted(args)}")
        args.update(changes)
        new = type(self)(**args)
        new.split_idx = self.split_idx
        return new

    def decode_batch(self, batch, max_n: int = 9) -> list:
        """Turn a batch back into a list of human-readable samples (uses the blocks' decoders)."""
        if self.decode_batch_fn is not None:
            return self.decode_batch_fn(batch, max_n)
        batch = batch if isinstance(batch, tuple) else (batch,)
        n = min(max_n, len(batch[0]))
        return [tuple(part[i].cpu() for part in batch) for i in range(n)]


class DataBunch:
    """The training and validation loaders (and more, if given), with the device they deliver to.

    ``DataLoaders`` is the same class. ``dls.train`` / ``dls.valid`` / ``dls[i]``.

    >>> dls = DataBunch(DataLoader([1, 2, 3], bs=2), DataLoader([4], bs=2))
    >>> dls.train.n, dls.valid.n
    (3, 1)
    """

    def __init__(self, *loaders: DataLoader, path=".", device: torch.device | str | None = None,
                 loss_func: Callable | None = None, c: int | None = None, vocab=None):
        from fastlearn.paths import Path
        if len(loaders) < 2:
            raise ValueError(f"DataBunch needs at least a training and a validation loader, got {len(loaders)}")
        self.loaders = [dl if isinstance(dl, DataLoader) else _wrap_torch_loader(dl) for dl in loaders]
        for i, dl in enumerate(self.loaders):
            dl.split_idx = i
        self.path = Path(path)
        self.loss_func, self.c, self.vocab = loss_func, c, vocab
        self.to(device if device is not None else default_device())

    def __getitem__(self, i: int) -> DataLoader:
        return self.loaders[i]

    def __len__(self) -> int:
        return len(self.loaders)

    @property
    def train(self) -> DataLoader:
        return self.loaders[0]

    @property
    def valid(self) -> DataLoader:
        return self.loaders[1]

    @property
    def train_ds(self):
        return self.train.dataset

    @property
    def valid_ds(self):
        return self.valid.dataset

    @property
    def n_inp(self) -> int:
        return self.train.n_inp

    def to(self, device: torch.device | str) -> "DataBunch":
        """Deliver every loader's batches to ``device`` (returns self)."""
        self.device = torch.device(device)
        for dl in self.loaders:
            dl.to(self.device)
        return self

    def one_batch(self):
        """The first training batch."""
        return self.train.one_batch()

    def decode_target(self, target: torch.Tensor):
        """A decoded prediction or target for one item, as a user reads it (a class name...)."""
        return target.item() if target.numel() == 1 else target

    @classmethod
    def from_dsets(cls, train_ds, valid_ds, *more_ds, bs: int | None = None, shuffle: bool = True,
                   drop_last: bool | None = None, num_workers: int | str | None = 0,
                   device: torch.device | str | None = None, path=".", seed: int | None = None,
                   collate_fn: Callable | None = None, n_inp: int = 1) -> "DataBunch":
        """Loaders over plain datasets: the first shuffled (and dropping its last partial batch,
        like fastai), the others in order with twice the batch size.

        >>> dls = DataBunch.from_dsets(list(range(8)), list(range(4)), bs=4, device="cpu")
        >>> len(dls.train), len(dls.valid)
        (2, 1)
        """
        if bs is None:
            bs = get_config().get("defaults", "bs")
        drop = shuffle if drop_last is None else drop_last
        train = DataLoader(train_ds, bs=bs, shuffle=shuffle, drop_last=drop, num_workers=num_workers,
                           seed=seed, collate_fn=collate_fn, n_inp=n_inp)
        others = [DataLoader(ds, bs=bs * 2, shuffle=False, num_workers=num_workers,
                             collate_fn=collate_fn, n_inp=n_inp) for ds in (valid_ds, *more_ds)]
        return cls(train, *others, path=path, device=device)

    @classmethod
    def from_dls(cls, *loaders, path=".", device: torch.device | str | None = None) -> "DataBunch":
        """Wrap existing loaders (fastlearn or torch ``DataLoader``s)."""
        return cls(*loaders, path=path, device=device)


def _wrap_torch_loader(loader) -> DataLoader:
    if isinstance(loader, TorchDataLoader):
        return DataLoader(loader.dataset, bs=loader.batch_size or 1, drop_last=loader.drop_last,
                          num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                          shuffle=isinstance(loader.sampler, torch.utils.data.RandomSampler))
    raise TypeError(f"DataBunch takes DataLoaders, got {type(loader).__name__}; "
                    "wrap a dataset with fastlearn.data.DataLoader(dataset, bs=...)")


DataLoaders = DataBunch
