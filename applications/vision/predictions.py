"""Looking at and improving a trained model's predictions: ``show_results`` and test-time augmentation.

>>> fig = show_results(learn, max_n=6)      # doctest: +SKIP
>>> preds, targs = tta(learn)               # doctest: +SKIP
"""
from __future__ import annotations

import torch

from fastlearn.data.show import show_sample
from fastlearn.vision.interpret import _input_block, decoded_inputs, subplot_grid


def _target_block(dl):
    blocks = list(getattr(dl.dataset, "blocks", []) or [])
    return blocks[1] if len(blocks) > 1 else None


def _pixel_points(points: torch.Tensor, image) -> torch.Tensor:
    height, width = torch.as_tensor(image).shape[-2:]
    return (points.reshape(-1, 2).float() + 1) / 2 * torch.tensor([float(width), float(height)])


def show_results(learn, max_n: int = 9, figsize: tuple[float, float] | None = None, ds_idx: int = 1,
                 nrows: int | None = None, dl=None):
    """Show the first ``max_n`` items of ``dl`` (default ``learn.dls[ds_idx]``) with their targets and
    predictions; returns the figure.

    Labels go in the title, the target above the prediction (green when they agree, red otherwise).
    Masks and points are drawn instead: one row per item, the target on the left and the
    prediction on the right.

    >>> fig = show_results(learn, max_n=4, nrows=1)   # doctest: +SKIP
    """
    dl = dl if dl is not None else learn.dls[ds_idx]
    indices = list(range(min(max_n, len(dl.dataset))))
    if not indices:
        raise ValueError("show_results: the loader has no items to show")
    subset = dl.new(sampler=indices, bs=len(indices), shuffle=False, drop_last=False, num_workers=0)
    _, targs, decoded = learn.get_preds(dl=subset, with_decoded=True)
    inputs = decoded_inputs(dl, indices)
    block, target_block = _input_block(dl), _target_block(dl)
    if target_block is not None and target_block.kind in ("mask", "points") and targs is not None:
        fig, axes = subplot_grid(2 * len(indices), len(indices), figsize)
        for i, x in enumerate(inputs):
            for ax, value, title in ((axes[2 * i], targs[i], "target"), (axes[2 * i + 1], decoded[i], "prediction")):
                show_sample((x,), [block], ax)
                target_block.show(_pixel_points(value, x) if target_block.kind == "points" else value, ax)
                ax.set_title(title, fontsize=9)
        fig.tight_layout()
        return fig
    fig, axes = subplot_grid(len(indices), nrows, figsize)
    for i, (ax, x) in enumerate(zip(axes, inputs)):
        show_sample((x,), [block], ax)
        predicted = learn.dls.decode_target(decoded[i])
        if targs is not None:
            actual = learn.dls.decode_target(targs[i])
            same = str(actual) == str(predicted)
            ax.set_title(f"{actual}\n{predicted}", color="green" if same else "red", fontsize=9)
        else:
            ax.set_title(f"{predicted}", fontsize=9)
    fig.tight_layout()
    return fig


def tta(learn, dl=None, n: int = 4, beta: float | None = 0.25, ds_idx: int = 1,
        use_max: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Test-time augmentation: predictions over ``n`` passes with the training augmentations, mixed
    with the plain predictions: ``(1 - beta) * augmented_mean + beta * plain``.

    ``use_max`` takes the element-wise maximum of the augmented passes instead of their mean;
    ``beta=None`` returns the augmented and plain predictions stacked. Returns ``(preds, targs)``.

    >>> preds, targs = tta(learn, n=4)   # doctest: +SKIP
    """
    dl = dl if dl is not None else learn.dls[ds_idx]
    if n < 1:
        raise ValueError(f"tta(n={n}): expected at least one augmented pass")
    dl = dl.new(shuffle=False, drop_last=False)  # the same order in every pass
    preds, targs = learn.get_preds(dl=dl)
    augmented_dl = dl.new()
    augmented_dl.split_idx = 0  # training transforms: random crops and batch augmentation
    passes = []
    for i in range(n):
        augmented_dl.epoch = i + 1
        passes.append(learn.get_preds(dl=augmented_dl)[0])
    stacked = torch.stack(passes)
    augmented = stacked.max(0).values if use_max else stacked.mean(0)
    if beta is None:
        return torch.stack([augmented, preds]), targs
    return torch.lerp(augmented, preds, beta), targs
