"""Showing a trained model's results: inputs with their targets and predictions, side by side.

``Learner.show_results`` calls ``dls.show_results(learn)``, which lands here. Each block draws its
own part: labels go in the title, masks and points are drawn on the image.

>>> show_results(learn, max_n=4)     # doctest: +SKIP
"""
from __future__ import annotations

import math

from fastlearn.data.blocks import TransformBlock
from fastlearn.data.show import show_sample


def _input_block(dl):
    blocks = list(getattr(dl.dataset, "blocks", []) or [])
    if blocks:
        return blocks[0]
    return TransformBlock()


def _target_block(dl):
    blocks = list(getattr(dl.dataset, "blocks", []) or [])
    return blocks[1] if len(blocks) > 1 else None


def subplot_grid(n: int, nrows: int | None = None, figsize: tuple[float, float] | None = None,
                 cell: float = 3.0):
    """A figure with at least ``n`` axes (``nrows`` rows, square-ish by default); extra axes hidden.

    >>> fig, axes = subplot_grid(5)
    >>> len(axes), sum(ax.get_visible() for ax in axes)
    (6, 5)
    """
    import matplotlib.pyplot as plt
    n = max(n, 1)
    nrows = nrows or math.ceil(math.sqrt(n))
    ncols = math.ceil(n / nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize or (cell * ncols, cell * nrows), squeeze=False)
    axes = list(axes.flat)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def decoded_inputs(dl, indices) -> list:
    """The inputs of items ``indices`` of ``dl``'s dataset, through the validation transforms and decoded
    back for showing (one batch through the loader, in the order given)."""
    indices = [int(i) for i in indices]
    if not indices:
        return []
    subset = dl.new(sampler=indices, bs=len(indices), shuffle=False, drop_last=False, num_workers=0)
    return [sample[0] for sample in dl.decode_batch(subset.one_batch(), max_n=len(indices))]


def show_results(learn, max_n: int = 9, figsize: tuple[float, float] | None = None, ds_idx: int = 1,
                 nrows: int | None = None, dl=None) -> None:
    """Show the first ``max_n`` items of ``dl`` (default ``learn.dls[ds_idx]``) with their targets and
    predictions, in one figure (nothing is returned, so a notebook shows it once).

    Labels go in the title, the target above the prediction (green when they agree, red otherwise).
    Masks and points are drawn instead: one row per item, the target on the left and the
    prediction on the right.

    >>> show_results(learn, max_n=4, nrows=1)   # doctest: +SKIP
    """
    dl = dl if dl is not None else learn.dls[ds_idx]
    indices = list(range(min(max_n, len(dl.dataset))))
    if not indices:
        raise ValueError("show_results: the loader has no items to show")
    subset = dl.new(sampler=indices, bs=len(indices), shuffle=False, drop_last=False, num_workers=0)
    inputs, _, targs, decoded = learn.get_preds(dl=subset, with_input=True, with_decoded=True)
    images = decoded_inputs(dl, indices)
    block, target_block = _input_block(dl), _target_block(dl)
    # decoded beside their inputs: class names, masks, key points in pixels of their image
    predicted = learn.dls.decode_targets(inputs, decoded)
    actual = learn.dls.decode_targets(inputs, targs) if targs is not None else None
    if target_block is not None and target_block.kind in ("mask", "points") and actual is not None:
        fig, axes = subplot_grid(2 * len(indices), len(indices), figsize)
        for i, x in enumerate(images):
            pairs = ((axes[2 * i], actual[i], "target"), (axes[2 * i + 1], predicted[i], "prediction"))
            for ax, value, title in pairs:
                show_sample((x,), [block], ax)
                target_block.show(value, ax)
                ax.set_title(title, fontsize=9)
        fig.tight_layout()
        return
    fig, axes = subplot_grid(len(indices), nrows, figsize)
    for i, (ax, x) in enumerate(zip(axes, images)):
        show_sample((x,), [block], ax)
        if actual is not None:
            same = str(actual[i]) == str(predicted[i])
            ax.set_title(f"{actual[i]}\n{predicted[i]}", color="green" if same else "red", fontsize=9)
        else:
            ax.set_title(f"{predicted[i]}", fontsize=9)
    fig.tight_layout()
