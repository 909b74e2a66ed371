"""``Datasets`` (one pipeline per part of a sample) and ``TfmdLists`` (one pipeline).

Pipelines are set up on the training items only, so a vocabulary never sees validation labels.

>>> dsets = Datasets(["a1", "b2", "a3"], tfms=[[str.upper], [lambda s: s[0], Categorize()]],
...                  splits=([0, 1], [2]))
>>> dsets.train[0], dsets.vocab.items, dsets.valid[0]
(('A1', tensor(0)), (#2) ['a', 'b'], ('A3', tensor(0)))
>>> dsets.decode(dsets.train[1])
('B2', 'b')
"""
from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence

import torch

from fastlearn.data.blocks import TransformBlock
from fastlearn.data.categorical import Categorize  # noqa: F401  (doctest)
from fastlearn.data.checks import check_shared_files, missing_positions, missing_targets_error
from fastlearn.data.databunch import DataBunch, DataLoader, check_loader_kwargs, databunch_from_datasets
from fastlearn.data.inference import parts_from_spec
from fastlearn.data.item_checks import check_sample, describe_item
from fastlearn.data.splitters import check_splits
from fastlearn.data.pipeline import Pipeline
from fastlearn.data.tuples import fastuple
from fastlearn.foundation import L
from fastlearn.registry import register_code


def _is_frame(items) -> bool:
    return hasattr(items, "iloc") and hasattr(items, "columns")


def _item_at(items, i: int):
    return items.iloc[i] if _is_frame(items) else items[i]


class _StackedParts:
    """Encoded parts of the same shape and dtype (labels...) as one tensor, for pickling."""

    def __init__(self, stacked: torch.Tensor):
        self.stacked = stacked

    @classmethod
    def pack(cls, values: list):
        first = values[0] if values else None
        same = isinstance(first, torch.Tensor) and first.device.type == "cpu" and all(
            type(v) is torch.Tensor and v.shape == first.shape and v.dtype == first.dtype and v.device == first.device
            for v in values)
        return cls(torch.stack(values)) if same else values

    def unpack(self) -> list:
        return [v.clone() for v in self.stacked]


