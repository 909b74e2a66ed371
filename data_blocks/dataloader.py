"""``DataLoader``: batches from a dataset, item transforms in the workers, batch transforms on the
device.

With worker processes (or pinned memory) it runs on ``torch.utils.data.DataLoader``; its
workers stay alive from one pass to the next (``persistent_workers``, on by default with workers),
each preparing ``prefetch_factor`` batches ahead (the config's, 2 by default), and memory is pinned
only for a CUDA device. With no workers the batches are built in this process directly, the same
way torch's single-process loader does, without making one for every pass.

Each pass over the data has one seed: ``seed + epoch`` when the loader has a ``seed``,
otherwise a number drawn from torch's global generator (so ``set_seed`` makes a run repeat, and a
checkpoint's restored RNG state gives the same order on resume). It seeds the shuffle, and each
batch's random item and batch transforms are seeded from it and the batch's position, so a loader
gives the same batches whatever its number of workers.

>>> dl = DataLoader(list(range(10)), bs=4)
>>> len(dl), [b.tolist() for b in dl][-1]
(3, [8, 9])
"""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch
from torch.utils.data import DataLoader as TorchDataLoader
from torch.utils.data import BatchSampler, Dataset, RandomSampler, SequentialSampler, default_collate

from fastlearn.config import get_config
from fastlearn.data.checks import batch_sizes_error
from fastlearn.data.show import show_batch
from fastlearn.data.pipeline import Pipeline, SamplePlan
from fastlearn.data.transforms import Transform
from fastlearn.data.workers import iterate_loader, resolve_num_workers, resolve_prefetch_factor, should_pin_memory
from fastlearn.torch_core import to_device


def as_pipeline(tfms) -> Pipeline | None:
    """None, a Pipeline, a Transform or a list of transforms/functions → a Pipeline (or None)."""
    if tfms is None or isinstance(tfms, Pipeline):
        return tfms
    if isinstance(tfms, Transform) or (isinstance(tfms, type) and issubclass(tfms, Transform)):
        return Pipeline([tfms])
    if isinstance(tfms, (list, tuple)):
        return Pipeline(list(tfms))
    return None


def _item_seed(pass_seed: int, b: int) -> int:
    """The seed of batch ``b``'s item transforms in a pass."""
    return hash((pass_seed, b, 0))


def _batch_seed(pass_seed: int, b: int) -> int:
    """The seed of batch ``b``'s batch transforms in a pass."""
    return hash((pass_seed, b, 1))


def _draw_torch_base_seed() -> None:
    """torch's loader draws its base seed from the global generator when a pass starts: drawn
    wherever fastlearn builds a pass's batches itself, a seeded run goes on with the same random
    numbers (dropout...) as through torch's loader."""
    torch.empty((), dtype=torch.int64).random_()


class _SeededBatches:
    """The batch sampler torch sees: ``(seed, [index, ...])`` per batch, the seed depending only
    on the pass's seed and the batch's position, so any worker building a batch draws the same
    random transforms."""

    def __init__(self, base, bs: int, drop_last: bool, pass_seed: int):
        self.base, self.bs, self.drop_last, self.pass_seed = base, bs, bool(drop_last), pass_seed

    def __iter__(self):
        for b, indices in enumerate(BatchSampler(self.base, self.bs, self.drop_last)):
            yield _item_seed(self.pass_seed, b), [int(i) for i in indices]

    def __len__(self) -> int:
        return len(BatchSampler(self.base, self.bs, self.drop_last))


