"""Text loaders: ``LMDataLoader`` (a stream of tokens cut into rows) and ``SortedDL`` (texts of
similar length batched together, padded with ``pad_input``).

>>> docs = [torch.arange(10), torch.arange(10, 30)]
>>> x, y = LMDataLoader(docs, bs=2, seq_len=5).one_batch()
>>> x.tolist(), y.tolist()
([[0, 1, 2, 3, 4], [14, 15, 16, 17, 18]], [[1, 2, 3, 4, 5], [15, 16, 17, 18, 19]])
"""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import pandas as pd
import torch
from torch.utils.data import Dataset

from fastlearn.data.dataloader import DataLoader
from fastlearn.data.pipeline import Pipeline


def _first_part(sample):
    return sample[0] if isinstance(sample, tuple) else sample


def cached_lengths(dataset) -> list[int] | None:
    """The token counts of a ``Datasets``' texts when its cache holds them numericalized (reading
    them costs nothing), else None.

    >>> cached_lengths([torch.zeros(3)]) is None
    True
    """
    cache = getattr(dataset, "cache", {}).get(0) if hasattr(dataset, "idxs") else None
    return None if cache is None else [len(cache[i]) for i in dataset.idxs]


def item_lengths(dataset) -> list[int]:
    """The token count of every item's text (read from a Datasets' cache when it has one).

    >>> item_lengths([torch.zeros(3), torch.zeros(5)])
    [3, 5]
    """
    lengths = cached_lengths(dataset)
    if lengths is not None:
        return lengths
    return [len(_first_part(dataset[i])) for i in range(len(dataset))]


def pad_input(samples: Sequence[tuple], pad_idx: int = 1, pad_fields: int | Sequence[int] = 0,
              pad_first: bool = False, backwards: bool = False, seq_len: int | None = None) -> list[tuple]:
    """Pad the ``pad_fields`` parts of every sample with ``pad_idx`` to the longest in the batch:
    at the end by default (``pad_first=True``: in front). ``backwards`` reverses the tokens.

    With ``seq_len`` (fastai's ``pad_input_chunk``) the padding comes in whole chunks of
    ``seq_len`` in front (at the end without ``pad_first``) and the rest after the text, so a text
    starts where a classifier reading ``seq_len`` tokens at a time starts a chunk.

    >>> pad_input([(torch.tensor([5, 6, 7]), 0), (torch.tensor([8]), 1)])
    [(tensor([5, 6, 7]), 0), (tensor([8, 1, 1]), 1)]
    >>> pad_input([(torch.tensor([5, 6, 7, 8, 9]),), (torch.tensor([4]),)], pad_first=True, seq_len=3)[1]
    (tensor([1, 1, 1, 4, 1]),)
    """
    fields = [pad_fields] if isinstance(pad_fields, int) else list(pad_fields)
    samples = [s if isinstance(s, tuple) else (s,) for s in samples]
    result = [list(s) for s in samples]
    for f in fields:
        longest = max(len(s[f]) for s in samples)
        for s in result:
            x = s[f].flip(0) if backwards else s[f]
            missing = longest - len(x)
            chunks = missing - missing % seq_len if seq_len else (missing if pad_first else 0)
            before, after = x.new_full((chunks,), pad_idx), x.new_full((missing - chunks,), pad_idx)
            s[f] = torch.cat([before, x, after] if pad_first else [x, before, after])
    return [tuple(s) for s in result]


class PadInput:
    """``pad_input`` with fixed arguments, as a ``before_batch`` function (it pickles for workers).

    >>> PadInput(pad_idx=0)([(torch.tensor([1, 2]),), (torch.tensor([3]),)])
    [(tensor([1, 2]),), (tensor([3, 0]),)]
    """

    def __init__(self, pad_idx: int = 1, pad_first: bool = False, seq_len: int | None = None):
        if seq_len is not None and (not isinstance(seq_len, int) or seq_len < 1):
            raise ValueError(f"seq_len={seq_len!r}; expected a positive int (the classifier's chunk of tokens)")
        self.pad_idx, self.pad_first, self.seq_len = pad_idx, pad_first, seq_len

    def __call__(self, samples: Sequence[tuple]) -> list[tuple]:
        return pad_input(samples, pad_idx=self.pad_idx, pad_first=self.pad_first, seq_len=self.seq_len)


