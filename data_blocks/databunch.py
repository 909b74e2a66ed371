"""``DataBunch`` (alias ``DataLoaders``): the training and validation loaders, ready for a Learner.

>>> import torch
>>> from fastlearn.data.databunch import DataBunch
>>> train = [(torch.randn(3), torch.tensor(0)) for _ in range(10)]
>>> dls = DataBunch.from_dsets(train, train[:4], bs=4, device="cpu")
>>> xb, yb = dls.one_batch()
>>> xb.shape
torch.Size([4, 3])
"""
from __future__ import annotations

import copy
import inspect
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader as TorchDataLoader

from fastlearn.config import get_config
from fastlearn.data.dataloader import DataLoader, as_pipeline, resolve_num_workers  # noqa: F401  (re-exported)
from fastlearn.data.inference import inference_spec
from fastlearn.data.results import show_results
from fastlearn.data.pipeline import Pipeline
from fastlearn.data.transforms import Transform
from fastlearn.paths import Path
from fastlearn.torch_core import default_device, to_cpu

_UNSET = object()


class DataBunch:
    """The training and validation loaders (and more, if given), with the device they deliver to.

    ``DataLoaders`` is the same class. ``dls.train`` / ``dls.valid`` / ``dls[i]``; ``vocab``,
    ``c`` and ``loss_func`` come from the target block unless given.

    >>> dls = DataBunch(DataLoader([1, 2, 3], bs=2), DataLoader([4], bs=2))
    >>> dls.train.n, dls.valid.n
    (3, 1)
    """

    def __init__(self, *loaders: DataLoader, path=".", device: torch.device | str | None = None,
                 loss_func: Callable | None = None, c: int | None = None, vocab=None):
        if len(loaders) < 2:
            raise ValueError(f"DataBunch needs at least a training and a validation loader, got {len(loaders)}")
        self.loaders = [dl if isinstance(dl, DataLoader) else _wrap_torch_loader(dl) for dl in loaders]
        for i, dl in enumerate(self.loaders):
            dl.split_idx = i
        self.path = Path(path)
        self._loss_func, self._c, self._vocab = loss_func, c, vocab
        self.to(device if device is not None else default_device())

    def __getitem__(self, i: int) -> DataLoader:
        return self.loaders[i]

    def __len__(self) -> int:
        return len(self.loaders)

    def __repr__(self) -> str:
        return (f"DataBunch({len(self.train_ds)} train, {len(self.valid_ds)} valid items; "
                f"bs={self.train.bs}; device={self.device})")

    @property
    def train(self) -> DataLoader:
        return self.loaders[0]

    @property
    def valid(self) -> DataLoader:
        return self.loaders[1]

    @property
    def train_ds(self):
        return self.train.dataset

    # the training loader's settings, read from the DataBunch as fastai's DataLoaders forwards them
    bs = property(lambda self: self.train.bs, doc="The training loader's batch size (``dls.train.bs``).")
    after_item = property(lambda self: self.train.after_item, doc="The training loader's item pipeline.")
    after_batch = property(lambda self: self.train.after_batch, doc="The training loader's batch pipeline.")
    dataset = property(lambda self: self.train.dataset, doc="The training set (``dls.train_ds``).")

    @property
    def valid_ds(self):
        return self.valid.dataset

    @property
    def n_inp(self) -> int:
        return self.train.n_inp

    @property
    def vocab(self):
        """The target vocabulary (``dls.vocab[i]`` is the name of class ``i``)."""
        return self._vocab if self._vocab is not None else getattr(self.train_ds, "vocab", None)

    @vocab.setter
    def vocab(self, value) -> None:
        self._vocab = value

    classes = vocab

    @property
    def c(self) -> int | None:
        """How many outputs a model needs (number of classes, of regression targets...)."""
        if self._c is not None:
            return self._c
        return getattr(self.train_ds, "c", None)

    @c.setter
    def c(self, value: int | None) -> None:
        self._c = value

    @property
    def loss_func(self):
        """The loss suited to the target block (cross-entropy for a CategoryBlock...)."""
        if self._loss_func is not None:
            return self._loss_func
        return getattr(self.train_ds, "loss_func", None)

    @loss_func.setter
    def loss_func(self, value) -> None:
        self._loss_func = value

    def to(self, device: torch.device | str) -> "DataBunch":
        """Deliver every loader's batches to ``device`` (returns self)."""
        self.device = torch.device(device)
        for dl in self.loaders:
            dl.to(self.device)
        return self

    def one_batch(self):
        """The first training batch."""
        return self.train.one_batch()

    def decode(self, batch) -> tuple:
        """A batch with the training loader's batch transforms undone (``dls.train.decode``)."""
        return self.train.decode(batch)

    def decode_batch(self, batch, max_n: int = 9) -> list[tuple]:
        """Readable samples from a batch of the training loader."""
        return self.train.decode_batch(batch, max_n)

    def show_batch(self, b=None, max_n: int = 9, nrows: int | None = None, ncols: int | None = None,
                   unique: bool = False, figsize: tuple[float, float] | None = None) -> None:
        """Show a training batch in a grid, one figure (headless with the Agg backend).

        >>> dls.show_batch(max_n=4, nrows=1)   # doctest: +SKIP
        """
        self.train.show_batch(b, max_n=max_n, nrows=nrows, ncols=ncols, unique=unique,
                                     figsize=figsize)

    def show_results(self, learn, max_n: int = 9, figsize: tuple[float, float] | None = None, ds_idx: int = 1,
                     nrows: int | None = None, dl=None) -> None:
        """Inputs with their targets and ``learn``'s predictions (``learn.show_results`` calls this)."""
        show_results(learn, max_n=max_n, figsize=figsize, ds_idx=ds_idx, nrows=nrows, dl=dl)

    def decode_target(self, target):
        """A decoded prediction or target for one item, as a user reads it (a class name...).
        Decoded alone: a key point stays in the model's [-1, 1] scale (see :meth:`decode_targets`).

        >>> dls.decode_target(torch.tensor(1))   # doctest: +SKIP
        'dog'
        """
        target = _readable(target)
        if self._decodes_targets():
            return self.valid_ds.decode_part(self.n_inp, target)
        if isinstance(target, torch.Tensor):
            return target.item() if target.numel() == 1 else target
        return target

    def decode_targets(self, inputs, targets) -> list:
        """Each target (or decoded prediction) of a batch as a user reads it, decoded together with
        its input through the validation loader's transforms and blocks: a class name, key points
        in pixels of the image the model saw. ``inputs`` is the batch as the model got it (a tensor,
        or a tuple of them for several inputs).

        >>> dls.decode_targets(torch.zeros(1, 3, 32, 64), torch.tensor([[0.5, 0.0]]))  # doctest: +SKIP
        [tensor([[48., 16.]])]
        """
        targets = _readable(targets)
        decodes = self._decodes_targets()
        if decodes and isinstance(targets, torch.Tensor) and self._targets_decode_alone():
            decode, n_inp = self.valid_ds.decode_part, self.n_inp  # decode_target's, checked once a batch
            return [decode(n_inp, target) for target in targets]
        if not (decodes and isinstance(targets, torch.Tensor)):
            return [self.decode_target(target) for target in targets]
        inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
        samples = self.valid.decode_batch((*inputs, targets), max_n=len(targets))
        return [sample[self.n_inp] for sample in samples]

    def _targets_decode_alone(self) -> bool:
        """Whether no item or batch transform of the validation loader acts on the first target's
        kind (a class, a number), so decoding it needs no input: decoding every input of a batch
        back to pixels only to read its class names would cost more than the prediction."""
        valid = self.valid
        kinds = getattr(valid, "kinds", None)
        if getattr(valid, "decode_batch_fn", None) is not None or not kinds or len(kinds) <= self.n_inp:
            return False
        kind = kinds[self.n_inp]
        for pipeline in (getattr(valid, "after_item", None), getattr(valid, "after_batch", None)):
            if pipeline is None:
                continue
            if not isinstance(pipeline, Pipeline):
                return False
            for t in pipeline.fs:
                if t.applies_to(kind) or type(t).decode_sample is not Transform.decode_sample:
                    return False
        return True

    def _decodes_targets(self) -> bool:
        dataset = self.valid_ds
        return hasattr(dataset, "decode_part") and len(getattr(dataset, "pipelines", [])) > self.n_inp

    def test_dl(self, items, with_labels: bool = False, bs: int | None = None,
                num_workers: int | str | None = _UNSET) -> DataLoader:
        """A loader over new items with the validation transforms (no shuffling, no augmentation).

        Items are what ``get_x`` would return (file paths, images...) or a DataFrame of rows.

        >>> dl = dls.test_dl(get_image_files(path / "test"))   # doctest: +SKIP
        """
        dataset = self.valid_ds
        if not hasattr(dataset, "test_set"):
            raise TypeError(f"test_dl needs loaders built from Datasets (a DataBlock, Datasets or "
                            f"ImageDataLoaders); this DataBunch holds {type(dataset).__name__}")
        test_ds = dataset.test_set(items, with_labels=with_labels)
        changes = dict(shuffle=False, drop_last=False, sampler=None, kinds=test_ds.kinds)
        if bs is not None:
            changes["bs"] = bs
        if num_workers is not _UNSET:
            changes["num_workers"] = resolve_num_workers(num_workers)
        return self.valid.new(test_ds, **changes)

    def test_batch(self, items, bs: int | None = None):
        """The one batch ``test_dl(items, bs=bs, num_workers=0)`` would yield, built directly
        (encoded, collated, through the batch transforms and on the device) without a loader; None
        where that cannot be sure to give the same batch: these loaders have a ``test_dl`` or a
        validation loader class of their own, or the items do not fit in one batch.

        >>> xb, = dls.test_batch(["cat.png"])   # doctest: +SKIP
        """
        valid = self.valid
        if (type(self).test_dl is not DataBunch.test_dl or type(valid) is not DataLoader
                or not 0 < len(items) <= (bs if bs is not None else valid.bs)
                or not hasattr(self.valid_ds, "test_set")):
            return None
        return valid.batch_of(self.valid_ds.test_set(items))

    def new(self, bs: int | None = None, num_workers: int | str | None = _UNSET,
            device: torch.device | str | None = None, seed: int | None = _UNSET) -> "DataBunch":
        """A copy with a new batch size (validation gets twice it), workers, device or seed."""
        loaders = []
        for i, dl in enumerate(self.loaders):
            changes = {}
            if bs is not None:
                changes["bs"] = bs if i == 0 else 2 * bs
            if num_workers is not _UNSET:
                changes["num_workers"] = resolve_num_workers(num_workers)
            if seed is not _UNSET:
                changes["seed"] = seed
            loaders.append(dl.new(**changes))
        return type(self)(*loaders, path=self.path, device=device or self.device,
                          loss_func=self._loss_func, c=self._c, vocab=self._vocab)

    def inference_spec(self) -> dict:
        """A JSON-able description of what inference needs (blocks, vocab, transforms, stats)."""
        return inference_spec(self)

    def inference_builder(self) -> type:
        """The class whose ``from_inference_spec(spec, device)`` rebuilds these loaders for
        inference (export files name it): this class where it defines one (tabular and text
        loaders), else the class of its datasets (loaders a ``DataBlock`` or ``Datasets`` made).

        >>> dls.inference_builder().from_inference_spec(dls.inference_spec()).vocab   # doctest: +SKIP
        ['cat', 'dog']
        """
        own = type(self)
        return own if hasattr(own, "from_inference_spec") else type(self.valid_ds)

    @classmethod
    def from_dsets(cls, train_ds, valid_ds, *more_ds, bs: int | None = None, shuffle: bool = True,
                   drop_last: bool | None = None, num_workers: int | str | None = 0,
                   device: torch.device | str | None = None, path=".", seed: int | None = None,
                   collate_fn: Callable | None = None, n_inp: int = 1, after_item=None,
                   after_batch=None, val_bs: int | None = None) -> "DataBunch":
        """Loaders over plain datasets, all with batch size ``bs`` (``val_bs`` for the others if
        given), as the course's ``DataLoaders.from_dsets``: the first shuffled and dropping its
        last partial batch (with ``shuffle=False``: neither), the others in order. An explicit
        ``drop_last`` applies to every loader: chapter 12's stateful language models need every
        batch, training and validation, to have exactly ``bs`` rows.

        >>> dls = DataBunch.from_dsets(list(range(8)), list(range(6)), bs=4, device="cpu")
        >>> len(dls.train), len(dls.valid)
        (2, 2)
        >>> len(DataBunch.from_dsets(list(range(8)), list(range(6)), bs=4, drop_last=True).valid)
        1
        """
        if bs is None:
            bs = get_config().get("defaults", "bs")
        drop = shuffle if drop_last is None else drop_last
        train = DataLoader(train_ds, bs=bs, shuffle=shuffle, drop_last=drop, num_workers=num_workers,
                           seed=seed, collate_fn=collate_fn, n_inp=n_inp, after_item=after_item,
                           after_batch=after_batch)
        others = [DataLoader(ds, bs=val_bs or bs, shuffle=False, drop_last=bool(drop_last), num_workers=num_workers,
                             collate_fn=collate_fn, n_inp=n_inp, after_item=after_item,
                             after_batch=after_batch) for ds in (valid_ds, *more_ds)]
        return cls(train, *others, path=path, device=device)

    @classmethod
    def from_dls(cls, *loaders, path=".", device: torch.device | str | None = None) -> "DataBunch":
        """Wrap existing loaders (fastlearn or torch ``DataLoader``s)."""
        return cls(*loaders, path=path, device=device)