class _ItemDataset(Dataset):
    """The dataset seen by torch: fetch a batch's samples and run the item transforms on each,
    drawing from one ``random.Random`` per process that is re-seeded for every batch."""

    def __init__(self, dataset, after_item: Pipeline | None, kinds: tuple[str, ...] | None,
                 split_idx: int | None):
        self.dataset, self.after_item, self.kinds, self.split_idx = dataset, after_item, kinds, split_idx
        # re-seeded for every batch, when the batch's first draw comes (a seed from the OS costs more;
        # item transforms that draw nothing, as at validation, pay for no seeding at all)
        self.rng: random.Random | None = None
        self._seed, self._seeded = 0, False
        self.plans: dict[int, SamplePlan] = {}  # by the number of parts of a sample

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitems__(self, seeded_batch: tuple[int, list[int]]) -> list:
        seed, indices = seeded_batch
        if self.after_item is None:  # nothing to run per item: fetch them straight from the dataset
            return [self.dataset[i] for i in indices]
        self._seed, self._seeded = seed, False
        return [self[i] for i in indices]

    def _generator(self) -> random.Random:
        """The generator, seeded with the batch's seed before its first draw."""
        if not self._seeded:
            if self.rng is None:
                self.rng = random.Random(self._seed)
            else:
                self.rng.seed(self._seed)
            self._seeded = True
        return self.rng

    def __getitem__(self, index: int):
        sample = self.dataset[index]
        if self.after_item is None:
            return sample
        parts = sample if isinstance(sample, tuple) else (sample,)
        plan = self.plans.get(len(parts))
        if plan is None:
            plan = self.plans[len(parts)] = self.after_item.plan(_kinds_for(self.kinds, len(parts)),
                                                                 self.split_idx)
        if not plan.steps:
            return sample
        parts = plan(parts, self._generator() if plan.draws else None)
        return parts if isinstance(sample, tuple) else parts[0]


def _kinds_for(kinds: tuple[str, ...] | None, n: int) -> tuple[str, ...]:
    if kinds is None:
        return ("raw",) * n
    return tuple(kinds[:n]) + ("raw",) * max(0, n - len(kinds))


class _Collate:
    """``collate_fn(before_batch(samples))`` (a class, so it pickles for spawned workers)."""

    def __init__(self, before_batch: Callable | None, collate_fn: Callable | None):
        self.before_batch, self.collate_fn = before_batch, collate_fn or default_collate

    def __call__(self, samples: list):
        if self.before_batch is not None:
            samples = self.before_batch(samples)
        if len(samples) == 1 and self.collate_fn is default_collate:
            return _collate_one(samples[0])
        try:
            return self.collate_fn(samples)
        except RuntimeError as error:  # torch's words differ in a worker ("resize storage"): the shapes tell
            sizes_differ = batch_sizes_error(samples) if self.collate_fn is default_collate else None
            if sizes_differ is None:
                raise
            raise sizes_differ from error


def _collate_one(sample):
    """What ``default_collate([sample])`` gives, but each tensor keeps its memory layout: a decoded
    image is channels-last in memory, and a one-image batch (``predict``) laid out so runs a
    convolutional model faster than the contiguous copy ``torch.stack`` makes. The values are the same."""
    if type(sample) is torch.Tensor:
        return sample[None].clone()
    if type(sample) is tuple and all(type(part) is torch.Tensor for part in sample):
        return [part[None].clone() for part in sample]
    return default_collate([sample])


