"""Showing decoded samples: ``show_batch`` (a grid of a batch), ``show_at`` (one item).

Each block draws its own part on a shared matplotlib axes: an image block draws the image, a
category block adds its label to the title, a mask block overlays the mask, a point block
scatters the points. Works headless with the Agg backend.

>>> show_batch(dls.train, max_n=4)     # doctest: +SKIP
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from fastlearn.data.blocks import TransformBlock


def _blocks_for(dataset, n: int) -> list[TransformBlock]:
    blocks = list(getattr(dataset, "blocks", []) or [])
    return (blocks + [TransformBlock()] * n)[:n]


def show_sample(sample: Sequence, blocks: Sequence[TransformBlock], ax=None):
    """Draw one decoded sample on ``ax`` (a new figure if None); returns the axes.

    >>> show_sample(("a cat",), [TransformBlock()]).get_title()
    'a cat'
    """
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    for value, block in zip(sample, blocks):
        block.show(value, ax)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _grid(n: int, nrows: int | None, ncols: int | None) -> tuple[int, int]:
    if nrows is None and ncols is None:
        ncols = math.ceil(math.sqrt(n))
    if ncols is None:
        ncols = math.ceil(n / nrows)
    if nrows is None:
        nrows = math.ceil(n / ncols)
    return max(1, nrows), max(1, ncols)


def show_batch(dl, b=None, max_n: int = 9, nrows: int | None = None, ncols: int | None = None,
               unique: bool = False, figsize: tuple[float, float] | None = None) -> None:
    """Decode a batch of ``dl`` (its first, unless ``b`` is given) and draw up to ``max_n``
    samples in a grid, one figure (``plt.gcf()`` to save it); ``unique`` shows one item under
    several random augmentations. The input block's own ``show_batch`` is used if it has one.
    Nothing is returned, so a notebook shows the figure once.
    """
    import matplotlib.pyplot as plt
    if b is None:
        if unique:
            if dl.n == 0:
                raise ValueError("show_batch(unique=True): the loader has no items")
            first = int(next(iter(dl._base_sampler())))
            repeat = dl.new(shuffle=False, drop_last=False, sampler=[first] * min(dl.bs, max_n),
                            num_workers=0)
            b = repeat.one_batch()
        else:
            b = dl.one_batch()
    samples = dl.decode_batch(b, max_n=max_n)
    width = len(samples[0]) if samples else 0
    blocks = _blocks_for(dl.dataset, width)
    custom = getattr(blocks[0], "show_batch", None) if blocks else None
    if custom is not None:
        custom(samples, blocks, nrows=nrows, ncols=ncols, figsize=figsize)
        return
    nrows, ncols = _grid(len(samples), nrows, ncols)
    figsize = figsize or (3 * ncols, 3 * nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < len(samples):
            show_sample(samples[i], blocks, ax)
        else:
            ax.axis("off")
    fig.tight_layout()


def show_at(dataset, idx: int, ax=None, **kwargs):
    """Show item ``idx`` of a ``Datasets`` / ``TfmdLists`` decoded (``dataset.show(dataset[idx])``);
    returns the axes (chapter 11: ``show_at(tls.valid, 0)`` draws a Siamese pair).

    >>> show_at(dsets.train, 0)   # doctest: +SKIP
    """
    return dataset.show(dataset[idx], ctx=ax, **kwargs)