class SortedSampler(torch.utils.data.Sampler):
    """Item order for a shuffled epoch of texts, batches of similar lengths together: the items
    are shuffled (seeded by ``seed`` and the epoch), cut into chunks of 50 batches, each chunk
    sorted by length, cut into batches of ``bs``, and the batches shuffled, the one holding the
    longest text first (so memory problems show at once).

    >>> order = list(SortedSampler([1, 5, 2, 4], bs=2, seed=0))
    >>> sorted(order), order[:2] in ([1, 3], [3, 1])
    ([0, 1, 2, 3], True)
    """

    def __init__(self, lengths: Sequence[int], bs: int, seed: int | None = None, drop_last: bool = False):
        self.lengths, self.bs, self.seed, self.drop_last = list(lengths), bs, seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        if not self.lengths:
            return iter([])
        rng = random.Random(hash((self.seed, self.epoch))) if self.seed is not None else random.Random()
        self.epoch += 1
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        chunk = self.bs * 50
        order = [i for k in range(0, len(order), chunk)
                 for i in sorted(order[k:k + chunk], key=lambda i: -self.lengths[i])]
        batches = [order[k:k + self.bs] for k in range(0, len(order), self.bs)]
        first = batches.pop(max(range(len(batches)), key=lambda b: self.lengths[batches[b][0]]))
        last = batches.pop() if batches and self.drop_last and len(batches[-1]) < self.bs else None
        rng.shuffle(batches)
        batches = [first] + batches + ([last] if last is not None else [])
        return iter([i for batch in batches for i in batch])


class LengthOrder(torch.utils.data.Sampler):
    """The order of an unshuffled text loader: the longest text first, equal lengths in item order,
    so each batch pads to a length close to its texts' own. ``order`` is that list of item
    indices; ``get_preds`` puts its results back in item order with it.

    >>> list(LengthOrder([1, 5, 2, 5]))
    [1, 3, 2, 0]
    """

    def __init__(self, lengths: Sequence[int]):
        self.order = sorted(range(len(lengths)), key=lambda i: -lengths[i])

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self):
        return iter(self.order)


