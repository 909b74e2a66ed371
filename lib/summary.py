"""``Learner.summary``: every leaf layer's output shape and parameter counts for one batch."""
from __future__ import annotations

import torch
from torch import nn

from fastlearn.torch_core import to_device


def _shape(output) -> str:
    if isinstance(output, torch.Tensor):
        return str(list(output.shape))
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return str(list(output[0].shape))
    return "-"


class SummaryText(str):
    """A ``str`` whose repr is the text itself, so a notebook cell ending in ``learn.summary()``
    shows the table once, as printed text; ``print`` and ``str`` work as on any string.

    >>> SummaryText("Total params: 3")
    Total params: 3
    """

    def __repr__(self) -> str:
        return str(self)


def model_summary(learn) -> str:
    """A table of leaf modules, output shapes, parameters and trainability, for one batch.

    >>> print(learn.summary())   # doctest: +SKIP
    """
    batch = learn.dls.one_batch()
    batch = batch if isinstance(batch, tuple) else (batch,)
    n_inp = getattr(learn.dls, "n_inp", 1) or 1
    xb = to_device(batch[:n_inp], learn.device)
    rows: list[tuple[str, str, int, bool]] = []
    hooks = []

    def record(module: nn.Module, _inputs, output) -> None:
        params = list(module.parameters(recurse=False))
        rows.append((type(module).__name__, _shape(output), sum(p.numel() for p in params),
                     any(p.requires_grad for p in params)))

    for module in learn.model.modules():
        if not list(module.children()):
            hooks.append(module.register_forward_hook(record))
    was_training = learn.model.training
    learn.model.eval()
    try:
        with torch.no_grad():
            learn.model(*xb)
    finally:
        for hook in hooks:
            hook.remove()
        learn.model.train(was_training)
    total = sum(p.numel() for p in learn.model.parameters())
    trainable = sum(p.numel() for p in learn.model.parameters() if p.requires_grad)
    lines = [f"{type(learn.model).__name__} (input batch {[list(x.shape) for x in xb]})",
             "=" * 72, f"{'Layer (type)':<28}{'Output Shape':<24}{'Param #':>10}{'Trainable':>10}", "=" * 72]
    for name, shape, count, train in rows:
        lines.append(f"{name:<28}{shape:<24}{count:>10,}{str(train) if count else '':>10}")
    lines += ["=" * 72, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}",
              f"Optimizer: {type(learn.opt).__name__ if learn.opt is not None else learn.opt_func}",
              f"Loss function: {learn.loss_func!r}",
              f"Callbacks: {[type(cb).__name__ for cb in learn.cbs]}"]
    return "\n".join(lines)