def _readable(target):
    """A target or prediction on the CPU, 0/1 labels as floats, ready to decode."""
    if not isinstance(target, torch.Tensor):
        return target
    target = to_cpu(target)
    return target.float() if target.dtype == torch.bool else target


def _wrap_torch_loader(loader) -> DataLoader:
    if isinstance(loader, TorchDataLoader):
        return DataLoader(loader.dataset, bs=loader.batch_size or 1, drop_last=loader.drop_last,
                          num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                          shuffle=isinstance(loader.sampler, torch.utils.data.RandomSampler))
    raise TypeError(f"DataBunch takes DataLoaders, got {type(loader).__name__}; "
                    "wrap a dataset with fastlearn.data.DataLoader(dataset, bs=...)")


# the loader arguments databunch_from_datasets sets itself (the rest may be passed through)
_BUILDER_ARGS = {"self", "dataset", "bs", "batch_size", "shuffle", "drop_last", "num_workers", "seed", "pin_memory",
                 "persistent_workers", "n_inp", "after_item", "after_batch", "before_batch", "kinds", "device"}


def loader_arguments(dl_type: type) -> list[str]:
    """The arguments of ``dl_type`` that ``dataloaders(...)`` passes through to it (those it does
    not set itself from its own arguments).

    >>> loader_arguments(DataLoader)
    ['collate_fn', 'decode_batch_fn', 'prefetch_factor', 'sampler']
    """
    parameters = inspect.signature(dl_type.__init__).parameters.values()
    return sorted(p.name for p in parameters if p.name not in _BUILDER_ARGS
                  and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def check_loader_kwargs(dl_type: type, loader_kwargs: dict, caller: str, own: list[str]) -> None:
    """A ``TypeError`` naming the first argument of ``loader_kwargs`` that neither ``caller`` nor
    ``dl_type`` takes, with the valid ones."""
    valid = loader_arguments(dl_type)
    for name in loader_kwargs:
        if name not in valid:
            raise TypeError(
                f"{caller}() got an unexpected argument {name!r}: it is not one of {caller}'s own arguments "
                f"{own}, and the loader for this data, {dl_type.__name__}, takes {valid or 'no others'}. "
                "Check the spelling, or pass dl_type= for another loader")


def _block_loader_settings(dsets) -> tuple[type | None, dict, type | None]:
    """The loader class, loader arguments and DataBunch class asked for by the first block of
    ``dsets`` that asks for any (its inputs come first)."""
    for p, block in enumerate(getattr(dsets, "blocks", None) or []):
        dl_type, kwargs = block.loader_settings(dsets, p)
        if dl_type is not None or kwargs:
            return dl_type, kwargs, block.dls_type
    return None, {}, None


def databunch_from_datasets(dsets, bs: int | None = 64, shuffle: bool = True,
                            num_workers: int | str | None = None, device=None, path=".",
                            seed: int | None = None, drop_last: bool | None = None,
                            val_bs: int | None = None, after_item=None, after_batch=None,
                            before_batch: Callable | None = None, pin_memory: bool | None = None,
                            persistent_workers: bool | None = None, cls: type = None, dl_type: type | None = None,
                            loader_kwargs: dict | None = None) -> DataBunch:
    """Loaders over each subset of ``dsets``: item/batch pipelines are copied (each DataBunch
    owns its transforms' state) and set up on the first training sample and batch.

    The loader class is ``dl_type``, else the one the blocks ask for (``TransformBlock.dl_type``:
    ``LMDataLoader`` for a language model's ``TextBlock``), else ``DataLoader``; ``loader_kwargs``
    (already checked against it) and, when it is the class the blocks asked for, their
    ``dls_kwargs`` go to it, the former winning."""
    block_type, block_kwargs, block_cls = _block_loader_settings(dsets)
    if dl_type is not None and dl_type is not block_type:
        block_kwargs = {}  # the block's arguments are for the loader it asked for
    dl_type = dl_type or block_type or DataLoader
    cls = cls or block_cls or DataBunch
    extra = {**block_kwargs, **(loader_kwargs or {})}
    if before_batch is None:
        before_batch = extra.pop("before_batch", None)
    extra.pop("before_batch", None)
    if bs is None:
        bs = get_config().get("defaults", "bs")
    after_item = copy.deepcopy(as_pipeline(list(after_item) if after_item is not None else []))
    after_batch = copy.deepcopy(as_pipeline(list(after_batch) if after_batch is not None else []))
    drop = shuffle if drop_last is None else drop_last
    loaders = []
    for split in range(dsets.n_subsets):
        subset = dsets.subset(split)
        is_train = split == 0
        loaders.append(dl_type(
            subset, bs=bs if is_train else (val_bs or 2 * bs), shuffle=shuffle and is_train,
            drop_last=drop and is_train, num_workers=num_workers, seed=seed if is_train else None,
            pin_memory=pin_memory, persistent_workers=persistent_workers, n_inp=dsets.n_inp,
            after_item=after_item, after_batch=after_batch, before_batch=before_batch,
            kinds=dsets.kinds, **extra))
    dls = cls(*loaders, path=path, device=device)
    _setup_loader_pipelines(dls)
    return dls


def _setup_loader_pipelines(dls: DataBunch) -> None:
    """Set up item and batch transforms that learn from data (e.g. ``Normalize()``)."""
    train = dls.train
    if len(train.dataset) == 0:
        return
    kinds = tuple(train.kinds or ())
    if train.after_item is not None and train.after_item.needs_setup():
        sample = train.dataset[0]
        train.after_item.setup_sample(sample if isinstance(sample, tuple) else (sample,), kinds)
    if isinstance(train.after_batch, Pipeline) and train.after_batch.needs_setup():
        probe = train.new(shuffle=False, drop_last=False, after_batch=None, num_workers=0, sampler=None)
        probe.split_idx = 1
        batch = probe.one_batch()
        train.after_batch.setup_sample(batch if isinstance(batch, tuple) else (batch,), kinds)


DataLoaders = DataBunch
