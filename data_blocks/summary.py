"""``DataBlock.summary``: one sample and one batch walked through every step, printed.

>>> dblock.summary(path)   # doctest: +SKIP
Collecting items from Path('data') with get_image_files
Found 60 items
...
"""
from __future__ import annotations

import random

import torch

from fastlearn.data.datasets import _item_at, describe_item
from fastlearn.data.dataloader import _kinds_for


def describe_value(x) -> str:
    """A short description of a value: type, dtype and shape for tensors.

    >>> describe_value(torch.zeros(2, 3, dtype=torch.uint8))
    'Tensor uint8 (2, 3)'
    >>> describe_value("cat")
    "str 'cat'"
    """
    if isinstance(x, torch.Tensor):
        text = f"Tensor {str(x.dtype).replace('torch.', '')} {tuple(x.shape)}"
        if x.numel() <= 4:
            text += f" {x.tolist()}"
        return text
    if isinstance(x, tuple):
        return "(" + ", ".join(describe_value(v) for v in x) + ")"
    if hasattr(x, "size") and hasattr(x, "mode") and hasattr(x, "getbands"):
        return f"{type(x).__name__} mode={x.mode} size={x.size[0]}x{x.size[1]}"
    if isinstance(x, list):
        return f"list of {len(x)} {describe_item(x, 60)}"
    return f"{type(x).__name__} {describe_item(x, 70)}"


class SummaryError(ValueError):
    """A step of ``DataBlock.summary`` failed; the message names the step, the item and the fix."""


def _fail(step: str, detail: str, error: Exception, fix: str) -> None:
    message = (f"Step failed: {step}{detail}\n  {type(error).__name__}: {error}\n  Fix: {fix}")
    print(message)
    raise SummaryError(message) from error


def _run(step: str, detail: str, fix: str, f, *args):
    try:
        return f(*args)
    except Exception as error:  # noqa: BLE001  (reported with the step, then raised)
        _fail(step, detail, error, fix)


def summarize(dblock, source, bs: int = 4, show_batch: bool = False) -> None:
    """Print every step of building data from ``source`` (see ``DataBlock.summary``)."""
    getter = getattr(dblock.get_items, "__name__", repr(dblock.get_items))
    print(f"Collecting items from {source!r}" + (f" with {getter}" if dblock.get_items else ""))
    items = _run("collecting items", f" from {source!r}",
                 "check the path and get_items (e.g. get_image_files)", dblock.collect_items, source)
    print(f"Found {len(items)} items")
    _run("splitting", f" with {dblock.splitter!r}",
                  "a splitter returns (train_indices, valid_indices) of positions into the items",
                  dblock.split, items)
    dsets = _run("building the datasets (getters on every item, targets encoded, vocab on the "
                 "training set)", "", "see the item named above", dblock.datasets, source)
    print(f"{len(dsets.splits)} datasets of sizes {', '.join(str(len(s)) for s in dsets.splits)}")
    for p, (pipe, block) in enumerate(zip(dsets.pipelines, dsets.blocks)):
        print(f"Part {p} ({type(block).__name__}, kind {block.kind!r}): "
              f"getter {getattr(dsets.getters[p], '__name__', dsets.getters[p])}; {pipe!r}")

    index = dsets.splits[0][0]
    item = _item_at(dsets.all_items, index)
    print(f"\nBuilding one sample from training item {index}: {describe_item(item)}")
    parts = []
    for p, pipe in enumerate(dsets.pipelines):
        print(f"  Part {p}: starting from\n      {describe_value(item) if not hasattr(item, 'to_dict') else describe_item(item)}")
        x = item
        steps = ([dsets.getters[p]] if dsets.getters[p] is not None else []) + list(pipe.fs)
        for step in steps:
            name = getattr(step, "__name__", None) or repr(step)
            x = _run(f"applying {name} (part {p})", f" to training item {index} "
                     f"({describe_item(item)}) whose value was {describe_value(x)}",
                     f"make {name} accept this value, or fix the step before it", step, x)
            print(f"    applying {name} gives\n      {describe_value(x)}")
        parts.append(x)
    sample = tuple(parts)
    print(f"\nFinal sample: {describe_value(sample)}")

    kinds = _kinds_for(dsets.kinds, len(sample))
    after_item = dblock.item_tfms
    print(f"\nBuilding one batch\nApplying item_tfms to the first sample (kinds {kinds}):")
    for t in sorted(after_item, key=lambda t: t.order):
        sample = _run(f"item transform {t!r}", f" on training item {index} ({describe_item(item)}) "
                      f"= {describe_value(sample)}", "check the transform's kinds and input types",
                      t.call_sample, sample, kinds, 0, random)
        print(f"    applying {t!r} gives\n      {describe_value(sample)}")
    dls = _run("building the DataLoaders", "", "see the error above", dblock.dataloaders, source,
               ".", False, bs, True, 0, "cpu")
    raw = _run("collating a batch", f" of {bs} samples", "item transforms must give every sample "
               "the same shape: add item_tfms=Resize(size)", next,
               iter(dls.train.new(after_batch=None, shuffle=False)))
    raw = tuple(raw) if isinstance(raw, (list, tuple)) else (raw,)
    print(f"\nCollating items in a batch\n  {describe_value(raw)}")
    print("Applying batch_tfms to the batch built (on the device)")
    batch = raw
    for t in dls.train.after_batch.fs if dls.train.after_batch is not None else []:
        batch = _run(f"batch transform {t!r}", f" on the batch {describe_value(batch)}",
                     "check the transform's kinds and that its input has the expected dtype",
                     t.call_sample, batch, _kinds_for(dls.train.kinds, len(batch)), 0, random)
        print(f"    applying {t!r} gives\n      {describe_value(batch)}")
    print(f"\nFinal batch: {describe_value(batch)}")
    if show_batch:
        dls.show_batch()