class Datasets:
    """Items, one type pipeline per part (``tfms=[[x tfms], [y tfms]]``) and the splits.

    ``dsets[i]`` is the encoded tuple; ``.train`` / ``.valid`` the subsets; ``.vocab`` the target
    vocabulary; ``.decode(sample)`` turns a sample back into readable values. ``getters`` (one per
    part, or None) run before each pipeline; ``blocks`` say each part's kind, how to show it and
    what the target's loss is. ``setup=False`` takes the pipelines as already set up (``test_set``:
    new items are not passed through them to set up a vocabulary that exists).
    """

    def __init__(self, items=None, tfms: Sequence | None = None, splits: Sequence | None = None,
                 n_inp: int | None = None, blocks: Sequence[TransformBlock] | None = None,
                 getters: Sequence[Callable | None] | None = None, check: Sequence[int] = (),
                 check_getters: bool = False, split_idx: int | None = None, verbose: bool = False,
                 setup: bool = True):
        self.all_items = items if items is not None else []
        self._view = False  # True for a split's view (subset)
        tfms = [[]] if tfms is None else list(tfms)
        self.pipelines = [t if isinstance(t, Pipeline) else Pipeline(t if isinstance(t, (list, tuple)) else [t])
                          for t in tfms]
        n = len(self.pipelines)
        self.getters = list(getters) if getters is not None else [None] * n
        self.blocks = list(blocks) if blocks is not None else [
            TransformBlock(kind=p.output_kind or "raw") for p in self.pipelines]
        if not (len(self.getters) == len(self.blocks) == n):
            raise ValueError(f"Datasets: {n} pipelines, {len(self.getters)} getters and "
                             f"{len(self.blocks)} blocks; give one of each per part")
        self.n_inp = n_inp if n_inp is not None else (max(1, n - 1) if n > 1 else 1)
        n_items = len(self.all_items)
        self.splits = check_splits(splits, n_items) if splits is not None else [L(range(n_items)), L()]
        self.idxs = L(range(n_items))
        self.split_idx = split_idx
        self.cache: dict[int, list] = {}
        targets = self._checked_targets()
        for p, pipeline in enumerate(self.pipelines):
            pipeline.split_idx = None
            if setup and pipeline.needs_setup():
                train = [targets[p][i] if p in targets else self._source(p, i)
                         for i in self.splits[0]]
                pipeline.setup(train)
        if check_getters:
            firsts = self._check_getters(skip=targets)
            if firsts is not None:
                check_shared_files(firsts, self.splits)
        for p in check:
            self._encode_all(p)

    # --- building ---------------------------------------------------------------------------
    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(b.kind for b in self.blocks)

    def _where(self, i: int) -> str:
        for k, name in zip(range(len(self.splits)), ("training", "validation", "test")):
            if i in self._split_sets()[k]:
                return f"{name} item"
        return "item"

    def _split_sets(self) -> list[set]:
        if not hasattr(self, "_sets"):
            self._sets = [set(s) for s in self.splits]
        return self._sets

    def _fail(self, step: str, p: int, i: int, item, error: Exception):
        where = self._where(i) if self.split_idx is None else ("training item", "validation item",
                                                                "test item")[min(self.split_idx, 2)]
        message = (f"{step} failed on {where} {i} ({describe_item(item)}) for part {p} "
                   f"({type(self.blocks[p]).__name__}): {type(error).__name__}: {error}")
        kind = FileNotFoundError if isinstance(error, FileNotFoundError) else (
            TypeError if isinstance(error, TypeError) else ValueError)
        raise kind(message) from error

    def _get(self, p: int, item, i: int):
        getter = self.getters[p]
        if getter is None:
            return item
        try:
            return getter(item)
        except Exception as error:  # noqa: BLE001  (re-raised with the item named)
            self._fail(f"the getter {getattr(getter, '__name__', repr(getter))}", p, i, item, error)

    def _source(self, p: int, i: int):
        """Part ``p`` of item ``i`` as its getter gives it, before the pipeline (an image's file...)."""
        return self._get(p, _item_at(self.all_items, i), i)

    def _raw(self, p: int) -> list:
        return [self._source(p, i) for i in range(len(self.all_items))]

    def _checked_targets(self) -> dict[int, list]:
        """Each target part's raw values (what the getters return), refused if any is missing."""
        targets, used = {}, sorted(set().union(*self.splits))  # items in no split are never read
        for p in range(self.n_inp, len(self.pipelines)):
            values = self._raw(p)
            missing = [used[k] for k in missing_positions([values[i] for i in used], self.blocks[p].is_missing)]
            if missing:
                raise missing_targets_error(self.all_items, missing, f"part {p}, {type(self.blocks[p]).__name__}",
                                            values[missing[0]])
            targets[p] = values
        return targets

    def _check_getters(self, skip: dict[int, list]) -> list | None:
        """Run every getter on every item (a failure names the item); returns the first part's
        raw values (the items themselves when it has no getter; None for rows of a table)."""
        firsts = None
        for p, getter in enumerate(self.getters):
            if getter is not None and p not in skip:
                values = self._raw(p)
                firsts = values if p == 0 else firsts
        if firsts is None and 0 in skip:
            return skip[0]
        if firsts is None and not _is_frame(self.all_items):
            return list(self.all_items)
        return firsts

    def _encode_all(self, p: int) -> None:
        if any(t.split_idx is not None for t in self.pipelines[p]):
            for i in range(len(self.all_items)):
                self.encode_part(p, i)
            return
        self.cache[p] = [self.encode_part(p, i) for i in range(len(self.all_items))]

    def encode_part(self, p: int, i: int):
        """Part ``p`` of item ``i`` (an index into all items), with the item named on failure."""
        if p in self.cache:
            return self.cache[p][i]
        item = _item_at(self.all_items, i)
        value = self._get(p, item, i)
        try:
            return self.pipelines[p](value, split_idx=self.split_idx)
        except Exception as error:  # noqa: BLE001
            self._fail(f"{self.pipelines[p]!r}", p, i, item, error)

    # --- pickling (what a worker process started by spawn or forkserver gets) ---------------
    def __getstate__(self) -> dict:
        """The items and the plan (pipelines, getters, blocks, splits), with each cached part sent
        as one stacked tensor instead of one small pickled tensor per item (the encoded labels of
        a thousand images: 360 kB as tensors one by one, 10 kB stacked)."""
        state = dict(self.__dict__)
        state.pop("_sets", None)  # rebuilt when needed
        state.pop("_view_items", None)
        state["cache"] = {p: _StackedParts.pack(values) for p, values in self.cache.items()}
        return state

    def __setstate__(self, state: dict) -> None:
        state["cache"] = {p: v.unpack() if isinstance(v, _StackedParts) else v for p, v in state["cache"].items()}
        self.__dict__.update(state)

    def __copy__(self) -> "Datasets":
        """A view sharing everything (``subset``), without packing the cache as pickling does."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    # --- access -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.idxs)

    def __getitem__(self, i: int) -> tuple:
        k = self.idxs[i]
        sample = tuple(self.encode_part(p, k) for p in range(len(self.pipelines)))
        check_sample(self, sample, k)  # a mask of its image's size, key points inside the image
        return sample

    def subset(self, split: int) -> "Datasets":
        """The items of split ``split`` (0 training, 1 validation), sharing the pipelines."""
        if split >= len(self.splits):
            raise IndexError(f"split {split} does not exist; there are {len(self.splits)} splits")
        view = copy.copy(self)
        view.idxs, view.split_idx, view._view = self.splits[split], split, True
        view.__dict__.pop("_view_items", None)
        return view

    @property
    def train(self) -> "Datasets":
        return self.subset(0)

    @property
    def valid(self) -> "Datasets":
        return self.subset(1)

    @property
    def n_subsets(self) -> int:
        return len(self.splits)

    @property
    def items(self):
        """The items: all of them for the whole set; a split's own for its view (``dsets.train``,
        ``dls.valid_ds``), in the view's order, so ``dls.valid_ds.items[i]`` is the item of
        ``dls.valid_ds[i]`` (the file of a top loss). ``all_items`` always holds every item, indexed
        as ``idxs`` and ``splits`` index them.

        >>> dsets = Datasets(["a", "b", "c"], tfms=[[]], splits=[[2, 0], [1]])
        >>> list(dsets.items), list(dsets.train.items), list(dsets.valid.items)
        (['a', 'b', 'c'], ['c', 'a'], ['b'])
        """
        if not self._view:
            return self.all_items
        if "_view_items" not in self.__dict__:
            self._view_items = (self.all_items.iloc[list(self.idxs)] if _is_frame(self.all_items)
                                else L([self.all_items[i] for i in self.idxs]))
        return self._view_items

    @property
    def vocab(self):
        """The first target part's vocabulary (the input's if no target has one)."""
        for pipeline in self.pipelines[self.n_inp:] + self.pipelines[:self.n_inp]:
            if pipeline.vocab is not None:
                return pipeline.vocab
        return None

    @property
    def c(self) -> int | None:
        """Outputs a model needs for the first target (``len(vocab)``, ``n_out``...)."""
        if len(self.pipelines) <= self.n_inp:
            return None
        p = self.n_inp
        first = self.encode_part(p, self.splits[0][0]) if len(self.splits[0]) else None
        return self.blocks[p].n_out(self.pipelines[p], first)

    @property
    def loss_func(self):
        return self.blocks[self.n_inp].loss_func() if len(self.blocks) > self.n_inp else None

    def decode_part(self, p: int, value):
        return self.pipelines[p].decode(value)

    def decode(self, sample: Sequence) -> tuple:
        """Each part decoded by its pipeline (labels back to names...)."""
        return tuple(self.decode_part(p, v) for p, v in enumerate(sample))

    def show(self, sample: Sequence, ctx=None, **kwargs):
        """Draw a sample (as ``dsets[i]`` gives it) decoded, each part by its block, on ``ctx``
        (a matplotlib axes, new if None); returns the axes. ``show_at(dsets, i)`` calls it."""
        from fastlearn.data.show import show_sample
        decoded = self.decode(sample)
        return show_sample(decoded, self.blocks, ctx)

    def test_set(self, items, with_labels: bool = False) -> "Datasets":
        """A dataset of new ``items`` through the same (already set-up) pipelines.

        Without labels only the inputs are built. Getters run when ``items`` is a DataFrame (they
        read its rows) or ``with_labels``; otherwise items go straight to the type transforms
        (paths, images...), so label functions are not needed at inference.
        """
        n = len(self.pipelines) if with_labels else self.n_inp
        use_getters = with_labels or _is_frame(items)
        items = items if _is_frame(items) else L(items)
        return Datasets(items, tfms=self.pipelines[:n], n_inp=min(self.n_inp, n),
                        blocks=self.blocks[:n],
                        getters=self.getters[:n] if use_getters else [None] * n,
                        split_idx=1,  # every item in the first split, as without splits
                        setup=False)  # set up on the training items already: not passed through again

    def dataloaders(self, bs: int | None = 64, shuffle: bool = True, num_workers: int | str | None = None,
                    device=None, path=".", seed: int | None = None, drop_last: bool | None = None,
                    val_bs: int | None = None, after_item=None, after_batch=None,
                    before_batch: Callable | None = None, pin_memory: bool | None = None,
                    persistent_workers: bool | None = None, dl_type: type | None = None, **loader_kwargs):
        """A ``DataBunch``: the training loader shuffled (dropping its last partial batch), the
        validation loader in order; ``after_item`` / ``after_batch`` transforms are added.

        ``dl_type`` is the loader class (default: the one the blocks ask for, else ``DataLoader``;
        chapter 11 passes ``SortedDL``); ``loader_kwargs`` are forwarded to it (``seq_len`` for an
        ``LMDataLoader``), and an argument it does not take is a ``TypeError`` listing those it does.

        >>> dsets.dataloaders(bs=16, dl_type=SortedDL, before_batch=pad_input)   # doctest: +SKIP
        """
        return databunch_from_datasets(
            self, bs=bs, shuffle=shuffle, num_workers=num_workers, device=device, path=path,
            seed=seed, drop_last=drop_last, val_bs=val_bs, after_item=after_item,
            after_batch=after_batch, before_batch=before_batch, pin_memory=pin_memory,
            persistent_workers=persistent_workers, dl_type=dl_type,
            loader_kwargs=self.checked_loader_kwargs(dl_type, loader_kwargs, "dataloaders"))

    def checked_loader_kwargs(self, dl_type: type | None, loader_kwargs: dict, caller: str) -> dict:
        """``loader_kwargs`` if the loader these datasets get takes them all, else a ``TypeError``
        naming the first it does not take and listing those it does."""
        if loader_kwargs:
            chosen = dl_type or next((b.dl_type for b in self.blocks if b.dl_type is not None), None) or DataLoader
            own = [name for name in inspect.signature(type(self).dataloaders).parameters
                   if name not in ("self", "loader_kwargs")]
            check_loader_kwargs(chosen, loader_kwargs, caller, own)
        return loader_kwargs

    @classmethod
    def from_inference_spec(cls, spec: dict, device: torch.device | str | None = "cpu",
                            loaders_cls: type = DataBunch) -> DataBunch:
        """Loaders over empty datasets with the pipelines ``spec`` (``dls.inference_spec()``)
        describes: ``test_dl(items)``, ``decode_target``, ``vocab``, ``c`` and ``loss_func`` work
        as on the original. ``load_learner`` calls this for loaders a DataBlock made.

        >>> dls = Datasets.from_inference_spec(spec)   # doctest: +SKIP
        >>> dls.test_dl(["cat.png"]).one_batch()[0].shape   # doctest: +SKIP
        """
        blocks, after_item, after_batch = parts_from_spec(spec)
        dsets = Datasets([], tfms=[list(b.type_tfms) for b in blocks], n_inp=spec["n_inp"], blocks=blocks)
        bs = spec.get("bs", 64)
        dls = databunch_from_datasets(dsets, bs=bs, val_bs=bs, shuffle=False, num_workers=0, device=device,
                                      after_item=after_item, after_batch=after_batch, cls=loaders_cls)
        if spec.get("c") is not None:
            dls.c = spec["c"]
        return dls

    def __repr__(self) -> str:
        return f"Datasets({len(self)} items; splits {[len(s) for s in self.splits]}; kinds {self.kinds})"


class TfmdLists(Datasets):
    """Items through one pipeline: ``tl[i]`` is the encoded value (not a tuple).

    The pipeline is set up on the training items first (``TfmdLists(files, [Tokenizer.from_folder
    (path), Numericalize])`` builds the vocab). When the pipeline makes a
    :class:`~fastlearn.data.tuples.fastuple` (chapter 11's ``SiameseImage``), each of its parts
    is a part of the sample, of the kind its value has, and the last part is the target: the
    loaders then run image transforms on the images and give the model all but the last part.

    >>> tl = TfmdLists([1, 2, 3], [lambda x: x * 10], splits=([0, 1], [2]))
    >>> tl.train[1], tl.valid[0]
    (20, 30)
    """

    def __init__(self, items, tfms, splits: Sequence | None = None, split_idx: int | None = None,
                 kind: str | None = None):
        pipeline = tfms if isinstance(tfms, Pipeline) else Pipeline(tfms)
        block = TransformBlock(kind=kind or pipeline.output_kind or "raw")
        self._first: list = []  # the first training value, once set up (see _first_value)
        super().__init__(items, tfms=[pipeline], splits=splits, n_inp=1, blocks=[block],
                         split_idx=split_idx)
        self._ready = True

    def __getitem__(self, i: int):
        return super().__getitem__(i)[0]

    def _first_value(self):
        """The first training value (computed once), or None before set-up or without items."""
        if not self.__dict__.get("_ready") or not len(self.splits[0]):
            return None
        if not self._first:
            self._first.append(self.encode_part(0, self.splits[0][0]))
        return self._first[0]

    @property
    def kinds(self) -> tuple[str, ...]:
        """One kind per part of a sample: the kinds of a fastuple's parts, else the block's kind."""
        first = self._first_value() if self.blocks[0].kind == "raw" else None
        return first.kinds if isinstance(first, fastuple) else (self.blocks[0].kind,)

    @property
    def n_inp(self) -> int:
        """Inputs per sample: all parts of a fastuple but the last, else 1."""
        first = self._first_value()
        return max(1, len(first) - 1) if isinstance(first, fastuple) else self._n_inp

    @n_inp.setter
    def n_inp(self, value: int) -> None:
        self._n_inp = value

    def decode(self, value):
        return self.pipelines[0].decode(value)

    def decode_part(self, p: int, value):
        # the pipeline decodes whole values; the parts of a fastuple are shown as they are
        return self.decode(value) if len(self.kinds) == 1 else value

    def show(self, value, ctx=None, **kwargs):
        """Show a value (as ``tl[i]`` gives it) decoded: with its own ``show`` if it has one (a
        fastuple subclass), printed if it is text and no axes is given, else drawn by its block.

        >>> TfmdLists(["a cat"], [str.upper]).show("A CAT")
        A CAT
        """
        decoded = self.decode(value)
        if callable(getattr(decoded, "show", None)):
            return decoded.show(ctx=ctx, **kwargs)
        if ctx is None and isinstance(decoded, str):
            print(decoded)
            return None
        from fastlearn.data.show import show_sample
        return show_sample((decoded,), self.blocks, ctx)


# export files of loaders a DataBlock or Datasets made name these (fastlearn.registry)
register_code("data", Datasets)
register_code("data", TfmdLists)