class SortedDL(DataLoader):
    """A ``DataLoader`` for texts: padded batches (``before_batch=PadInput()`` unless given), and,
    when shuffling, batches of texts of similar length (a :class:`SortedSampler`), so little
    padding is needed.

    Without shuffling, the texts of a ``Datasets`` whose cache holds their tokens (what
    ``TextDataLoaders`` and ``DataBlock`` build) come longest first (:class:`LengthOrder`), so a
    validation pass pads little (on the food reviews' 1,000 test reviews 195,256 token positions
    instead of 646,400 in item order); ``item_order`` gives that order and ``get_preds`` returns
    its results in item order all the same. Other datasets keep their order. Padding goes at the end of each text (``PadInput(pad_first=True)``
    puts it in front); the classifier masks it either way. ``seq_len`` (as the course passes to
    ``dataloaders``) pads in chunks of ``seq_len`` in front, as fastai does (see :func:`pad_input`).

    >>> dl = SortedDL([(torch.ones(n).long(),) for n in (3, 1, 2)], bs=2)
    >>> [b[0].shape for b in dl]
    [torch.Size([2, 3]), torch.Size([1, 2])]
    """

    def __init__(self, dataset: Dataset | Sequence, bs: int | None = None, shuffle: bool = False,
                 drop_last: bool = False, num_workers: int | str | None = 0,
                 device: torch.device | str | None = None, after_batch=None,
                 collate_fn: Callable | None = None, seed: int | None = None,
                 pin_memory: bool | None = None, persistent_workers: bool | None = None,
                 sampler: torch.utils.data.Sampler | None = None, n_inp: int = 1,
                 batch_size: int | None = None, decode_batch_fn: Callable | None = None,
                 after_item=None, before_batch: Callable | None = None,
                 kinds: Sequence[str] | None = None, seq_len: int | None = None,
                 prefetch_factor: int | None = None):
        if seq_len is not None:
            if before_batch is not None and not isinstance(before_batch, PadInput):
                raise ValueError(f"SortedDL(seq_len={seq_len!r}) sets how PadInput pads, but before_batch is "
                                 f"{before_batch!r}; pad in your before_batch, or leave seq_len out")
            pad_idx = before_batch.pad_idx if before_batch is not None else 1
            before_batch = PadInput(pad_idx, pad_first=True, seq_len=seq_len)
        self.seq_len = seq_len
        stale = isinstance(sampler, SortedSampler) and (
            sampler.bs != (bs or batch_size) or len(sampler) != len(dataset) or sampler.seed != seed)
        if shuffle and (sampler is None or stale or isinstance(sampler, LengthOrder)):
            sampler = SortedSampler(item_lengths(dataset), bs or batch_size or 64, seed=seed, drop_last=drop_last)
        elif not shuffle and (sampler is None or isinstance(sampler, (SortedSampler, LengthOrder))):
            lengths = cached_lengths(dataset)  # a new dataset (dl.new) gets its own order
            sampler = LengthOrder(lengths) if lengths is not None else None
        super().__init__(dataset, bs=bs, shuffle=shuffle, drop_last=drop_last, num_workers=num_workers,
                         device=device, after_batch=after_batch, collate_fn=collate_fn, seed=seed,
                         pin_memory=pin_memory, persistent_workers=persistent_workers, sampler=sampler,
                         n_inp=n_inp, batch_size=batch_size, decode_batch_fn=decode_batch_fn,
                         after_item=after_item, before_batch=before_batch or PadInput(), kinds=kinds,
                         prefetch_factor=prefetch_factor)

    @property
    def item_order(self) -> list[int] | None:
        """The item indices in the order a pass yields them when this loader chose it (longest
        first, :class:`LengthOrder`); None when the items come in their own order or shuffled."""
        return self.sampler.order if isinstance(self.sampler, LengthOrder) and not self.shuffle else None