class DataLoader:
    """Batches from a dataset, moved to ``device``, with ``after_item`` transforms run per sample
    (in the workers) and ``after_batch`` transforms per batch (on the device).

    ``after_item`` / ``after_batch`` take a list of transforms or a Pipeline (applied part by
    part, see :mod:`fastlearn.data.transforms`); ``after_batch`` may also be a plain function of
    the batch tuple. ``kinds`` names each part of a sample (taken from the dataset when it has
    ``kinds``). ``batch_size`` is an alias of ``bs`` (course chapter 4). Iterating yields a tuple
    ``(*xb, *yb)`` when samples are tuples.

    With ``num_workers > 0`` the worker processes are kept from one pass to the next
    (``persistent_workers=None``: on whenever there are workers; False starts them again every
    pass) and each prepares ``prefetch_factor`` batches ahead (None: the config's). Changing the
    loader's dataset, transforms, workers or device stops them; the next pass starts new ones.
    """

    # what the worker processes hold: changing one of these makes the next pass start new workers
    _WORKER_STATE = frozenset({"dataset", "after_item", "before_batch", "collate_fn", "num_workers", "kinds",
                               "split_idx", "pin_memory", "persistent_workers", "prefetch_factor", "device"})

    def __init__(self, dataset: Dataset | Sequence, bs: int | None = None, shuffle: bool = False,
                 drop_last: bool = False, num_workers: int | str | None = 0,
                 device: torch.device | str | None = None, after_batch=None,
                 collate_fn: Callable | None = None, seed: int | None = None,
                 pin_memory: bool | None = None, persistent_workers: bool | None = None,
                 sampler: torch.utils.data.Sampler | None = None, n_inp: int = 1,
                 batch_size: int | None = None, decode_batch_fn: Callable | None = None,
                 after_item=None, before_batch: Callable | None = None,
                 kinds: Sequence[str] | None = None, prefetch_factor: int | None = None):
        if bs is None:
            bs = batch_size if batch_size is not None else get_config().get("defaults", "bs")
        if not isinstance(bs, int) or bs < 1:
            raise ValueError(f"bs={bs!r}; the batch size must be a positive int")
        self.dataset, self.bs, self.shuffle, self.drop_last = dataset, bs, shuffle, drop_last
        self.num_workers = resolve_num_workers(num_workers)
        self.device = torch.device(device) if device is not None else None
        self.after_item = as_pipeline(after_item)
        if after_item is not None and self.after_item is None:
            raise TypeError(f"after_item={after_item!r}; expected a list of transforms or a Pipeline")
        pipeline = as_pipeline(after_batch)
        if after_batch is not None and pipeline is None and not callable(after_batch):
            raise TypeError(f"after_batch={after_batch!r}; expected transforms, a Pipeline or a function")
        self.after_batch = pipeline if pipeline is not None else after_batch
        self.collate_fn, self.before_batch, self.seed = collate_fn, before_batch, seed
        self.pin_memory, self.persistent_workers, self.sampler = pin_memory, persistent_workers, sampler
        self.prefetch_factor = None if prefetch_factor is None else resolve_prefetch_factor(prefetch_factor)
        self.n_inp, self.decode_batch_fn = n_inp, decode_batch_fn
        self.kinds = tuple(kinds) if kinds is not None else getattr(dataset, "kinds", None)
        self.epoch = 0
        self.split_idx: int | None = None
        self._persistent: TorchDataLoader | None = None
        self._pin_decision: tuple[torch.device, bool] | None = None

    def __setattr__(self, name: str, value) -> None:
        if name in self._WORKER_STATE and self.__dict__.get("_persistent") is not None:
            self.__dict__["_persistent"] = None  # torch stops the old workers when their loader goes
        super().__setattr__(name, value)

    @property
    def keeps_workers(self) -> bool:
        """Whether worker processes stay alive between passes (``persistent_workers``, or by
        default whenever ``num_workers > 0``)."""
        wanted = self.persistent_workers if self.persistent_workers is not None else True
        return bool(wanted) and self.num_workers > 0

    @property
    def items(self):
        """The dataset's items in its order (``dls.valid.items``), as fastai's loaders give them."""
        if not hasattr(self.dataset, "items"):
            raise AttributeError(f"this loader's dataset ({type(self.dataset).__name__}) has no items")
        return self.dataset.items

    @property
    def n(self) -> int:
        """The number of items (the sampler's share under a distributed sampler)."""
        return len(self.sampler) if self.sampler is not None else len(self.dataset)

    def __len__(self) -> int:
        n = self.n
        return n // self.bs if self.drop_last else -(-n // self.bs)

    def set_epoch(self, epoch: int) -> None:
        """Change the shuffle order and augmentation (and a distributed sampler's shard)."""
        self.epoch = epoch
        if self.sampler is not None and hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def _pass_seed(self, epoch: int | None = None) -> int:
        """The seed of one pass over the data: ``seed + epoch`` (this loader's epoch unless given),
        or drawn from torch's global generator when the loader has no ``seed``."""
        if self.seed is not None:
            return self.seed + (self.epoch if epoch is None else epoch)
        return int(torch.randint(2**62, ()).item())

    def _base_sampler(self, pass_seed: int | None = None):
        if self.sampler is not None:
            return self.sampler
        if not self.shuffle:
            return SequentialSampler(range(len(self.dataset)))
        generator = torch.Generator()
        generator.manual_seed(self._pass_seed() if pass_seed is None else pass_seed)
        return RandomSampler(range(len(self.dataset)), generator=generator)

    def _pin(self) -> bool:
        """:func:`should_pin_memory` for this device, probing the first item once per device."""
        if self.pin_memory is False or (self.pin_memory is None and (
                self.device is None or self.device.type != "cuda")):
            return False
        if self._pin_decision is None or self._pin_decision[0] != self.device:
            first = self.dataset[0] if len(self.dataset) > 0 else None
            self._pin_decision = (self.device, should_pin_memory(self.device, first, self.pin_memory))
        return self._pin_decision[1]

    def _torch_loader(self, pass_seed: int) -> TorchDataLoader:
        batches = _SeededBatches(self._base_sampler(pass_seed), self.bs, self.drop_last, pass_seed)
        if self._persistent is not None:
            self._persistent.batch_sampler.base = batches.base
            self._persistent.batch_sampler.pass_seed = pass_seed
            self._persistent.batch_sampler.drop_last = batches.drop_last
            return self._persistent
        dataset = _ItemDataset(self.dataset, self.after_item, self.kinds, self.split_idx)
        persistent = self.keeps_workers
        workers = dict(prefetch_factor=resolve_prefetch_factor(self.prefetch_factor)) if self.num_workers else {}
        loader = TorchDataLoader(
            dataset, batch_sampler=batches, num_workers=self.num_workers,
            collate_fn=_Collate(self.before_batch, self.collate_fn), pin_memory=self._pin(),
            persistent_workers=persistent, **workers)
        if persistent:
            self._persistent = loader
        return loader

    def _batches_here(self, pass_seed: int):
        """The collated batches of one pass built in this process: what torch's single-process
        loader does (``__getitems__`` of the seeded index batch, then the collate function),
        without building one per pass."""
        dataset = _ItemDataset(self.dataset, self.after_item, self.kinds, self.split_idx)
        collate = _Collate(self.before_batch, self.collate_fn)
        _draw_torch_base_seed()
        for seeded_batch in _SeededBatches(self._base_sampler(pass_seed), self.bs, self.drop_last, pass_seed):
            yield collate(dataset.__getitems__(seeded_batch))

    def apply_after_batch(self, batch: tuple, rng=None) -> tuple:
        """Run the batch transforms on a batch tuple already on the device."""
        return self._apply_after_batch(batch, self.kinds, rng)

    def _apply_after_batch(self, batch: tuple, kinds, rng=None) -> tuple:
        if self.after_batch is None:
            return batch
        if isinstance(self.after_batch, Pipeline):
            return self.after_batch.apply_sample(batch, _kinds_for(kinds, len(batch)), self.split_idx, rng)
        result = self.after_batch(batch)
        return tuple(result) if isinstance(result, (list, tuple)) else (result,)

    def __iter__(self):
        pass_seed = self._pass_seed()
        if self.num_workers == 0 and not self._pin():
            batches, non_blocking = self._batches_here(pass_seed), False
        else:
            loader = self._torch_loader(pass_seed)
            batches, non_blocking = iterate_loader(loader), bool(loader.pin_memory)
        state = {}  # the batch transforms' plans and random generator, kept through the pass
        for b, batch in enumerate(batches):
            yield self._finish_batch(batch, b, pass_seed, self.kinds, non_blocking, state)
        if self.shuffle and self.seed is not None:
            self.epoch += 1

    def _finish_batch(self, batch, b: int, pass_seed: int, kinds, non_blocking: bool, state: dict):
        """A collated batch ``b`` of a pass moved to the device, through the batch transforms."""
        was_tuple = isinstance(batch, (list, tuple))
        batch = tuple(batch) if was_tuple else (batch,)
        if self.device is not None:
            batch = to_device(batch, self.device, non_blocking=non_blocking)
        plan, rng = None, state.get("rng")
        if isinstance(self.after_batch, Pipeline):
            plans = state.setdefault("plans", {})
            plan = plans.get(len(batch))
            if plan is None:
                plan = plans[len(batch)] = self.after_batch.plan(_kinds_for(kinds, len(batch)), self.split_idx)
        if self.after_batch is None:
            return batch if was_tuple else batch[0]
        if plan is None or plan.draws:  # seeded per batch; batch transforms that draw nothing need none
            rng = state["rng"] = rng if rng is not None else random.Random(0)
            rng.seed(_batch_seed(pass_seed, b))
        batch = plan(batch, rng) if plan is not None else self._apply_after_batch(batch, kinds, rng)
        return batch if was_tuple else batch[0]

    def batch_of(self, dataset):
        """All of ``dataset`` as the one batch that a pass of ``self.new(dataset, shuffle=False,
        drop_last=False, sampler=None, num_workers=0)`` yields when its batch size holds them all,
        built here without a loader, sampler or iterator: the same samples, item and batch
        transforms, random draws and device (``learn.predict`` of one item calls this).

        >>> DataLoader([1.0, 2.0], bs=4).batch_of([3.0, 4.0])
        tensor([3., 4.], dtype=torch.float64)
        """
        n = len(dataset)
        if n == 0:
            raise ValueError("batch_of got an empty dataset; pass at least one item")
        kinds = dataset.kinds if hasattr(dataset, "kinds") else self.kinds  # as new(dataset) takes them
        pass_seed = self._pass_seed(epoch=0)  # a new loader's first pass
        items = _ItemDataset(dataset, self.after_item, kinds, self.split_idx)
        _draw_torch_base_seed()
        batch = _Collate(self.before_batch, self.collate_fn)(items.__getitems__((_item_seed(pass_seed, 0),
                                                                                  list(range(n)))))
        return self._finish_batch(batch, 0, pass_seed, kinds, False, {})

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
                    n_inp=self.n_inp, decode_batch_fn=self.decode_batch_fn,
                    after_item=self.after_item, before_batch=self.before_batch, kinds=self.kinds,
                    prefetch_factor=self.prefetch_factor)
        if dataset is not None:
            args["dataset"] = dataset
            if "kinds" not in changes and hasattr(dataset, "kinds"):
                args["kinds"] = dataset.kinds
        unknown = set(changes) - set(args)
        if unknown:
            raise TypeError(f"DataLoader.new got unknown arguments {sorted(unknown)}; known: {sorted(args)}")
        args.update(changes)
        new = type(self)(**args)
        new.split_idx = self.split_idx
        return new

    def decode(self, batch) -> tuple:
        """A batch (or its first parts, e.g. ``(xb,)``) on the CPU with the batch transforms
        undone: normalized float images back to uint8 pixels (chapter 18 shows a decoded input
        with ``dls.train.decode((x,))[0][0]``).

        >>> DataLoader([1.0, 2.0], bs=2).decode((torch.tensor([1.0, 2.0]),))
        (tensor([1., 2.]),)
        """
        batch = tuple(batch) if isinstance(batch, (list, tuple)) else (batch,)
        batch = tuple(b.detach().cpu() if isinstance(b, torch.Tensor) else b for b in batch)
        if isinstance(self.after_batch, Pipeline):
            batch = self.after_batch.decode_sample(batch, _kinds_for(self.kinds, len(batch)))
        return batch

    def decode_batch(self, batch, max_n: int = 9) -> list[tuple]:
        """A batch back to a list of readable samples: batch transforms undone, then each part
        decoded by its pipeline (class indices → names)."""
        if self.decode_batch_fn is not None:
            return self.decode_batch_fn(batch, max_n)
        batch = self.decode(batch)
        kinds = _kinds_for(self.kinds, len(batch))
        n = min(max_n, len(batch[0]))
        samples = [tuple(part[i] for part in batch) for i in range(n)]
        if self.after_item is not None:
            samples = [self.after_item.decode_sample(s, kinds) for s in samples]
        if hasattr(self.dataset, "decode_part"):
            samples = [tuple(self.dataset.decode_part(p, v) for p, v in enumerate(s)) for s in samples]
        return samples

    def show_batch(self, b=None, max_n: int = 9, nrows: int | None = None, ncols: int | None = None,
                   unique: bool = False, figsize: tuple[float, float] | None = None) -> None:
        """Show decoded samples of a batch in a grid, one figure (nothing is returned, so a notebook
        shows it once; ``plt.gcf()`` is the figure)."""
        show_batch(self, b, max_n=max_n, nrows=nrows, ncols=ncols, unique=unique, figsize=figsize)