class LMDataLoader(DataLoader):
    """Batches for a language model from a dataset of numericalized texts (LongTensors).

    Each epoch the texts are put in order (shuffled, seeded by ``seed`` and the epoch, when
    ``shuffle``) and joined into one stream, which is cut into ``bs`` rows of equal length (the few
    tokens left over are dropped); batch ``i`` is columns ``i*seq_len`` to ``(i+1)*seq_len`` of
    the rows, and its target the same columns one token later. So row ``r`` of consecutive
    batches continues the same text, which a stateful model (AWD-LSTM) relies on; every token
    is an input once per epoch. The last batch may be shorter than ``seq_len``.

    >>> dl = LMDataLoader([torch.arange(100)], bs=4, seq_len=10)
    >>> len(dl), dl.one_batch()[0].shape
    (3, torch.Size([4, 10]))
    """

    def __init__(self, dataset: Dataset | Sequence, bs: int = 64, seq_len: int = 72, shuffle: bool = False,
                 seed: int | None = None, device: torch.device | str | None = None, num_workers: int | str | None = 0,
                 drop_last: bool = False, after_batch=None, n_inp: int = 1, kinds: Sequence[str] | None = None,
                 after_item=None, before_batch: Callable | None = None, pin_memory: bool | None = None,
                 persistent_workers: bool | None = None):
        if not isinstance(seq_len, int) or seq_len < 1:
            raise ValueError(f"seq_len={seq_len!r}; expected a positive int (tokens per row of a batch)")
        for name, value in (("after_item", after_item), ("before_batch", before_batch)):
            if value is not None and not (isinstance(value, (list, tuple, Pipeline)) and len(value) == 0):
                raise ValueError(f"LMDataLoader({name}={value!r}): a language model's batches are cut from one "
                                 f"stream of tokens, so there are no items to transform; remove {name}")
        if n_inp != 1:
            raise ValueError(f"LMDataLoader(n_inp={n_inp!r}): a language model has one input, the tokens")
        # batches are slices of one tensor, cut in this process: workers and pinning have nothing to do
        super().__init__(dataset, bs=bs, shuffle=shuffle, seed=seed, device=device, num_workers=0,
                         drop_last=drop_last, after_batch=after_batch, kinds=("text", "text"),
                         pin_memory=pin_memory, persistent_workers=persistent_workers)
        self.seq_len = seq_len
        self.docs = self._documents(dataset)
        total = sum(len(d) for d in self.docs)
        self.row_len = (total - 1) // bs if total > 1 else 0

    @staticmethod
    def _documents(dataset) -> list[torch.Tensor]:
        cache = getattr(dataset, "cache", {}).get(0) if hasattr(dataset, "idxs") else None
        docs = [cache[i] for i in dataset.idxs] if cache is not None else \
            [_first_part(dataset[i]) for i in range(len(dataset))]
        for i, doc in enumerate(docs):
            if not isinstance(doc, torch.Tensor) or doc.ndim != 1:
                raise TypeError(f"LMDataLoader needs numericalized texts (1-D LongTensors); item {i} is "
                                f"{type(doc).__name__}; numericalize the texts first (Numericalize, TextBlock)")
        return docs

    def __len__(self) -> int:
        if self.drop_last:
            return self.row_len // self.seq_len
        return -(-self.row_len // self.seq_len)

    def stream(self) -> torch.Tensor:
        """This epoch's texts joined in one LongTensor (the order ``__iter__`` uses)."""
        order = list(range(len(self.docs)))
        if self.shuffle:
            rng = random.Random(hash((self.seed, self.epoch))) if self.seed is not None else random.Random()
            rng.shuffle(order)
        return torch.cat([self.docs[i] for i in order]) if order else torch.zeros(0, dtype=torch.long)

    def __iter__(self):
        if self.row_len == 0:
            return
        tokens = self.stream()
        n = self.bs * self.row_len
        xs, ys = tokens[:n].view(self.bs, self.row_len), tokens[1:n + 1].view(self.bs, self.row_len)
        for b in range(len(self)):
            start = b * self.seq_len
            x, y = xs[:, start:start + self.seq_len], ys[:, start:start + self.seq_len]
            if self.device is not None:
                x, y = x.to(self.device), y.to(self.device)
            yield self.apply_after_batch((x, y)) if self.after_batch else (x, y)
        if self.shuffle and self.seed is not None:
            self.epoch += 1

    def new(self, dataset=None, **changes) -> "LMDataLoader":
        """A copy with other arguments (``bs``, ``seq_len``, ``shuffle``, ``seed``, ``device``...)."""
        args = dict(dataset=self.dataset if dataset is None else dataset, bs=self.bs, seq_len=self.seq_len,
                    shuffle=self.shuffle, seed=self.seed, device=self.device, drop_last=self.drop_last,
                    after_batch=self.after_batch)
        unknown = set(changes) - set(args) - {"num_workers", "sampler", "kinds"}
        if unknown:
            raise TypeError(f"LMDataLoader.new got unknown arguments {sorted(unknown)}; known: {sorted(args)}")
        args.update({k: v for k, v in changes.items() if k in args})
        new = LMDataLoader(**args)
        new.split_idx = self.split_idx
        return new

    def decode_batch(self, batch, max_n: int = 9) -> list[tuple]:
        """Rows of a batch as ``(text, text_)`` token strings (needs a vocab from the dataset)."""
        x, y = batch
        decode = _decoder(self.dataset)
        return [(decode(x[i]), decode(y[i])) for i in range(min(max_n, len(x)))]

    def show_batch(self, b=None, max_n: int = 9, nrows: int | None = None, ncols: int | None = None,
                   unique: bool = False, figsize: tuple[float, float] | None = None, trunc_at: int = 150):
        """A table of inputs and targets (``text``, ``text_``), returned as a DataFrame."""
        rows = self.decode_batch(self.one_batch() if b is None else b, max_n)
        return show_table(rows, ["text", "text_"], trunc_at)


def _decoder(dataset) -> Callable[[torch.Tensor], str]:
    pipelines = getattr(dataset, "pipelines", None)
    if not pipelines:
        return lambda ids: " ".join(str(i) for i in ids.tolist())
    return lambda ids: pipelines[0].decode(ids.cpu())


def show_table(rows: Sequence[tuple], columns: Sequence[str], trunc_at: int | None = 150) -> pd.DataFrame:
    """Decoded samples as a DataFrame (texts cut at ``trunc_at`` characters); a notebook shows it.

    >>> show_table([("a b", "c")], ["text", "category"], 10).shape
    (1, 2)
    """
    def cut(v):
        v = str(v)
        return v if trunc_at is None or len(v) <= trunc_at else v[:trunc_at] + "…"
    return pd.DataFrame([[cut(v) for v in row] for row in rows], columns=list(columns))


def _decoder_without(dataset, pad_idx: int) -> Callable[[torch.Tensor], str]:
    decode = _decoder(dataset)
    return lambda ids: decode(ids[ids != pad_idx].cpu())


def results_rows(learn, dl, pad_idx: int, max_n: int = 9) -> tuple[list[tuple], list[str]]:
    """The first ``max_n`` samples of ``dl`` decoded, with ``learn``'s predictions: rows of
    ``(text, target, prediction)`` and their column names. A classifier's rows are its texts
    (``text``, ``category``, ``category_pred``); a language model's the first batch's rows of
    ``dl.seq_len`` tokens (``text``, ``text_`` the tokens that follow, ``text_pred`` the predicted ones).
    """
    decode = _decoder_without(dl.dataset, pad_idx)
    if isinstance(dl, LMDataLoader):
        # one batch, cut from the start of the stream: the predictions of a whole corpus (tokens x vocab)
        # would not fit in memory
        tokens = torch.cat(dl.docs) if dl.docs else torch.zeros(0, dtype=torch.long)
        seq_len = max(1, min(dl.seq_len, len(tokens) - 1))
        n = max(1, min(max_n, (len(tokens) - 1) // seq_len))
        subset = dl.new(dataset=[tokens[:n * seq_len + 1]], bs=n, seq_len=seq_len, shuffle=False)
        inputs, _, targs, decoded = learn.get_preds(dl=subset, with_input=True, with_decoded=True)
        rows = [(decode(inputs[i]), decode(targs[i]), decode(decoded[i])) for i in range(len(inputs))]
        return rows, ["text", "text_", "text_pred"]
    indices = list(range(min(max_n, len(dl.dataset))))
    if not indices:
        raise ValueError("show_results: the loader has no texts to show")
    subset = dl.new(sampler=indices, bs=len(indices), shuffle=False, drop_last=False, num_workers=0)
    inputs, _, targs, decoded = learn.get_preds(dl=subset, with_input=True, with_decoded=True)
    n_inp = getattr(dl.dataset, "n_inp", 1)
    rows = [(decode(inputs[i]), dl.dataset.decode_part(n_inp, targs[i].cpu()),
             dl.dataset.decode_part(n_inp, decoded[i].cpu())) for i in range(len(indices))]
    return rows, ["text", "category", "category_pred"]
